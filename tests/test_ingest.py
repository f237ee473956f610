"""Reading channel files: accepted files give canonical records; bad ones are rejected with a reason."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.config import load_channel_config
from reconcile.ingest import parse_channel_file
from reconcile.settings import settings_from_mapping
from reconcile.synthetic import generate_days

DAY = dt.date(2026, 11, 27)
SETTINGS = settings_from_mapping(load_channel_config())
DAYS = generate_days(DAY, DAY, 300, seed=5)
ALIPAY = DAYS.files[DAY]["alipay_trade_20261127.csv"]
BANK = DAYS.files[DAY]["icbc_result_20261127.txt"]


def parse(channel: str, data: bytes, day: dt.date = DAY):  # type: ignore[no-untyped-def]
    config = SETTINGS.channels[channel]
    return parse_channel_file("f", data, "0" * 64, config, SETTINGS.layouts[config.layout], day)


def test_alipay_bill_reads_gbk_tabs_fullwidth_headers_and_refunds() -> None:
    parsed = parse("alipay", ALIPAY)
    assert parsed.rejected_reason is None
    assert parsed.records.height + parsed.invalid.height == parsed.rows
    assert not parsed.records["channel_txn_id"].str.contains("\t").any()
    assert set(parsed.records["record_kind"]) == {"debit", "refund"}
    assert (parsed.records["amount_fen"] > 0).all()
    assert all(total.agrees for total in parsed.control_totals)


def test_bank_result_reads_failures_with_reasons_and_keeps_bad_lines_with_their_number() -> None:
    parsed = parse("icbc", BANK)
    assert parsed.rejected_reason is None
    failed = parsed.records.filter(parsed.records["status"] == "FAILED")
    assert failed.height > 0 and failed["failure_reason"].null_count() == 0
    assert "INSUFFICIENT_FUNDS" in set(failed["failure_reason"])
    assert parsed.invalid.height > 0
    line = parsed.invalid.row(0, named=True)
    assert line["line_no"] > 1 and "settled_at" in line["message"] and line["raw_line"].startswith("D|")


@pytest.mark.parametrize(
    ("channel", "data", "reason"),
    [
        ("icbc", b"", "the file is empty"),
        ("icbc", b"\x00\x01\x02PK", "binary"),
        ("icbc", "H|B1|20261127|1|1.00|1|1.00\nD|1|张".encode("utf-16"), "binary"),
        ("alipay", b"\xff\xfe\xfa junk", "cannot be decoded"),
        ("icbc", BANK.replace(b"|20261127|", b"|20261126|", 1), "for business date 2026-11-26"),
        ("icbc", BANK.split(b"\n", 1)[1], "summary line"),
        ("alipay", ALIPAY.replace("交易合计：".encode("gb18030"), "交易合计：1".encode("gb18030")), "control totals"),
        ("alipay", ALIPAY.replace("商户订单号".encode("gb18030"), "订单号".encode("gb18030")), "no header row"),
        ("alipay", ALIPAY.rsplit("#-----".encode("gb18030"), 1)[0], "footer"),
    ],
)
def test_bad_files_are_rejected_whole_with_a_reason(channel: str, data: bytes, reason: str) -> None:
    parsed = parse(channel, data)
    assert parsed.rejected_reason is not None and reason in parsed.rejected_reason
    assert parsed.records.height == 0


def test_one_fen_off_in_the_bank_summary_rejects_the_file() -> None:
    ccb = DAYS.files[DAY]["ccb_result_20261127.txt"]
    parsed = parse("ccb", ccb)
    assert parsed.rejected_reason is not None and "control totals disagree" in parsed.rejected_reason


def test_an_id_that_a_spreadsheet_turned_into_e_notation_is_an_invalid_row() -> None:
    first_line = BANK.split(b"\n")[1].decode("gb18030")
    reference = first_line.split("|")[2]
    damaged = BANK.replace(reference.encode(), b"2.02302E+27", 1)
    parsed = parse("icbc", damaged)
    assert parsed.rejected_reason is None
    hits = parsed.invalid.filter(parsed.invalid["message"].str.contains("E-notation"))
    assert hits.height == 1 and hits["line_no"].item() == 2
