"""What arrives beside the daily bills: copies, the account bill, files already counted for another date."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from flows.config import load_config
from flows.db import ChannelRecord
from flows.importer import import_snapshot, write_snapshot
from flows.runner import reconcile_dates
from flows.store import connect
from reconcile import synthetic as syn
from reconcile.ingest import parse_channel_file
from reconcile.intake import claim
from tests.dbdump import dump_books

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 11, 26)
NEXT = DAY + dt.timedelta(days=1)


def _books(url: str) -> dict[str, list[tuple[object, ...]]]:
    books = dump_books(url)
    books.pop("source_files")  # registrations grow with every new file; the money must not
    return books


def _account_bill_of(trade_bill: bytes) -> bytes:
    """The account bill Alipay would send beside this business bill: the same money, told again."""
    settings = load_config().settings
    channel, layout = claim("alipay_trade.csv", trade_bill, settings)
    assert channel == "alipay" and layout == "alipay_trade"
    records = parse_channel_file("t", trade_bill, "0" * 64, settings.channels[channel], settings.layouts[layout], DAY)
    lines = records.records.select(
        pl.col("record_kind").alias("kind"),
        pl.col("channel_txn_id").alias("txn_id"),
        "reference",
        pl.col("account_shown").alias("account"),
        "amount_fen",
        "status",
        "settled_at",
        "memo",
    )
    return syn.alipay_account_bill(DAY, lines)


def _files(summary: dict[str, object]) -> dict[str, dict[str, object]]:
    return {item["name"]: item for item in summary["files"]}  # type: ignore[attr-defined]


def test_copies_and_restated_bills_are_counted_once_and_said_so(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = syn.generate_days(DAY, NEXT, 240, seed=8)
    write_snapshot(tmp_path / "snapshot", days.loans, days.installments, days.instructions)
    engine = connect(url)
    import_snapshot(engine, tmp_path / "snapshot")
    engine.dispose()
    inbox = Path(recon_env["RECON_HOME"]) / "inbox"
    (inbox / DAY.isoformat()).mkdir(parents=True)
    for name, data in days.files[DAY].items():
        (inbox / DAY.isoformat() / name).write_bytes(data)
    offline = syn.offline_repayments_file(
        pl.DataFrame(
            {
                "kind": ["debit"],
                "status": ["SUCCESS"],
                "txn_id": ["OFF0001"],
                "reference": [None],
                "memo": ["C-NO-SUCH-CONTRACT 门店还款"],
                "amount_fen": [12_345],
                "settled_at": [dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)],
            }
        )
    )
    (inbox / DAY.isoformat() / "offline_repayments.csv").write_bytes(offline)
    config = load_config()
    first = reconcile_dates(config, [DAY], workbook=False)[0]
    books = _books(url)

    trade_name = next(name for name in days.files[DAY] if name.startswith("alipay"))
    trade = days.files[DAY][trade_name]
    shutil.copy(inbox / DAY.isoformat() / trade_name, inbox / DAY.isoformat() / "alipay_trade_resent (1).csv")
    (inbox / DAY.isoformat() / "alipay_account_20261126.csv").write_bytes(_account_bill_of(trade))
    again = reconcile_dates(config, [DAY], workbook=True, cascade=False)[0]
    files = _files(again)
    assert files["alipay_trade_resent (1).csv"]["status"] == "SKIPPED"
    assert (
        files["alipay_trade_resent (1).csv"]["reason"]
        == f"the same bytes as {trade_name} in this delivery: counted once"
    )
    account = files["alipay_account_20261126.csv"]
    assert account["status"] == "ACCEPTED" and any("restate" in note for note in account["notes"])  # type: ignore[attr-defined]
    assert again["outcomes"] == first["outcomes"] and again["fen"] == first["fen"]
    rows = [row for row in load_workbook(again["workbook"], read_only=True).worksheets[0].iter_rows(values_only=True)
            if len(row) > 6]  # the files: name, channel, status, lines, stated, counted, reason  # fmt: skip
    assert any(
        row[2] == "已跳过(重复)" and str(row[6]).startswith("与本批的 ") and "只计一次" in str(row[6]) for row in rows
    )
    assert any(row[2] == "已接收" and "重复,已搁置(在该文件计一次)" in str(row[6]) for row in rows)
    assert _books(url) == books

    # the offline file re-sent under the next date's folder was counted for its own date already
    (inbox / NEXT.isoformat()).mkdir(parents=True)
    for name, data in days.files[NEXT].items():
        (inbox / NEXT.isoformat() / name).write_bytes(data)
    (inbox / NEXT.isoformat() / "offline_repayments_resent.csv").write_bytes(offline)
    following = reconcile_dates(config, [NEXT], workbook=False)[0]
    resent = _files(following)["offline_repayments_resent.csv"]
    assert resent["status"] == "SKIPPED"
    assert resent["reason"] == (
        f"the same bytes were processed for business date {DAY.isoformat()} as offline_repayments.csv: "
        "counted there, not again"
    )
    engine = connect(url)
    with engine.connect() as conn:
        offline_by_date = dict(
            conn.execute(
                select(ChannelRecord.business_date, func.count())
                .where(ChannelRecord.channel == "offline")
                .group_by(ChannelRecord.business_date)
            ).all()
        )
    engine.dispose()
    assert offline_by_date == {DAY: 1}
