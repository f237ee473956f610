"""Generated days around National Day 2026 with the collection account's statements, through the
whole run on SQLite and PostgreSQL: every expected settlement comes to its ground truth, the
clearing balances are every item, and once the last payouts arrive they drain to zero."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from flows.cli import app
from flows.config import AppConfig, load_config
from flows.contract import contract_report
from flows.db import ExceptionItem, FundsExpectation, FundsProof, LedgerEntry, table_of
from flows.importer import import_snapshot, write_snapshot
from flows.runner import reconcile_dates
from flows.store import connect, read_frame
from flows.words import label
from flows.workbook import COLUMNS, column_letter
from reconcile.funds.night import FUNDS_SUBJECTS
from reconcile.funds.synthetic import UNEXPECTED_FEN, cmb_statement, fee, settlement_statements
from reconcile.synthetic import UNIONPAY_MERCHANT, SyntheticDays, alipay_account_bill, generate_days
from tests.test_runs import CHILD, ROOT, _reset

FIRST, LAST = dt.date(2026, 9, 29), dt.date(2026, 10, 9)
SHORT = ("icbc", dt.date(2026, 10, 8), 100)
FEE_DAY = dt.date(2026, 10, 8)
pytestmark = pytest.mark.slow


def _deliver(inbox: Path, files: dict[dt.date, dict[str, bytes]]) -> None:
    for day, named in files.items():
        (inbox / day.isoformat()).mkdir(parents=True, exist_ok=True)
        for name, data in named.items():
            (inbox / day.isoformat() / name).write_bytes(data)


def _imported(
    recon_env: dict[str, str], tmp_path: Path, days: SyntheticDays, statements: dict[dt.date, dict[str, bytes]]
) -> tuple[AppConfig, Engine, Path]:
    """The generated book imported and its days' files and statements delivered."""
    write_snapshot(tmp_path / "snapshot", days.loans, days.installments, days.instructions)
    inbox = Path(recon_env["RECON_HOME"]) / "inbox"
    _deliver(inbox, days.files)
    _deliver(inbox, statements)
    config = load_config()
    engine = connect(config.database_url)
    import_snapshot(engine, tmp_path / "snapshot")
    return config, engine, inbox


def test_generated_days_settle_to_their_truth_and_the_clearing_drains(
    recon_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_FUNDS_FROM", FIRST.isoformat())
    days = generate_days(FIRST, LAST, 120, 11, history=True)
    # Alipay's account bill of 10-08 states its fee: 0.10 a debit, not the rule's 0.6 %, and pays net of it
    billed = days.lines.filter((pl.col("channel") == "alipay") & (pl.col("day") == FEE_DAY) & ~pl.col("corrupt_time"))
    debits = billed.filter((pl.col("status") == "SUCCESS") & (pl.col("kind") == "debit"))
    rule_fee = sum(fee("alipay", fen) for fen in debits["amount_fen"])
    stated = {("alipay", FEE_DAY): 10 * debits.height}
    paid = settlement_statements(days, short=SHORT, unexpected_on=dt.date(2026, 10, 9), stated_fees=stated)
    days.files[FEE_DAY][f"alipay_signcustomer_{FEE_DAY:%Y%m%d}.csv"] = alipay_account_bill(FEE_DAY, billed)
    config, engine, inbox = _imported(recon_env, tmp_path, days, paid.files)
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
        ("FEE_VARIANCE", "settlement"), ("SETTLEMENT_SHORT", "settlement"), ("UNEXPECTED_DEPOSIT", "statement"),
    ]
    variance = exceptions.filter(pl.col("outcome") == "FEE_VARIANCE")
    assert variance["amount_fen"].item() == stated[("alipay", FEE_DAY)] != rule_fee
    assert exceptions.filter(pl.col("outcome") == "UNEXPECTED_DEPOSIT")["amount_fen"].item() == UNEXPECTED_FEN
    _the_workbook_shows_it_and_takes_a_resolution(config, truth)
    _customer_service_sees_whether_a_payment_has_arrived(engine)

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


def _the_workbook_shows_it_and_takes_a_resolution(config: AppConfig, truth: pl.DataFrame) -> None:
    """The date again, with its workbook: the 资金对账 sheet shows each clearing balance and the
    expected settlements; the funds exceptions have sheets of their own that a reviewer resolves."""
    summary = reconcile_dates(config, [LAST], workbook=True, cascade=False)[0]
    assert summary["funds"]["exceptions"]["new"] == 0 and summary["funds"]["exceptions"]["seen_again"] == 3
    path = Path(summary["workbook"])
    book = load_workbook(path, read_only=True)
    assert {"资金对账", "结算少付", "不明来账"} <= set(book.sheetnames)
    rows = list(book["资金对账"].iter_rows(values_only=True))
    rows = [r for r in rows if r]
    clearing = {r[0]: r for r in rows if r[0] in ("支付宝", "工商银行") and isinstance(r[1], (int, float))}
    pending = truth.filter(pl.col("business_date") == LAST)
    assert clearing["工商银行"][3] == 1  # overdue: the shortfall, 1.00 yuan
    assert round(clearing["支付宝"][2] * 100) == pending.filter(pl.col("channel") == "alipay")["net_fen"].item()
    listed = [r for r in rows if isinstance(r[0], str) and r[0].startswith("2026-") and r[1] in ("支付宝", "工商银行")]
    assert len(listed) == truth.height  # every expected settlement of the fortnight
    sheet = book["不明来账"]
    header = next(sheet.iter_rows(min_row=1, max_row=1, values_only=True))
    assert list(header[: len(COLUMNS)]) == [label(c, "zh") for c in COLUMNS]
    reviewed = path.with_name("reviewed.xlsx")
    editable = load_workbook(path)
    editable["不明来账"][f"{column_letter('resolution')}2"] = "无需处理"
    editable["不明来账"][f"{column_letter('note')}2"] = "股东往来款，已确认"
    editable.save(reviewed)
    done = CliRunner().invoke(app, ["review-import", str(reviewed), "--reviewer", "王会计"])
    assert done.exit_code == 0, done.output
    items = table_of(ExceptionItem)
    with connect(config.database_url).connect() as conn:
        status = conn.execute(select(items.c.status, items.c.resolution_code).where(
            items.c.outcome == "UNEXPECTED_DEPOSIT")).one()  # fmt: skip
    assert tuple(status) == ("RESOLVED", "NO_ACTION")
    again = reconcile_dates(config, [LAST], workbook=False, cascade=False)[0]["funds"]
    assert again["exceptions"]["reopened"] == 0  # the facts did not change: the resolution stands


def test_a_month_of_generated_days_drains_every_clearing_balance(
    recon_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """November 2026 (weekends lumped by the wallet, paid one by one by the bank), then the first
    working day of December on which the last payouts arrive: every window has passed, every
    expectation is settled and each channel's clearing balance is zero."""
    first, last, drain = dt.date(2026, 11, 1), dt.date(2026, 11, 30), dt.date(2026, 12, 1)
    monkeypatch.setenv("RECON_FUNDS_FROM", first.isoformat())
    days = generate_days(first, last, 240, 29, history=True)
    paid = settlement_statements(days, deliver_until=drain)
    config, _, _ = _imported(recon_env, tmp_path, days, paid.files)
    span = [first + dt.timedelta(days=n) for n in range((drain - first).days + 1)]
    summaries = reconcile_dates(config, span, workbook=False, cascade=False)
    funds = summaries[-1]["funds"]
    assert funds["as_of"] == drain.isoformat() and funds["balanced"]
    assert funds["outcomes"] == {"SETTLED": paid.truth.height}
    for channel in ("alipay", "icbc"):
        assert funds["clearing"][channel]["closing_fen"] == 0, channel
    # and on each night before, the closing was exactly what was still in its window
    for summary in summaries[:-1]:
        for proof in summary["funds"]["clearing"].values():
            assert proof["closing_fen"] == proof["pending_fen"] and proof["unexplained_fen"] == 0


def test_unionpay_states_its_fee_in_its_clearing_file_and_the_rule_agrees(
    recon_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UnionPay collects the wallet share: its ZM states each line's fee, summed per file; the rule
    (0.6 %, given back on a refund) gives the same, so no FEE_VARIANCE, and every day settles."""
    first, last = dt.date(2026, 11, 23), dt.date(2026, 11, 27)
    monkeypatch.setenv("RECON_FUNDS_FROM", first.isoformat())
    days = generate_days(first, last, 150, 31, history=True, wallet="unionpay")
    paid = settlement_statements(days, channels=("unionpay", "icbc"), deliver_until=dt.date(2026, 11, 30))
    config, engine, _ = _imported(recon_env, tmp_path, days, paid.files)
    span = [first + dt.timedelta(days=n) for n in range((dt.date(2026, 11, 30) - first).days + 1)]
    funds = reconcile_dates(config, span, workbook=False, cascade=False)[-1]["funds"]
    assert funds["outcomes"] == {"SETTLED": paid.truth.height} and funds["exceptions_by_outcome"] == {}
    wanted = {"channel": pl.String, "fee_reported_fen": pl.Int64, "fee_expected_fen": pl.Int64, "net_fen": pl.Int64,
              "net_stated_fen": pl.Int64, "gross_fen": pl.Int64, "gross_stated_fen": pl.Int64}  # fmt: skip
    expectations = table_of(FundsExpectation)
    stated = read_frame(engine.connect(), select(*[expectations.c[c] for c in wanted]), wanted)
    unionpay = stated.filter(pl.col("channel") == "unionpay")
    assert unionpay.height == 5 and unionpay["fee_reported_fen"].is_not_null().all()
    with engine.connect() as conn:  # each clearing file names its merchant: the expectations are of it
        of_unionpay = expectations.c.channel == "unionpay"
        keys = conn.execute(select(expectations.c.expectation_key).where(of_unionpay)).scalars()
        assert {key.split("|")[1] for key in keys} == {UNIONPAY_MERCHANT}
    assert (unionpay["fee_reported_fen"] == unionpay["fee_expected_fen"]).all()
    # what UnionPay says it settles net (清算净额) is what the books expect of it, to the fen
    assert (unionpay["net_stated_fen"] == unionpay["net_fen"]).all()
    # the bank's batch summary says what it collected: our records' sum and the lines we could not read
    # (their money was collected all the same: their INVALID_RECORD exceptions are the difference)
    unread = days.lines.filter((pl.col("channel") == "icbc") & (pl.col("status") == "SUCCESS") & pl.col("corrupt_time"))
    unread_by_day = dict(unread.group_by("day").agg(pl.col("amount_fen").sum()).iter_rows())
    wanted["business_date"] = pl.Date
    stated = read_frame(engine.connect(), select(*[expectations.c[c] for c in wanted]), wanted)
    icbc = stated.filter(pl.col("channel") == "icbc")
    assert icbc.height == 5
    for row in icbc.iter_rows(named=True):
        assert row["gross_stated_fen"] - row["gross_fen"] == unread_by_day.get(row["business_date"], 0)
    assert all(proof["closing_fen"] == 0 for proof in funds["clearing"].values())


def test_a_shown_day_whose_books_change_is_balance_drift_until_a_person_resolves_it(
    recon_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement line dated back (value date 11-23) arrives on 11-25: the movement shown for
    11-23, a reconciled day, changes (and with it every later closing: one drift, not one a day).
    The drift stays open on later nights, which compare with the new movement and no longer find it."""
    first, last = dt.date(2026, 11, 23), dt.date(2026, 11, 25)
    monkeypatch.setenv("RECON_FUNDS_FROM", first.isoformat())
    days = generate_days(first, last, 60, 37, history=True)
    paid = settlement_statements(days, deliver_until=last)
    config, engine, inbox = _imported(recon_env, tmp_path, days, paid.files)
    span = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    before = reconcile_dates(config, span, workbook=False, cascade=False)[-1]["funds"]
    assert before["balanced"] and before["exceptions_by_outcome"] == {}
    dated_back = cmb_statement(first, [("alipay", 12_345, "支付宝结算 补记")])
    (inbox / last.isoformat() / "cmb_backdated_20261125.csv").write_bytes(dated_back)
    after = reconcile_dates(config, [last], workbook=False, cascade=False)[0]["funds"]
    assert after["exceptions_by_outcome"] == {"BALANCE_DRIFT": 1, "UNEXPECTED_DEPOSIT": 1}
    items = table_of(ExceptionItem)

    def drifts() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(
                select(items.c.business_date, items.c.status).where(items.c.outcome == "BALANCE_DRIFT")))  # fmt: skip

    assert drifts() == [(first, "OPEN")]
    again = reconcile_dates(config, [last], workbook=False, cascade=False)[0]["funds"]
    assert again["exceptions_by_outcome"] == {"UNEXPECTED_DEPOSIT": 1} and again["balanced"]
    assert drifts() == [(first, "OPEN")]


def _funds_books(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """The funds books without the bookkeeping of which run wrote them; the open funds exceptions
    (one found and resolved along the way is history that depends on when runs happened)."""
    books = {}
    with engine.connect() as conn:
        for model in (FundsExpectation, FundsProof):
            table = table_of(model)
            columns = [c for c in table.c if c.name != "run_id"]
            books[table.name] = sorted(tuple(r) for r in conn.execute(select(*columns)).all())
        items = table_of(ExceptionItem)
        books["exceptions"] = sorted(tuple(r) for r in conn.execute(
            select(items.c.exception_key, items.c.amount_fen).where(
                items.c.subject.in_(FUNDS_SUBJECTS), items.c.status == "OPEN")
        ).all())  # fmt: skip
    return books


def test_the_funds_books_converge_whatever_the_order_and_concurrency_of_runs(
    recon_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same files, reconciled in order, backwards one date at a time, and as two runs of two
    dates at once: the same expected settlements, proofs and funds exceptions."""
    first, last = dt.date(2026, 11, 23), dt.date(2026, 11, 26)
    monkeypatch.setenv("RECON_FUNDS_FROM", first.isoformat())
    days = generate_days(first, last, 80, 41, history=True)
    paid = settlement_statements(days, short=("icbc", dt.date(2026, 11, 24), 100), unexpected_on=last)
    span = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    url = recon_env["RECON_DATABASE_URL"]

    write_snapshot(tmp_path / "snapshot", days.loans, days.installments, days.instructions)

    def fresh() -> tuple[AppConfig, Engine]:
        _reset(url, tmp_path)  # an empty database with the snapshot imported, an empty home
        inbox = Path(recon_env["RECON_HOME"]) / "inbox"
        _deliver(inbox, days.files)
        _deliver(inbox, paid.files)
        config = load_config()
        return config, connect(config.database_url)

    config, engine = fresh()
    reconcile_dates(config, span, workbook=False, cascade=False)
    reference = _funds_books(engine)
    assert reference["funds_expectations"] and reference["exceptions"]
    engine.dispose()

    config, engine = fresh()
    for day in reversed(span):  # each date alone, newest first: each cascades to the later ones
        reconcile_dates(config, [day], workbook=False)
    assert _funds_books(engine) == reference
    engine.dispose()

    config, engine = fresh()
    reconcile_dates(config, span[:2], workbook=False, cascade=False)
    env = {**os.environ, **recon_env, "RECON_FUNDS_FROM": first.isoformat(), "PYTHONPATH": str(ROOT)}
    runs = [subprocess.Popen([sys.executable, str(CHILD), day.isoformat()], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for day in span[2:]]  # fmt: skip
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    reconcile_dates(config, [last], workbook=False, cascade=False)  # the later of the two, after both
    assert _funds_books(engine) == reference
    engine.dispose()


def test_a_run_killed_in_the_funds_stage_leaves_the_next_run_the_same_funds_books(
    recon_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, last = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
    monkeypatch.setenv("RECON_FUNDS_FROM", first.isoformat())
    days = generate_days(first, last, 50, 43, history=True)
    paid = settlement_statements(days, unexpected_on=last)
    write_snapshot(tmp_path / "snapshot", days.loans, days.installments, days.instructions)
    url = recon_env["RECON_DATABASE_URL"]
    env = {**os.environ, **recon_env, "RECON_FUNDS_FROM": first.isoformat(), "PYTHONPATH": str(ROOT)}

    def fresh() -> Engine:
        _reset(url, tmp_path)
        inbox = Path(recon_env["RECON_HOME"]) / "inbox"
        _deliver(inbox, days.files)
        _deliver(inbox, paid.files)
        reconcile_dates(load_config(), [first], workbook=False, cascade=False)
        return connect(url)

    def child(fault: str | None = None) -> int:
        extra = {"RECON_FAULTPOINT": fault} if fault else {}
        done = subprocess.run([sys.executable, str(CHILD), last.isoformat()], env={**env, **extra},
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        return done.returncode

    engine = fresh()
    assert child() == 0
    reference = _funds_books(engine)
    engine.dispose()
    for point in ("funds_written", "funds_before_commit"):
        engine = fresh()
        before = _funds_books(engine)
        assert child(point) == -9, point
        assert _funds_books(engine) == before, f"{point}: the killed funds stage left something"
        assert child() == 0
        assert _funds_books(engine) == reference, f"killed at {point}, the next run did not converge"
        engine.dispose()


def _customer_service_sees_whether_a_payment_has_arrived(engine: Engine) -> None:
    """`recon status`: each payment of the contract says what became of its day's settlement."""
    ledger = table_of(LedgerEntry)
    with engine.connect() as conn:
        contracts = {
            key: conn.execute(select(ledger.c.contract_no).where(
                ledger.c.channel == key[0], ledger.c.business_date == key[1], ledger.c.kind == "payment",
                ledger.c.contract_no.is_not(None)).limit(1)).scalar_one()
            for key in (("alipay", LAST), ("icbc", SHORT[1]), ("alipay", dt.date(2026, 10, 2)))
        }  # fmt: skip
        said = {key: contract_report(conn, contract, "en") for key, contract in contracts.items()}
    def settlement(key: tuple[str, dt.date]) -> dict[str, object]:
        report = said[key]
        assert report is not None
        row = next(e for e in report["ledger"] if e["channel"] == key[0] and e["business_date"] == key[1].isoformat())
        return row["settlement"]

    pending = {"outcome": "SETTLEMENT_PENDING", "label": "in transit (in window) due by 2026-10-10", "paid_on": None,
               "window_to": "2026-10-10", "as_of": LAST.isoformat()}  # fmt: skip
    assert settlement(("alipay", LAST)) == pending
    assert settlement(("icbc", SHORT[1]))["outcome"] == "SETTLEMENT_SHORT"
    paid = settlement(("alipay", dt.date(2026, 10, 2)))
    assert (paid["outcome"], paid["paid_on"]) == ("SETTLED", "2026-10-08")  # the holiday's lump
