"""Statements of the collection account arrive in the inbox beside the channels' files: each is
recognised by content, read or refused whole with its reason, and one bad statement stops nothing
else. Pure, then through the run on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import polars as pl
import pytest

from flows.config import load_channel_config, load_config, load_funds_rules
from flows.runner import reconcile_dates
from reconcile import synthetic as syn
from reconcile.ingest import ParsedFile, parse_channel_file
from reconcile.intake import STATEMENT, DiscoveredFile, claim, parse_files
from reconcile.settings import settings_from_mapping
from tests import funds_week as W
from tests.test_statements import MT940, _camt, _entry, _tx

CHANNELS = load_channel_config()
FUNDS = load_funds_rules(None, tuple(CHANNELS["channels"]))
SETTINGS = dataclasses.replace(settings_from_mapping(CHANNELS), funds=FUNDS, funds_from=W.D(2026, 9, 28))
PAYOUT = _tx("50.00", "支付宝（中国）网络技术有限公司", "结算 20261007", "T1")
GOOD_CAMT = _camt(_entry("50.00", PAYOUT), closing="150.00")
UNEVEN_MT940 = MT940.replace(":62F:C261009CNY1000,00", ":62F:C261009CNY999,00").encode()
DTD_CAMT = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]>' + GOOD_CAMT.split(b"?>", 1)[1]


@pytest.mark.parametrize(
    ("data", "kind"),
    [(W.statement_bytes(), "cmb_corporate"), (GOOD_CAMT, "camt.053"), (MT940.encode(), "mt940"),
     (DTD_CAMT, "camt.053")],
)
def test_a_statement_is_claimed_by_content_whatever_its_name(data: bytes, kind: str) -> None:
    assert claim("anything.dat", data, SETTINGS) == (STATEMENT, kind)


def _found(name: str, data: bytes) -> DiscoveredFile:
    channel, layout = claim(name, data, SETTINGS)
    return DiscoveredFile(name, Path(name), hashlib.sha256(data).hexdigest(), len(data), channel, data, layout=layout)


def test_good_statements_give_lines_bad_ones_a_reason() -> None:
    parsed = parse_files(
        [_found("cmb.csv", W.statement_bytes()), _found("uneven.sta", UNEVEN_MT940), _found("dtd.xml", DTD_CAMT)],
        SETTINGS, W.AS_OF,
    )  # fmt: skip
    by_name = {p.source_file: p for p in parsed}
    good = by_name["cmb.csv"]
    assert good.status == "ACCEPTED" and good.statement_lines is not None and good.statement_lines.height == 16
    assert good.records.height == 0 and good.channel == STATEMENT
    uneven = by_name["uneven.sta"]
    assert uneven.status == "REJECTED" and "does not add up" in (uneven.rejected_reason or "")
    assert "document type" in (by_name["dtd.xml"].rejected_reason or "")


@pytest.mark.slow
def test_one_bad_statement_stops_nothing_else(recon_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_FUNDS_FROM", "2026-09-28")
    home = Path(recon_env["RECON_HOME"])
    inbox = home / "inbox" / W.AS_OF.isoformat()
    inbox.mkdir(parents=True)
    (inbox / "cmb_statement_20261014.csv").write_bytes(W.statement_bytes())
    (inbox / "statement_20261014.sta").write_bytes(UNEVEN_MT940)
    (inbox / "statement_20261014.xml").write_bytes(DTD_CAMT)
    summary = reconcile_dates(load_config(), [W.AS_OF], workbook=False)[0]
    files = {f["name"]: f for f in summary["files"]}
    statement = files["cmb_statement_20261014.csv"]
    assert statement["status"] == "ACCEPTED" and statement["rows"] == 16
    assert files["statement_20261014.sta"]["status"] == "REJECTED"
    assert "opening 1000.00 + lines 0.00 ≠ closing 999.00" in files["statement_20261014.sta"]["reason"]
    assert files["statement_20261014.xml"]["status"] == "REJECTED"
    assert summary["outcomes"]["FILE_REJECTED"] == 2 and summary["status"] == "SUCCEEDED"
    assert summary["funds"]["statement_lines"] == 16
    quarantined = sorted(p.name for p in (home / "quarantine" / W.AS_OF.isoformat()).iterdir() if p.suffix == ".txt")
    assert len(quarantined) == 2
    again = reconcile_dates(load_config(), [W.AS_OF], workbook=False)[0]
    assert again["funds"]["clearing"] == summary["funds"]["clearing"]
    assert dt.date.fromisoformat(again["funds"]["as_of"]) == W.AS_OF


def _read(name: str, data: bytes, channel: str, layout: str) -> ParsedFile:
    return parse_channel_file(name, data, hashlib.sha256(data).hexdigest(), SETTINGS.channels[channel],
                              SETTINGS.layouts[layout], DAY)  # fmt: skip


DAY = dt.date(2026, 11, 27)
LINES = syn.sample_lines(DAY, 300, seed=5)
OK = LINES.filter(pl.col("status") == "SUCCESS")


def _half_up_fee(fen: int) -> int:
    return (fen * 6 + 500) // 1000


def test_what_each_channel_says_it_charged_is_kept_for_the_funds() -> None:
    debits = OK.filter(pl.col("kind") == "debit")["amount_fen"].to_list()
    refunds = OK.filter(pl.col("kind") == "refund")["amount_fen"].to_list()
    # UnionPay's ZM: a fee per line, D charged and C given back on a refund: one stated fee per file
    zm = _read(syn.unionpay_zm_name(DAY), syn.unionpay_zm_file(DAY, LINES), "unionpay", "unionpay_zm")
    assert zm.settlement_lines is not None and zm.merchant_id == syn.UNIONPAY_MERCHANT  # named by its file
    fees = sum(map(_half_up_fee, debits)) - sum(map(_half_up_fee, refunds))
    # and what it settles net of them (清算净额: C paid, D taken back)
    net = sum(fen - _half_up_fee(fen) for fen in debits) - sum(fen - _half_up_fee(fen) for fen in refunds)
    assert zm.settlement_lines.select("line_no", "settlement_kind", "amount_fen").rows() == [
        (0, "fee", fees), (0, "net", net),
    ]  # fmt: skip
    # a bank's batch file says what it collected: its summary's success total
    bank = _read("icbc_result_20261127.txt", syn.bank_result_file(DAY, LINES), "icbc", "bank_pipe_v1")
    assert bank.settlement_lines is not None
    # (a bank's file knows no refunds: every successful line of the sample is a collection there)
    collected = bank.settlement_lines.select("settlement_kind", "amount_fen").rows()
    assert collected == [("collected", sum(OK["amount_fen"]))]
    # WeChat Pay's fund-flow bill: one 扣除交易手续费 line per payment
    flow = _read("wechat_fundflow_20261127.csv", syn.wechat_fundflow_bill(DAY, LINES), "wechat", "wechat_fundflow")
    assert flow.settlement_lines is not None
    fees = flow.settlement_lines.filter(pl.col("settlement_kind") == "fee")
    assert fees.height == len(debits) and fees["amount_fen"].sum() == sum(map(_half_up_fee, debits))
    # Alipay's account bill: its one 收费 line, 0.10 a debit
    account = syn.alipay_account_bill(DAY, LINES)
    bill = _read("alipay_signcustomer_20261127.csv", account, "alipay", "alipay_signcustomer")
    assert bill.settlement_lines is not None
    assert bill.settlement_lines.select("settlement_kind", "amount_fen").rows() == [("fee", 10 * len(debits))]
    # the lines set aside stay out of the records
    assert bill.records.filter(pl.col("channel_txn_id").str.ends_with("FEE")).is_empty()
