"""The layouts beyond the first two: account bill, fixed-width 回盘, clearing file, offline repayments.

The same channel lines are written in each layout by ``reconcile.synthetic``; every layout must give
back exactly those lines, and the layouts that carry the same facts must agree with each other.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from flows.config import load_channel_config
from reconcile import synthetic as syn
from reconcile.ingest import ParsedFile, parse_channel_file, set_aside_evidence, set_aside_restated
from reconcile.intake import claim
from reconcile.settings import settings_from_mapping

DAY = dt.date(2026, 11, 27)
SETTINGS = settings_from_mapping(load_channel_config())
LINES = syn.sample_lines(DAY, 400, seed=3)
SUCCESS = LINES.filter(pl.col("status") == "SUCCESS")
DEBITS = LINES.filter(pl.col("kind") == "debit")
FACTS = ["record_kind", "status", "channel_txn_id", "reference", "amount_fen", "settled_at", "failure_reason"]


def read(name: str, data: bytes, day: dt.date | None = DAY) -> ParsedFile:
    channel, layout = claim(name, data, SETTINGS)
    assert channel is not None and layout is not None, f"{name} was not recognised"
    return parse_channel_file(name, data, "0" * 64, SETTINGS.channels[channel], SETTINGS.layouts[layout], day)


def accepted(parsed: ParsedFile) -> ParsedFile:
    assert parsed.rejected_reason is None, parsed.rejected_reason
    assert parsed.invalid.height == 0, parsed.invalid.to_dicts()[:3]
    assert all(total.agrees for total in parsed.control_totals)
    return parsed


def as_written(lines: pl.DataFrame) -> pl.DataFrame:
    """The facts the writers were given, in canonical names."""
    return lines.select(
        pl.col("kind").alias("record_kind"),
        "status",
        pl.col("txn_id").alias("channel_txn_id"),
        "reference",
        "amount_fen",
        "settled_at",
    ).sort(FACTS[:5])


def test_fixed_width_bank_file_gives_the_same_records_as_the_delimited_one() -> None:
    fixed = accepted(read("boc_result_20261127.txt", syn.bank_fixed_file(DAY, DEBITS)))
    piped = accepted(read("icbc_result_20261127.txt", syn.bank_result_file(DAY, DEBITS)))
    assert (fixed.layout, piped.layout) == ("bank_fixed_v1", "bank_pipe_v1")
    assert fixed.records.select(FACTS).sort(FACTS[:5]).equals(piped.records.select(FACTS).sort(FACTS[:5]))
    assert fixed.records["status"].value_counts().height == 2  # failures are read too
    names = fixed.records.join(DEBITS.select("txn_id", "name"), left_on="channel_txn_id", right_on="txn_id")
    assert names.height == DEBITS.height  # GBK names (two bytes a character) did not shift any field


def test_fixed_width_counts_bytes_not_characters_and_names_a_shifted_line() -> None:
    lines = syn.bank_fixed_file(DAY, DEBITS.head(5)).decode("gb18030").splitlines()
    name_starts, amount_starts = 61, 80  # in characters: the name field holds two-byte "王*" + 17 spaces

    def rejection(index: int, changed: str) -> str | None:
        damaged = [*lines[:index], changed, *lines[index + 1 :]]
        return read("boc_result_20261127.txt", ("\r\n".join(damaged) + "\r\n").encode("gb18030")).rejected_reason

    one_byte_more = lines[2][:name_starts] + "x" + lines[2][name_starts:]
    assert "1 line(s) could not be read, the first at line 3 (191 bytes where the layout has 190)" in str(
        rejection(2, one_byte_more)
    )
    # same byte length, but a Chinese character sits across the name/amount boundary
    straddling = lines[3][: amount_starts - 1] + "王" + lines[3][amount_starts + 1 :]
    assert len(straddling.encode("gb18030")) == 190
    assert "the first at line 4 (a double-byte character straddles two fields: the line is shifted)" in str(
        rejection(3, straddling)
    )


def test_fixed_width_total_off_by_one_fen_is_rejected() -> None:
    parsed = read("boc_result_20261127.txt", syn.bank_fixed_file(DAY, DEBITS, total_error_fen=1))
    assert parsed.rejected_reason is not None and parsed.rejected_reason.startswith("control totals disagree (all)")


def test_account_bill_reads_income_and_expense_columns_and_sets_fees_aside() -> None:
    parsed = accepted(read("alipay_account_20261127.csv", syn.alipay_account_bill(DAY, LINES)))
    assert parsed.layout == "alipay_signcustomer"
    assert parsed.records.select(FACTS[:6]).sort(FACTS[:5]).equals(as_written(SUCCESS))
    assert [t.applies_to for t in parsed.control_totals] == ["income", "expense"]
    assert parsed.notes == ("1 line(s) are neither debits nor refunds (收费) and were left aside",)
    refunds = parsed.records.filter(pl.col("record_kind") == "refund")
    assert refunds["refund_request_no"].null_count() == 0  # its own serial, so two refunds are two
    assert parsed.records.filter(pl.col("record_kind") == "debit")["refund_request_no"].null_count() == len(
        parsed.records.filter(pl.col("record_kind") == "debit")
    )


def test_account_bill_lines_that_restate_the_business_bill_are_counted_once() -> None:
    trade = accepted(read("alipay_trade_20261127.csv", syn.alipay_trade_bill(DAY, SUCCESS)))
    only_account = SUCCESS.head(SUCCESS.height - 3)  # the business bill has three lines more
    account = accepted(read("alipay_account_20261127.csv", syn.alipay_account_bill(DAY, SUCCESS.tail(3))))
    account_all = accepted(read("alipay_account_full.csv", syn.alipay_account_bill(DAY, SUCCESS)))
    short_trade = accepted(read("alipay_trade_short.csv", syn.alipay_trade_bill(DAY, only_account)))

    both = set_aside_restated([trade, account_all], SETTINGS.layouts)
    assert both[0].records.height == trade.records.height and both[1].records.height == 0
    assert both[1].notes[-1].startswith(f"{trade.records.height} line(s) restate alipay_trade_20261127.csv")

    # a payment only the account bill shows stays, once
    partial = set_aside_restated([short_trade, account_all], SETTINGS.layouts)
    assert partial[1].records.height == 3
    kept = pl.concat([p.records for p in partial]).select(FACTS[:5]).sort(FACTS[:5])
    assert kept.equals(trade.records.select(FACTS[:5]).sort(FACTS[:5]))
    # without the business bill the account bill stands on its own
    assert set_aside_restated([account], SETTINGS.layouts)[0].records.height == 3


def test_clearing_file_takes_the_year_from_the_settlement_date_across_new_year() -> None:
    new_year = dt.date(2027, 1, 1)
    lines = syn.sample_lines(new_year, 200, seed=4)  # settled from 2026-12-31 16:05 UTC = 2027-01-01 00:05 CST
    late = lines.with_columns(pl.col("settled_at") - pl.duration(hours=2))  # some on 2026-12-31 in Shanghai
    parsed = accepted(read(syn.unionpay_zm_name(new_year), syn.unionpay_zm_file(new_year, late), new_year))
    assert parsed.layout == "unionpay_zm" and parsed.business_date == new_year
    written = late.filter(pl.col("status") == "SUCCESS")
    assert parsed.records.select(FACTS[:6]).sort(FACTS[:5]).equals(as_written(written))
    years = parsed.records["settled_at"].dt.convert_time_zone("Asia/Shanghai").dt.year().unique().sort().to_list()
    assert years == [2026, 2027]


def test_clearing_file_dated_by_its_name_must_match_the_date_it_was_filed_under() -> None:
    data = syn.unionpay_zm_file(DAY, LINES)
    parsed = read(syn.unionpay_zm_name(DAY), data, DAY + dt.timedelta(days=1))
    assert parsed.rejected_reason == "the file is for business date 2026-11-27, but it was filed under 2026-11-28"


def test_offline_repayments_carry_the_contract_in_the_memo() -> None:
    parsed = accepted(read("offline_repayments_20261127.csv", syn.offline_repayments_file(LINES)))
    assert parsed.layout == "offline_repayments"
    assert parsed.records.height == LINES.filter((pl.col("status") == "SUCCESS") & (pl.col("kind") == "debit")).height
    with_memo = parsed.records.filter(pl.col("memo").str.starts_with("C"))
    assert with_memo.height == LINES.filter(pl.col("memo").is_not_null() & (pl.col("kind") == "debit")).height > 0
    # a file name without a date is accepted for the date it was filed under
    undated = read("offline_repayments.csv", syn.offline_repayments_file(LINES))
    assert undated.rejected_reason is None and undated.business_date == DAY


@pytest.mark.parametrize(
    ("text", "spec", "fen"),
    [
        ("1.234,56", {"decimal": ","}, 123456),
        ("D12.30", {"sign_letters": {"D": "-", "C": "+"}}, -1230),
        ("12.30C", {"sign_letters": {"D": "-", "C": "+"}}, 1230),
        ("000000012345", {"amount": "fen"}, 12345),
        ("￥1,000.5", {}, 100050),
    ],
)
def test_amount_dresses(text: str, spec: dict[str, object], fen: int) -> None:
    from reconcile.layouts import AmountField
    from reconcile.reader.fields import parse_amount

    assert pl.select(parse_amount(pl.lit(text), AmountField.model_validate({"column": "x", **spec}))).item() == fen


def test_a_borrowers_own_export_is_evidence_and_moves_no_money() -> None:
    settings = SETTINGS
    lines = SUCCESS.head(20)
    export = syn.alipay_trade_bill(DAY, lines)
    parsed = read("alipay_trade_20261127.csv", export)
    evidence = replace(parsed, channel="alipay_personal")
    kept = set_aside_evidence([parsed, evidence], settings)
    assert kept[0].records.height == 20
    assert kept[1].records.height == 0 and "read as evidence" in kept[1].notes[-1]


def test_recon_inspect_reads_a_fixed_width_file_and_a_personal_export_without_the_database(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    path = tmp_path / "boc_result_20261127.txt"
    path.write_bytes(syn.bank_fixed_file(DAY, DEBITS, total_error_fen=1))
    rejected = CliRunner().invoke(app, ["inspect", "--json", "--date", DAY.isoformat(), str(path)])
    assert rejected.exit_code == 2
    assert json.loads(rejected.output)["rejected"].startswith("control totals disagree (all)")

    path.write_bytes(syn.bank_fixed_file(DAY, DEBITS))
    report = json.loads(CliRunner().invoke(app, ["inspect", "--json", str(path)]).output)
    assert (report["channel"], report["layout"], report["business_date"]) == ("boc", "bank_fixed_v1", "2026-11-27")
    counts = {(row["record_kind"], row["status"]): row["count"] for row in report["by_status"]}
    assert sum(counts.values()) == DEBITS.height and counts[("debit", "FAILED")] > 0
    assert all(total["agrees"] for total in report["control_totals"])
