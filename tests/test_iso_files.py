"""ISO 20022 files as banks send them: large, pretty-printed, several details per entry, other
currencies, and XML that libxml2's limits refuse — each read or refused with its reason."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.config import load_channel_config
from reconcile.ingest import ParsedFile, identify_layout, parse_channel_file
from reconcile.iso20022 import message_kind
from reconcile.layouts import MapField
from reconcile.settings import settings_from_mapping
from tests.iso_files import PAIN, Status, camt054, detail, pain002

SETTINGS = settings_from_mapping(load_channel_config())
DAY = dt.date(2026, 11, 27)


def _read(data: bytes) -> ParsedFile:
    channel = SETTINGS.channels["iso20022"]
    return parse_channel_file("f.xml", data, "0" * 64, channel, SETTINGS.layouts["iso20022"], DAY)


def test_a_report_of_more_lines_than_sixteen_bits_count_keeps_each_line_number() -> None:
    statuses = [Status(f"I{i:08d}", f"S{i}", amount=f"{i % 900 + 1}.05") for i in range(12_000)]
    data = pain002(statuses, pretty=True)
    assert data.count(b"\n") > 65_536
    parsed = _read(data)
    assert parsed.rejected_reason is None and parsed.invalid.height == 0
    records = parsed.records.sort("line_no")
    assert records.height == 12_000 and records["line_no"].n_unique() == 12_000
    assert records["line_no"][-1] > 65_536
    assert records["amount_fen"].sum() == sum((i % 900 + 1) * 100 + 5 for i in range(12_000))
    # the line of each transaction is where its element opens
    lines = data.decode().split("\n")
    assert lines[records["line_no"][-1] - 1].startswith("<TxInfAndSts>")


@pytest.mark.slow
def test_a_report_of_480k_transactions_is_read_whole() -> None:
    data = pain002((Status(f"I{i:09d}", f"S{i}") for i in range(480_000)), pretty=True)
    assert len(data) > 120_000_000
    parsed = _read(data)
    assert parsed.rejected_reason is None and parsed.invalid.height == 0
    assert parsed.records.height == 480_000 and parsed.records["amount_fen"].sum() == 480_000 * 10_000


def test_recognising_a_report_does_not_read_it_whole() -> None:
    # a report cut short is still recognised by its root (and its reader then says where it breaks)
    data = pain002([Status("I1", "S1"), Status("I2", "S2")])
    cut = data[: data.index(b"<TxSts>", data.index(b"I2"))]
    assert message_kind(cut) == "pain.002" and identify_layout(cut, SETTINGS.layouts) == "iso20022"
    parsed = _read(cut)
    assert parsed.rejected_reason is not None and parsed.rejected_reason.startswith("the XML is malformed at line")


def test_each_transaction_detail_of_an_entry_is_its_own_record() -> None:
    data = camt054([("E-1", "300.00", [detail("I1", "100.00"), detail("I2", "120.00"), detail("I3", "80.00")]),
                    ("E-2", "50.00", [detail("I4", tx_id="T4")])])  # fmt: skip
    parsed = _read(data)
    assert parsed.rejected_reason is None and parsed.invalid.height == 0
    rows = parsed.records.sort("reference").select("reference", "channel_txn_id", "amount_fen").rows()
    # details without their own id are told apart by their place in the entry; a single detail
    # takes the entry's amount
    assert rows == [("I1", "E-1/1", 10000), ("I2", "E-1/2", 12000), ("I3", "E-1/3", 8000), ("I4", "T4", 5000)]


def test_an_entry_total_is_never_split_among_details_that_state_no_amount() -> None:
    parsed = _read(camt054([("E-1", "300.00", [detail("I1"), detail("I2")])]))
    assert parsed.records.height == 0 and parsed.invalid.height == 2
    assert set(parsed.invalid["message"]) == {
        "amount: the transaction states none (an entry's total is never split among its details)"
    }


def test_a_transaction_in_another_currency_is_an_invalid_line() -> None:
    parsed = _read(
        pain002([Status("I1", "S1"), Status("I2", "S2", currency="EUR"), Status("I3", "S3", currency="sek")])
    )
    assert parsed.records["reference"].to_list() == ["I1"]
    assert sorted(parsed.invalid["message"]) == [
        "currency: EUR is not this channel's currency (CNY)",
        "currency: sek is not this channel's currency (CNY)",
    ]


def _document(inner: bytes) -> bytes:
    return (
        b'<?xml version="1.0"?>\n<Document xmlns="'
        + PAIN.encode()
        + b'"><CstmrPmtStsRpt>'
        + inner
        + (b"</CstmrPmtStsRpt></Document>")
    )


@pytest.mark.parametrize(
    ("inner", "reason"),
    [
        (b"<a>" * 300 + b"</a>" * 300, "the XML nests elements deeper than 256 levels: refused"),
        (b"<GrpHdr><MsgId>" + b"x" * 11_000_000 + b"</MsgId></GrpHdr>", "the XML holds a text of more than 10 MB"),
        (b"<GrpHdr><MsgId>M</GrpHdr>", "the XML is malformed at line 2: Opening and ending tag mismatch"),
    ],
    ids=["300 deep", "11 MB text node", "mismatched tags"],
)
def test_xml_beyond_the_parsers_limits_is_refused_naming_the_limit(inner: bytes, reason: str) -> None:
    data = _document(inner)
    assert identify_layout(data, SETTINGS.layouts) == "iso20022"  # recognised, so refused with its own reason
    parsed = _read(data)
    assert parsed.rejected_reason is not None and parsed.rejected_reason.startswith(reason), parsed.rejected_reason


def test_a_delimited_layout_with_a_currency_column_checks_each_line() -> None:

    offline = SETTINGS.layouts["offline_repayments"]
    currency = MapField(column="币种", map={"人民币": "CNY", "美元": "USD"})
    layout = offline.model_copy(update={"fields": {**offline.fields, "currency": currency}})
    data = (
        "门店编号,经办人,收款流水号,合同号,还款金额,收款时间,币种\n"
        "S1,甲,T1,C1,10.00,2026-11-27 08:00:00,人民币\n"
        "S1,甲,T2,C2,20.00,2026-11-27 08:01:00,美元\n"
        "S1,甲,T3,C3,30.00,2026-11-27 08:02:00,\n"
    ).encode()
    parsed = parse_channel_file("offline_20261127.csv", data, "0" * 64, SETTINGS.channels["offline"], layout, DAY)
    assert parsed.rejected_reason is None
    assert parsed.records["channel_txn_id"].to_list() == ["T1", "T3"]  # a blank currency is the channel's
    assert parsed.invalid.select("line_no", "message").rows() == [
        (3, "currency: USD is not this channel's currency (CNY)")
    ]
