"""The collection account's statements: camt.053, MT940 and Chinese online-banking downloads,
the real public samples among them, read to the fen or refused with a reason."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from reconcile.funds.rules import packaged_funds_rules
from reconcile.funds.statements import StatementRejected, parse_bank_export, read_statement
from tests.conftest import REAL_SAMPLES

LAYOUTS = packaged_funds_rules().statement_layouts
samples = pytest.mark.skipif(
    not REAL_SAMPLES.is_dir(), reason=f"the real samples folder {REAL_SAMPLES} is absent: nothing to read"
)


def _tag61_fen(path: Path) -> list[int]:
    """Each ``:61:``'s signed fen, by a parse of this test's own (mark, then the comma amount)."""
    found = []
    for line in path.read_text(encoding="latin-1").splitlines():
        head = re.match(r"^:61:\d{6}(?:\d{4})?(R?[CD])[A-Z]?\s?([\d,]+)", line)
        if head:
            mark, amount = head.groups()
            fen = int(Decimal(amount.replace(",", ".")) * 100)
            found.append(fen if mark in ("C", "RD") else -fen)
    return found


@samples
@pytest.mark.parametrize("name", ["mt940.sta", "ing.sta", "sepa_snippet.sta"])
def test_every_mt940_line_of_the_real_samples_reads_to_the_fen(name: str) -> None:
    path = REAL_SAMPLES / "swift_mt940" / name
    _, lines = read_statement(path.read_bytes(), name, check_balances=False, currency=None)
    assert lines["amount_fen"].to_list() == _tag61_fen(path)
    assert lines["line_key"].is_unique().all()


@samples
def test_mt940_balances_are_checked_and_the_edited_samples_say_so() -> None:
    path = REAL_SAMPLES / "swift_mt940"
    _, lines = read_statement((path / "mt940.sta").read_bytes(), "mt940.sta", currency=None)  # three that tie
    accounts = ["10020030/1234567", "45050050/76198810", "BPHKPLPK/320000546101"]
    assert lines["account"].unique().sort().to_list() == accounts
    with pytest.raises(StatementRejected, match=r"opening 0\.00 \+ lines -45\.59 ≠ closing 3\.47"):
        read_statement((path / "ing.sta").read_bytes(), "ing.sta", currency=None)
    with pytest.raises(StatementRejected, match="line 5 is in DEM, not CNY"):
        read_statement((path / "mt940.sta").read_bytes(), "mt940.sta")


@samples
def test_mt940_details_and_accounts_per_statement() -> None:
    _, lines = read_statement((REAL_SAMPLES / "swift_mt940" / "sepa_snippet.sta").read_bytes(), "s.sta",
                              check_balances=False, currency=None)  # fmt: skip
    first = lines.row(0, named=True)
    assert first["account"] == "50880050/0194787400888" and lines["account"][-1] == "50880050/0194791600888"
    assert (str(first["value_date"]), str(first["booking_date"])) == ("2007-09-07", "2007-09-04")
    assert first["bank_reference"] == "0724710333343453"
    assert "Empfaenger Marta Metzger" in first["narrative"]  # a line cut mid-word is joined whole
    _, ing = read_statement((REAL_SAMPLES / "swift_mt940" / "ing.sta").read_bytes(), "i.sta",
                            check_balances=False, currency=None)  # fmt: skip
    assert ing["narrative"][0].startswith("RC AFREKENING BETALINGSVERKEER BETREFT REKENING 4715589")
    assert "D000004C000002" not in ing["narrative"][-1]  # the statement's own :86: is no line's


@samples
@pytest.mark.parametrize(
    ("name", "fen", "booked", "valued", "payer"),
    [
        ("camt053.v2.minimal.xml", 885, "2014-12-31", "2015-01-02", "NAME NAME"),
        ("camt053.v8.xml", 885, "2014-12-31", "2015-01-02", "NAME NAME"),
        ("test-sepa-camt-053-unpaid.xml", -10_000, "2016-10-08", "2016-10-08", "CREDITOR"),
    ],
)
def test_camt053_real_samples(name: str, fen: int, booked: str, valued: str, payer: str) -> None:
    data = (REAL_SAMPLES / "iso20022_camt053" / name).read_bytes()
    kind, lines = read_statement(data, name, check_balances=False, currency=None)
    assert kind == "camt.053" and lines.height == data.count(b"<Ntry>")
    row = lines.row(0, named=True)
    assert (row["amount_fen"], str(row["booking_date"]), str(row["value_date"]), row["counterparty_name"]) == (
        fen, booked, valued, payer,
    )  # fmt: skip


def _camt(entries: str, opening: str = "100.00", closing: str | None = None) -> bytes:
    balances = f"""<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">{opening}</Amt>
      <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-10-08</Dt></Dt></Bal>"""
    if closing is not None:
        balances += f"""<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">{closing}</Amt>
      <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-10-08</Dt></Dt></Bal>"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-10-09T06:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><Othr><Id>755912345610901</Id></Othr></Id></Acct>{balances}{entries}</Stmt>
</BkToCstmrStmt></Document>""".encode()


def _tx(amount: str, payer: str, text: str, ref: str) -> str:
    return f"""<TxDtls><Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs><Amt Ccy="CNY">{amount}</Amt>
      <RltdPties><Dbtr><Nm>{payer}</Nm></Dbtr></RltdPties><RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls>"""


def _entry(amount: str, details: str = "", mark: str = "CRDT", reversal: bool = False) -> str:
    flag = "<RvslInd>true</RvslInd>" if reversal else ""
    return f"""<Ntry><Amt Ccy="CNY">{amount}</Amt><CdtDbtInd>{mark}</CdtDbtInd>{flag}<Sts>BOOK</Sts>
      <BookgDt><Dt>2026-10-08</Dt></BookgDt><ValDt><Dt>2026-10-09</Dt></ValDt><AcctSvcrRef>E1</AcctSvcrRef>
      <NtryDtls><Btch><NbOfTxs>3</NbOfTxs></Btch>{details}</NtryDtls></Ntry>"""


def test_a_batch_entry_is_one_line_per_detail_when_the_details_add_up() -> None:
    details = "".join(_tx(a, "支付宝（中国）网络技术有限公司", f"结算 2026100{n}", f"T{n}") for n, a in
                      enumerate(["100.00", "200.50", "0.25"], start=1))  # fmt: skip
    _, lines = read_statement(_camt(_entry("300.75", details), closing="400.75"), "camt.xml")
    assert lines["amount_fen"].to_list() == [10_000, 20_050, 25]
    assert lines["bank_reference"].to_list() == ["T1", "T2", "T3"]
    assert lines["narrative"].to_list() == ["结算 20261001", "结算 20261002", "结算 20261003"]
    assert (str(lines["booking_date"][0]), str(lines["value_date"][0]), lines["account"][0]) == (
        "2026-10-08", "2026-10-09", "755912345610901",
    )  # fmt: skip


def test_details_that_do_not_add_up_leave_the_entry_whole() -> None:
    details = _tx("100.00", "A", "x", "T1") + _tx("100.00", "A", "y", "T2")
    _, lines = read_statement(_camt(_entry("300.00", details)), "camt.xml")
    assert lines["amount_fen"].to_list() == [30_000]


def test_camt_reversals_and_debits_are_signed() -> None:
    entries = _entry("50.00", _tx("50.00", "A", "x", "T1"))
    entries += _entry("50.00", _tx("50.00", "A", "x", "T2"), reversal=True)
    entries += _entry("3.00", _tx("3.00", "A", "fee", "T3"), mark="DBIT")
    _, lines = read_statement(_camt(entries, closing="97.00"), "camt.xml")
    assert lines.select("amount_fen", "reversal").rows() == [(5_000, False), (-5_000, True), (-300, False)]


def test_camt_that_does_not_add_up_or_is_hostile_is_refused() -> None:
    with pytest.raises(StatementRejected, match=r"opening 100\.00 \+ entries 50\.00 ≠ closing 100\.00"):
        read_statement(_camt(_entry("50.00", _tx("50.00", "A", "x", "T1")), closing="100.00"), "camt.xml")
    hostile = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]>' + _camt("").split(b"?>", 1)[1]
    with pytest.raises(StatementRejected, match="document type"):
        read_statement(hostile, "camt.xml")
    with pytest.raises(StatementRejected, match="malformed"):
        read_statement(_camt(_entry("50.00"))[:-40], "camt.xml")
    euro = _camt(_entry("50.00", _tx("50.00", "A", "x", "T1"))).replace(
        b'Ccy="CNY">50.00</Amt><CdtDbtInd>', b'Ccy="EUR">50.00</Amt><CdtDbtInd>'
    )
    with pytest.raises(StatementRejected, match="in EUR, not CNY"):
        read_statement(euro, "camt.xml")


MT940 = """:20:STMT1\r
:25:755912345610901\r
:28C:1/1\r
:60F:C261008CNY1000,00\r
:61:2610081008C500,00NTRFNONREF//B1\r
:86:ALIPAY SETTLEMENT 20260930\r
:61:2610091009RC500,00NTRFNONREF//B2\r
:86:REVERSAL OF B1\r
:61:2610091009D20,50NMSCNONREF//B3\r
:86:FEE\r
:61:2610091009RD20,50NMSCNONREF//B4\r
:62F:C261009CNY1000,00\r
-\r
"""


def test_mt940_marks_and_crlf() -> None:
    kind, lines = read_statement(MT940.encode(), "s.sta")
    assert kind == "mt940"
    assert lines.select("amount_fen", "reversal", "bank_reference").rows() == [
        (50_000, False, "B1"), (-50_000, True, "B2"), (-2_050, False, "B3"), (2_050, True, "B4"),
    ]  # fmt: skip
    assert lines["line_no"].to_list() == [5, 7, 9, 11]
    with pytest.raises(StatementRejected, match="does not add up"):
        read_statement(MT940.replace(":62F:C261009CNY1000,00", ":62F:C261009CNY1000,01").encode(), "s.sta")


HEADER = "交易日期,摘要,交易详情,交易场所,交易国家或地区简称,钞/汇,交易金额(收入),记账金额(收入),记账金额(支出)"
ICBC_LINES = [
    "明细查询文件下载",
    "卡号: 6222021234567891234",
    "",
    HEADER + ",记账币种,余额,对方户名,对方账户",
    ",".join(["2026-10-08   \t", "转账   \t", "支付宝结算 20260930\t", "   \t", "CHN\t", "钞\t", "649.50\t",
              "649.50\t", "\t", "人民币\t", '"1,649.50"\t', "支付宝（中国）网络技术有限公司\t", "1234567890\t"]),
    ",".join(["2026-10-08   \t", "转账   \t", "退回\t", "   \t", "CHN\t", "钞\t", "\t", "\t", "3.00\t", "人民币\t",
              '"1,646.50"\t', "张三\t", "6222020000001234\t"]),
    "人民币合计,,,,,,,649.50,3.00,,,,",
]  # fmt: skip
ICBC = "\r\n".join(ICBC_LINES) + "\r\n"


def test_an_icbc_personal_download_with_padding_and_its_footer() -> None:
    kind, lines = read_statement(ICBC.encode("gb18030"), "icbc.csv", LAYOUTS)
    assert kind == "icbc_personal"
    assert lines.select("amount_fen", "counterparty_name", "narrative").rows() == [
        (64_950, "支付宝（中国）网络技术有限公司", "转账 支付宝结算 20260930"),
        (-300, "张三", "转账 退回"),
    ]
    assert lines["reversal"].to_list() == [False, True]  # 退回 is a reversal word
    assert lines["line_no"].to_list() == [5, 6]


def test_a_download_whose_footer_disagrees_or_states_both_sides_is_refused() -> None:
    with pytest.raises(StatementRejected, match=r"footer states 记账金额\(支出\) 4\.00, the lines add up to 3\.00"):
        read_statement(ICBC.replace(",649.50,3.00,", ",649.50,4.00,").encode("gb18030"), "icbc.csv", LAYOUTS)
    both = ICBC.replace(",\t,3.00\t,", ",1.00\t,3.00\t,")
    with pytest.raises(StatementRejected, match="both an income and an expense"):
        parse_bank_export(both.encode("gb18030"), "icbc.csv", "0" * 64, LAYOUTS["icbc_personal"])
    with pytest.raises(StatementRejected, match="not a statement"):
        read_statement(b"hello,world\r\n1,2\r\n", "x.csv", LAYOUTS)
