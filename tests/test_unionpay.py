"""UnionPay ACP's real clearing files: ZM (42 fixed-width fields, a space after each), ZME (差错), the
zip they come in, and a UnionPay day through the whole run on both databases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from flows.config import load_channel_config, load_config
from flows.runner import reconcile_dates
from reconcile import synthetic as syn
from reconcile.delivery import unpack
from reconcile.ingest import ParsedFile, parse_channel_file
from reconcile.intake import claim
from reconcile.settings import settings_from_mapping
from tests.books import deliver, imported_book, off_the_manifest
from tests.dbdump import stored_outcomes

DAY = dt.date(2026, 11, 27)
SETTINGS = settings_from_mapping(load_channel_config())
LINES = syn.sample_lines(DAY, 300, seed=8)
OK = LINES.filter(pl.col("status") == "SUCCESS")
FACTS = ["record_kind", "status", "channel_txn_id", "reference", "amount_fen", "settled_at", "refund_request_no"]
#: The ZM widths as UnionPay's ACP SDK demo publishes them (DemoBase.parseZMFile).
ZM_WIDTHS = [3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15, 1, 15,
             32, 13, 13, 8, 32, 13, 13, 12, 2, 1, 32, 98]  # fmt: skip


def read(name: str, data: bytes, day: dt.date | None = DAY) -> ParsedFile:
    channel, layout = claim(name, data, SETTINGS)
    assert channel == "unionpay" and layout is not None, f"{name} was not recognised as UnionPay's"
    return parse_channel_file(name, data, "0" * 64, SETTINGS.channels[channel], SETTINGS.layouts[layout], day)


def test_the_zm_layout_is_the_published_one() -> None:
    layout = SETTINGS.layouts["unionpay_zm"]
    assert list(layout.widths or ()) == ZM_WIDTHS and layout.gap == 1
    assert (layout.columns or ())[6] == "交易金额" and (layout.columns or ())[19] == "交易类型"
    line = syn.unionpay_zm_file(DAY, LINES.head(1)).decode("gb18030").split("\r\n")[0]
    assert len(line.encode("gb18030")) == sum(ZM_WIDTHS) + len(ZM_WIDTHS) - 1 == 607
    at = [sum(ZM_WIDTHS[:i]) + i for i in range(len(ZM_WIDTHS))]
    assert all(line[a - 1] == " " for a in at[1:])  # a space after every field
    assert line[at[6] : at[6] + 12].isdigit()  # 交易金额: 12 digits of fen
    assert line[at[16]] in "CD" and line[at[16] + 1 : at[16] + 13].isdigit()  # 结算金额: a sign and 12 digits


def test_a_zm_file_reads_back_exactly_what_was_written() -> None:
    parsed = read(syn.unionpay_zm_name(DAY), syn.unionpay_zm_file(DAY, LINES))
    assert parsed.rejected_reason is None and parsed.invalid.height == 0 and parsed.layout == "unionpay_zm"
    written = OK.select(
        pl.col("kind").alias("record_kind"), "status", pl.col("txn_id").alias("channel_txn_id"), "reference",
        "amount_fen", "settled_at", pl.col("refund_no").alias("refund_request_no"),
    ).sort(FACTS[:5])  # fmt: skip
    assert parsed.records.select(FACTS).sort(FACTS[:5]).equals(written)
    refunds = OK.filter(pl.col("kind") == "refund").height
    assert parsed.records.filter(pl.col("record_kind") == "refund").height == refunds > 0


def test_a_line_whose_trailing_space_was_kept_is_read_as_well() -> None:
    data = syn.unionpay_zm_file(DAY, LINES.head(5)).decode("gb18030").replace("\r\n", " \r\n").encode("gb18030")
    parsed = read(syn.unionpay_zm_name(DAY), data)
    assert parsed.invalid.height == 0
    assert parsed.records.height == LINES.head(5).filter(pl.col("status") == "SUCCESS").height > 0


def test_zme_lines_are_read_counted_and_set_aside_for_a_person() -> None:
    parsed = read(syn.unionpay_zme_name(DAY), syn.unionpay_zme_file(DAY, LINES.head(4)))
    assert parsed.rejected_reason is None and parsed.layout == "unionpay_zme"
    assert parsed.rows == 4 and parsed.records.height == 0
    assert parsed.notes == ("4 line(s) are neither debits nor refunds (E22) and were left aside",)


def test_the_delivery_zip_gives_zm_and_zme_and_leaves_the_summary_report() -> None:
    name, data = syn.unionpay_delivery(DAY, LINES, errors=LINES.head(2))
    assert name == f"{syn.UNIONPAY_MERCHANT}_20261127.zip"
    pieces = unpack(name, data, SETTINGS.layouts)
    assert [p.name.split("!")[1][:17] for p in pieces] == ["INN26112788ZM_898", "INN26112788ZME_89"]
    zm, zme = (read(p.name, p.data) for p in pieces)
    assert (zm.layout, zm.business_date, zm.records.height) == ("unionpay_zm", DAY, OK.height)
    assert (zme.layout, zme.rows) == ("unionpay_zme", 2)


@pytest.mark.slow
def test_a_unionpay_day_reproduces_the_manifest_through_the_whole_run(
    recon_env: dict[str, str], tmp_path: Path
) -> None:
    days = imported_book(recon_env["RECON_DATABASE_URL"], tmp_path, DAY, DAY, 400, 13, wallet="unionpay")
    assert f"{syn.UNIONPAY_MERCHANT}_20261127.zip" in days.files[DAY]
    deliver(Path(recon_env["RECON_HOME"]), DAY, days.files[DAY])
    [summary] = reconcile_dates(load_config(), [DAY], workbook=False)
    assert summary["balanced"] is True
    union = [f for f in summary["files"] if f["channel"] == "unionpay"]
    assert sorted(f["layout"] for f in union) == ["unionpay_zm", "unionpay_zme"], union
    assert all(f["status"] == "ACCEPTED" for f in union)
    wrong = off_the_manifest(days, recon_env["RECON_DATABASE_URL"])
    assert wrong.height == 0, f"records whose outcome differs from the manifest:\n{wrong}"
    stored = stored_outcomes(recon_env["RECON_DATABASE_URL"])
    mine = stored.filter(pl.col("subject_key").str.starts_with("unionpay|"))
    assert mine.height > 20
    outcomes = set(mine["outcome"].to_list())
    assert {"MATCHED", "REVERSAL", "UNMATCHED_DEBIT", "AMBIGUOUS_MATCH"} <= outcomes, outcomes
    missing = days.expected.filter(pl.col("expected_outcome") == "MISSING_FILE")
    assert summary["outcomes"]["MISSING_FILE"] == missing.height


def test_a_time_after_the_settlement_date_or_a_month_before_it_is_unreadable_not_a_year_off() -> None:
    lines = syn.unionpay_zm_file(DAY, LINES.head(12)).decode("gb18030").split("\r\n")
    at = sum([3, 11, 11, 6]) + 4  # 交易传输时间, after four fields and their spaces
    for time, readable in (("1128000500", False), ("1026235959", False), ("1027000000", True), ("1127235959", True)):
        changed = [lines[0][:at] + time + lines[0][at + 10 :], *lines[1:]]
        parsed = read(syn.unionpay_zm_name(DAY), "\r\n".join(changed).encode("gb18030"))
        assert parsed.rejected_reason is None
        if readable:
            assert parsed.invalid.height == 0, time
        else:
            assert parsed.invalid.select("line_no", "message").rows() == [
                (1, f"settled_at: {time} is not a time of the form %m%d%H%M%S within 31 days before the settlement "
                 "date")
            ]
