"""Generated days around National Day 2026 with the collection account's statements, through the
whole run on SQLite and PostgreSQL: every expected settlement comes to its ground truth, the
clearing balances are every item, and once the last payouts arrive they drain to zero."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select

from flows.config import load_config
from flows.db import ExceptionItem, FundsExpectation, FundsProof, table_of
from flows.importer import import_snapshot, write_snapshot
from flows.runner import reconcile_dates
from flows.store import connect, read_frame
from reconcile.funds.night import FUNDS_SUBJECTS
from reconcile.funds.synthetic import UNEXPECTED_FEN, settlement_statements
from reconcile.synthetic import generate_days

FIRST, LAST = dt.date(2026, 9, 29), dt.date(2026, 10, 9)
SHORT = ("icbc", dt.date(2026, 10, 8), 100)
pytestmark = pytest.mark.slow


def _deliver(inbox: Path, files: dict[dt.date, dict[str, bytes]]) -> None:
    for day, named in files.items():
        (inbox / day.isoformat()).mkdir(parents=True, exist_ok=True)
        for name, data in named.items():
            (inbox / day.isoformat() / name).write_bytes(data)


def test_generated_days_settle_to_their_truth_and_the_clearing_drains(
    recon_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_FUNDS_FROM", FIRST.isoformat())
    days = generate_days(FIRST, LAST, 120, 11, history=True)
    paid = settlement_statements(days, short=SHORT, unexpected_on=dt.date(2026, 10, 9))
    write_snapshot(tmp_path / "snapshot", days.loans, days.installments, days.instructions)
    inbox = Path(recon_env["RECON_HOME"]) / "inbox"
    _deliver(inbox, days.files)
    _deliver(inbox, paid.files)
    config = load_config()
    engine = connect(config.database_url)
    import_snapshot(engine, tmp_path / "snapshot")
    span = [FIRST + dt.timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
    summaries = reconcile_dates(config, span, workbook=False, cascade=False)
    last = summaries[-1]["funds"]
    assert last["enabled"] and last["as_of"] == LAST.isoformat()

    wanted = {"channel": pl.String, "business_date": pl.Date, "net_fen": pl.Int64, "outcome": pl.String}
    expectations = table_of(FundsExpectation)
    stored = read_frame(engine.connect(), select(*[expectations.c[c] for c in wanted]), wanted)
    truth = paid.truth.select("channel", "business_date", "net_fen", outcome="expected_outcome")
    assert stored.sort("channel", "business_date").equals(truth.sort("channel", "business_date"))
    # the lump of the holiday: the wallet's days from 09-30 to 10-07 in one payout on 10-08
    clearing = last["clearing"]
    owed_last = truth.filter(pl.col("business_date") == LAST)
    for channel in ("alipay", "icbc"):
        pending = owed_last.filter(pl.col("channel") == channel)["net_fen"].sum()
        assert clearing[channel]["pending_fen"] == pending
        assert clearing[channel]["unexplained_fen"] == 0
    assert clearing["icbc"]["overdue_fen"] == SHORT[2]  # the short payout's shortfall
    assert last["balanced"] and summaries[-1]["balanced"]

    items = table_of(ExceptionItem)
    exceptions = read_frame(
        engine.connect(),
        select(items.c.outcome, items.c.amount_fen, items.c.subject).where(items.c.subject.in_(FUNDS_SUBJECTS)),
        {"outcome": pl.String, "amount_fen": pl.Int64, "subject": pl.String},
    )
    assert sorted(exceptions.select("outcome", "subject").rows()) == [
        ("SETTLEMENT_SHORT", "settlement"), ("UNEXPECTED_DEPOSIT", "statement"),
    ]
    assert exceptions.filter(pl.col("outcome") == "UNEXPECTED_DEPOSIT")["amount_fen"].item() == UNEXPECTED_FEN

    # the night after: the last payouts arrive and the shortfall is made good; every window has passed
    after = LAST + dt.timedelta(days=1)  # 10-10, a make-up working day
    rest = settlement_statements(days, deliver_until=after)
    late = {after: rest.files[after]}
    make_good = ",".join(['20261010', '20261010', '', '"1.00"', '"1.00"', "工商银行代收结算\t", "20261008 补差\t",
                          "中国工商银行股份有限公司", "1\t", "X1\r\n"])  # fmt: skip
    name = f"cmb_statement_{after:%Y%m%d}.csv"
    text = late[after][name].decode("gb18030").replace("合计", make_good + "合计", 1)
    credits = sum(rest.truth.filter(pl.col("value_date") == after)["net_fen"]) + SHORT[2]
    text = text.rsplit("\r\n", 2)[0] + f'\r\n合计,,"0.00","{credits / 100:,.2f}",,,,,,\r\n'
    late[after] = {name: text.encode("gb18030")}
    _deliver(inbox, late)
    final = reconcile_dates(config, [after], workbook=False, cascade=False)[0]["funds"]
    for channel in ("alipay", "icbc"):
        assert final["clearing"][channel]["pending_fen"] == 0 and final["clearing"][channel]["overdue_fen"] == 0
    # what is left in the clearing is the stranger's money (not a channel's) — the channels drained
    assert all(final["clearing"][c]["drained"] for c in ("alipay", "icbc"))
    proof = table_of(FundsProof)
    proofs = read_frame(engine.connect(), select(proof.c.channel, proof.c.day, proof.c.closing_fen),
                        {"channel": pl.String, "day": pl.Date, "closing_fen": pl.Int64})  # fmt: skip
    assert proofs.filter(pl.col("day") == after)["closing_fen"].to_list() == [0, 0]
    rerun = reconcile_dates(config, [after], workbook=False, cascade=False)[0]["funds"]
    assert rerun["clearing"] == final["clearing"] and rerun["exceptions"]["new"] == 0
