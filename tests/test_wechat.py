"""WeChat Pay (微信支付) as a channel: its trade bill in each bill type and its fund-flow bill, read by
configuration, and a WeChat day through the whole run on both databases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from flows.config import load_channel_config, load_config
from flows.runner import reconcile_dates
from reconcile import synthetic as syn
from reconcile.ingest import ParsedFile, parse_channel_file, set_aside_restated
from reconcile.intake import claim
from reconcile.settings import settings_from_mapping
from tests.books import deliver, imported_book, off_the_manifest
from tests.dbdump import stored_outcomes

DAY = dt.date(2026, 11, 27)
SETTINGS = settings_from_mapping(load_channel_config())
LINES = syn.sample_lines(DAY, 400, seed=3)
OK = LINES.filter(pl.col("status") == "SUCCESS")
FACTS = ["record_kind", "status", "channel_txn_id", "reference", "amount_fen", "settled_at", "refund_request_no"]


def read(name: str, data: bytes, day: dt.date | None = DAY) -> ParsedFile:
    channel, layout = claim(name, data, SETTINGS)
    assert channel == "wechat" and layout is not None, f"{name} was not recognised as WeChat Pay's"
    return parse_channel_file(name, data, "0" * 64, SETTINGS.channels[channel], SETTINGS.layouts[layout], day)


def written(lines: pl.DataFrame) -> pl.DataFrame:
    return lines.select(
        pl.col("kind").alias("record_kind"), "status", pl.col("txn_id").alias("channel_txn_id"), "reference",
        "amount_fen", "settled_at", pl.col("refund_no").alias("refund_request_no"),
    ).sort(FACTS[:5])  # fmt: skip


@pytest.mark.parametrize(
    ("bill_type", "kinds"), [("ALL", ("debit", "refund")), ("SUCCESS", ("debit",)), ("REFUND", ("refund",))]
)
@pytest.mark.parametrize("tab", [False, True], ids=["backticks", "saved-by-a-spreadsheet"])
def test_each_bill_type_reads_back_exactly_what_was_written(bill_type: str, kinds: tuple[str, ...], tab: bool) -> None:
    data = syn.wechat_trade_bill(DAY, LINES, bill_type, tab=tab)
    assert data.decode().splitlines()[0].count("\t" if tab else ",") + 1 == len(syn.WECHAT_COLUMNS[bill_type])
    parsed = read(f"wechat_trade_{DAY:%Y%m%d}.csv", data)
    assert parsed.rejected_reason is None and parsed.invalid.height == 0, parsed.rejected_reason
    assert parsed.layout == ("wechat_trade_tab" if tab else "wechat_trade")
    expected = OK.filter(pl.col("kind").is_in(kinds))
    assert parsed.records.select(FACTS).sort(FACTS[:5]).equals(written(expected))
    assert parsed.records["refund_request_no"].drop_nulls().len() == expected.filter(pl.col("kind") == "refund").height
    assert parsed.records.filter(pl.col("record_kind") == "debit")["refund_request_no"].null_count() == (
        expected.filter(pl.col("kind") == "debit").height
    )
    totals = {total.applies_to: total for total in parsed.control_totals}
    assert totals["all"].agrees and totals["all"].stated_count == expected.height
    assert ("refund" in totals) == (bill_type != "SUCCESS")  # the SUCCESS bill states no refunds
    if "refund" in totals:
        assert totals["refund"].agrees and totals["refund"].stated_fen == int(
            expected.filter(pl.col("kind") == "refund")["amount_fen"].sum()
        )


def test_the_backticks_are_taken_off_every_value_and_blank_cells_are_blank() -> None:
    parsed = read("wechat_trade_20261127.csv", syn.wechat_trade_bill(DAY, LINES.head(30)))
    for column in ("channel_txn_id", "reference", "memo", "refund_request_no"):
        values = parsed.records[column].drop_nulls()
        assert not values.str.contains("`").any() and not (values == "").any(), column


def _with_summary(data: bytes, change: str) -> bytes:
    lines = data.decode().split("\r\n")
    values = lines[-2].split(",")
    if change == "amount":
        values[1] = "`" + f"{float(values[1][1:]) + 0.01:.2f}"
    lines[-2] = ",".join(values)
    return "\r\n".join(lines).encode()


def test_a_summary_table_that_disagrees_or_is_missing_rejects_the_bill_and_says_why() -> None:
    data = syn.wechat_trade_bill(DAY, LINES)
    off = read("wechat_trade_20261127.csv", _with_summary(data, "amount"))
    assert off.rejected_reason is not None and off.rejected_reason.startswith("control totals disagree (all)")
    truncated = b"\r\n".join(data.split(b"\r\n")[:-3]) + b"\r\n"  # cut before the summary table
    cut = read("wechat_trade_20261127.csv", truncated)
    assert cut.rejected_reason == "the summary table with the control totals is missing: the file may be truncated"
    no_values = b"\r\n".join(data.split(b"\r\n")[:-2]) + b"\r\n"
    assert read("wechat_trade_20261127.csv", no_values).rejected_reason == (
        "the summary table has a header but no values: the file may be truncated"
    )


def test_an_id_a_spreadsheet_turned_into_e_notation_is_an_invalid_line_that_says_why() -> None:
    data = syn.wechat_trade_bill(DAY, LINES.head(20), tab=True).decode()
    lines = data.split("\r\n")
    original = lines[3].split("\t")[5]
    lines[3] = lines[3].replace(original, "4.20000E+27", 1)
    parsed = read("wechat_trade_20261127.csv", "\r\n".join(lines).encode())
    assert parsed.rejected_reason is None
    assert parsed.invalid.select("line_no", "check", "message").to_dicts() == [
        {
            "line_no": 4,
            "check": "parse",
            "message": "channel_txn_id: 4.20000E+27 is in E-notation (spreadsheet damage), not an id",
        }
    ]
    assert original not in parsed.records["channel_txn_id"].to_list()


def test_the_fund_flow_bill_counts_every_movement_and_restates_the_trade_bill() -> None:
    flow = read("wechat_fundflow_20261127.csv", syn.wechat_fundflow_bill(DAY, LINES))
    assert flow.rejected_reason is None and flow.layout == "wechat_fundflow"
    debits = OK.filter(pl.col("kind") == "debit")
    totals = {total.applies_to: total for total in flow.control_totals}
    assert totals["income"].agrees and totals["income"].stated_count == debits.height
    # refunds and a fee per payment go out: counted, then set aside (refunds are the trade bill's)
    assert totals["expense"].agrees and totals["expense"].stated_count == OK.height
    facts = ["record_kind", "status", "channel_txn_id", "amount_fen", "settled_at"]  # the bill names no order
    assert flow.records.select(facts).sort(facts).equals(written(debits).select(facts).sort(facts))
    assert any("扣除交易手续费" in note and "退款" in note for note in flow.notes)
    trade = read("wechat_trade_20261127.csv", syn.wechat_trade_bill(DAY, LINES))
    both = set_aside_restated([trade, flow], SETTINGS.layouts)
    assert both[0].records.height == OK.height and both[1].records.height == 0


@pytest.mark.slow
def test_a_wechat_day_reproduces_the_manifest_through_the_whole_run(
    recon_env: dict[str, str], tmp_path: Path
) -> None:
    days = imported_book(recon_env["RECON_DATABASE_URL"], tmp_path, DAY, DAY, 400, 12, wallet="wechat")
    assert f"wechat_trade_{DAY:%Y%m%d}.csv" in days.files[DAY] and not any("alipay" in n for n in days.files[DAY])
    deliver(Path(recon_env["RECON_HOME"]), DAY, days.files[DAY])
    [summary] = reconcile_dates(load_config(), [DAY], workbook=False)
    assert summary["balanced"] is True
    wechat = [f for f in summary["files"] if f["channel"] == "wechat"]
    assert len(wechat) == 1 and wechat[0]["status"] == "ACCEPTED", wechat
    wrong = off_the_manifest(days, recon_env["RECON_DATABASE_URL"])
    assert wrong.height == 0, f"records whose outcome differs from the manifest:\n{wrong}"
    stored = stored_outcomes(recon_env["RECON_DATABASE_URL"])
    mine = stored.filter(pl.col("subject_key").str.starts_with("wechat|"))
    assert mine.height > 20
    # Alipay, expected every day, sent nothing: the manifest says so and so does the run
    assert days.expected.filter(pl.col("subject_key") == f"channel|alipay|{DAY}")["expected_outcome"].to_list() == [
        "MISSING_FILE"
    ]
    missing = days.expected.filter(pl.col("expected_outcome") == "MISSING_FILE")
    assert summary["outcomes"]["MISSING_FILE"] == missing.height
    outcomes = set(mine["outcome"].to_list())
    assert {"MATCHED", "REVERSAL", "UNMATCHED_DEBIT", "DUPLICATE_DEBIT"} <= outcomes, outcomes


def test_the_early_layout_some_merchants_still_get_is_read_by_its_own_names() -> None:
    data = syn.wechat_trade_bill(DAY, LINES, early=True)
    assert "应结订单金额" not in data.decode() and "总金额" in data.decode().splitlines()[0]
    parsed = read("wechat_trade_20261127.csv", data)
    assert parsed.rejected_reason is None and parsed.invalid.height == 0 and parsed.layout == "wechat_trade_early"
    assert parsed.records.select(FACTS).sort(FACTS[:5]).equals(written(OK))
    totals = {total.applies_to: total for total in parsed.control_totals}
    assert totals["all"].agrees and totals["refund"].agrees and totals["all"].stated_count == OK.height


# --- what a hostile or damaged bill gets (each found by probing the reader) -------------------------


def _bill(rows: int = 30) -> list[str]:
    return syn.wechat_trade_bill(DAY, syn.sample_lines(DAY, rows, seed=3, refund_every=6)).decode().split("\r\n")


def _cells(lines: list[str], at: int, column: int, value: str) -> list[str]:
    cells = lines[at].split(",")
    cells[column] = value
    return [*lines[:at], ",".join(cells), *lines[at + 1 :]]


def _read(lines: list[str], name: str = "wechat_trade_20261127.csv") -> ParsedFile:
    return read(name, "\r\n".join(lines).encode())


def test_a_quoted_value_loses_its_quotes_and_its_backtick() -> None:
    lines = _bill()
    quoted = _cells(lines, 2, 5, '"' + lines[2].split(",")[5] + '"')
    parsed = _read(quoted)
    assert parsed.rejected_reason is None
    assert parsed.records.filter(pl.col("line_no") == 3)["channel_txn_id"][0] == lines[2].split(",")[5][1:]


def test_two_bills_joined_or_lines_after_the_summary_are_refused_not_dropped() -> None:
    lines, other = _bill(), _bill(rows=10)
    parsed = _read([*lines[:-1], *other])
    assert parsed.rejected_reason is not None and "follow the summary table" in parsed.rejected_reason
    assert _read([*lines[:-1], lines[-3], lines[-2], ""]).rejected_reason is not None  # the table twice


def test_a_merchant_id_in_the_name_is_not_taken_for_the_date() -> None:
    parsed = _read(_bill(), name="wechat_1900000109_20261127.csv")
    assert parsed.rejected_reason is None and parsed.business_date == DAY


def test_a_payments_line_is_a_success_whatever_its_refund_status_cell_says() -> None:
    parsed = _read(_cells(_bill(), 2, 19, "`FAIL"))
    assert parsed.records.filter(pl.col("line_no") == 3).select("record_kind", "status").row(0) == ("debit", "SUCCESS")


def test_huge_amounts_are_invalid_lines_and_totals_never_wrap() -> None:
    lines = _bill()
    huge = 2**62
    for at in (2, 3, 4, 5):
        lines = _cells(lines, at, 12, f"`{huge // 100}.{huge % 100:02d}")
    parsed = _read(lines)  # the stated total no longer agrees: refused before any line is read
    assert parsed.rejected_reason is not None and parsed.rejected_reason.startswith("control totals disagree (all)")
    ten_billion = _read(_cells(_bill(), 2, 12, "`10000000000.01"))
    assert ten_billion.rejected_reason is not None  # its total disagrees too; a line past the bound is invalid:
    from reconcile.ingest import _validate

    sample = read("wechat_trade_20261127.csv", syn.wechat_trade_bill(DAY, LINES.head(3))).records
    big = sample.with_columns(amount_fen=pl.lit(10**12 + 1, pl.Int64), _parse_error=pl.lit(None, pl.String))
    good, invalid = _validate(big, "wechat", "f", "0" * 64)
    assert good.height == 0 and invalid["message"].str.contains("less_than_or_equal_to").all()


def test_a_bill_with_refunds_must_state_their_total() -> None:
    lines = _bill()
    lines[-3] = "总交易单数,应结订单总金额"
    lines[-2] = ",".join(lines[-2].split(",")[:2])
    parsed = _read(lines)
    assert parsed.rejected_reason is not None
    assert "refund line(s) but its summary table states no 退款总金额" in parsed.rejected_reason


def test_a_blank_required_cell_says_which_and_why() -> None:
    parsed = _read(_cells(_bill(), 2, 9, "`"))
    assert parsed.invalid.select("check", "message").rows() == [
        ("not_nullable", "record_kind: (blank) failed not_nullable")
    ]


def test_a_fund_flow_line_of_unknown_direction_says_so() -> None:
    flow = syn.wechat_fundflow_bill(DAY, LINES.head(10)).decode().split("\r\n")
    flow = _cells(flow, 1, 5, "`退回")
    parsed = read("wechat_fundflow_20261127.csv", "\r\n".join(flow).encode())
    assert parsed.rejected_reason is not None
    assert parsed.rejected_reason.endswith("line 2: amount_fen: 收支类型 退回 is not one of 收入, 支出")
