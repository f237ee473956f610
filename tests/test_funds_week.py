"""The golden fortnight around National Day 2026 (``tests/funds_week.py``): every outcome of
funds reconciliation, read from a real-layout bank download, against its ground truth."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import polars as pl
import pytest

from reconcile.funds.night import FundsNight, reconcile_funds
from reconcile.funds.passes import FundsOutcome
from reconcile.funds.rules import FundsRules, parse_funds_config
from reconcile.funds.statements import read_statement
from tests import funds_week as W

ROOT = Path(__file__).resolve().parents[1]


def week_rules() -> FundsRules:
    config = tomllib.loads((ROOT / "reconcile" / "funds.toml").read_text(encoding="utf-8"))
    config["settlement"]["wechat"]["fee"]["netted"] = False  # WeChat bills its fee apart here
    config["settlement"]["wechat"]["fee"]["refund_returns_fee"] = False
    return parse_funds_config(config)


def run_week(as_of: dt.date = W.AS_OF, lines: pl.DataFrame | None = None) -> FundsNight:
    rules = week_rules()
    if lines is None:
        _, lines = read_statement(W.statement_bytes(), "cmb_20261014.csv", rules.statement_layouts)
    return reconcile_funds(
        W.collections(), lines, rules, W.D(2026, 9, 28), as_of, refunds=W.refunds(), reported_fees=W.reported_fees()
    )


@pytest.fixture(scope="module")
def night() -> FundsNight:
    return run_week()


def test_each_business_date_comes_to_its_truth(night: FundsNight) -> None:
    alipay = night.outcomes.filter(pl.col("channel") == "alipay")
    assert dict(alipay.select("business_date", "outcome").iter_rows()) == W.TRUTH


def test_the_nets_are_what_the_fee_rule_and_refunds_say(night: FundsNight) -> None:
    nets = dict(night.outcomes.filter(pl.col("channel") == "alipay").select("business_date", "net_fen").iter_rows())
    assert nets[W.D(2026, 9, 28)] == W.net_of(W.D(2026, 9, 28))
    assert nets[W.D(2026, 10, 9)] == W.net_of(W.D(2026, 10, 9), refunds=W.REFUND[2])  # the failure moved nothing
    assert nets[W.D(2026, 10, 12)] == W.net_of(W.D(2026, 10, 12), fee_fen=W.STATED_FEE_1012)  # the channel's fee
    wechat = night.outcomes.filter(pl.col("channel") == "wechat").row(0, named=True)
    assert wechat["net_fen"] == sum(W.debits_of(W.WECHAT_DAY)) and wechat["outcome"] == "SETTLED"  # fee billed apart


def test_windows_follow_the_holiday_and_the_make_up_working_day(night: FundsNight) -> None:
    windows = dict(
        night.outcomes.filter(pl.col("channel") == "alipay").select("business_date", "window_to").iter_rows()
    )
    assert windows[W.D(2026, 9, 30)] == W.D(2026, 10, 8)  # 10-01 … 10-07 off
    assert windows[W.D(2026, 10, 3)] == W.D(2026, 10, 8)
    assert windows[W.D(2026, 10, 9)] == W.D(2026, 10, 10)  # Saturday, worked in lieu
    assert windows[W.D(2026, 10, 10)] == W.D(2026, 10, 12)  # Sunday 10-11 off


def test_the_lump_deposit_pays_three_days_and_each_remembers_its_part(night: FundsNight) -> None:
    lump = night.outcomes.filter(pl.col("match_pass") == "lump").sort("business_date")
    assert lump["business_date"].to_list() == [W.D(2026, 10, 1), W.D(2026, 10, 2), W.D(2026, 10, 3)]
    assert lump["allocated_fen"].to_list() == lump["net_fen"].to_list()
    assert lump["lines"].n_unique() == 1
    line = night.lines.filter(pl.col("line_key") == lump["lines"][0]).row(0, named=True)
    assert line["allocated_fen"] == line["amount_fen"] == sum(lump["net_fen"])


def test_exceptions_are_the_ones_the_fortnight_was_written_to_raise(night: FundsNight) -> None:
    found = sorted(night.exceptions.select("outcome", "channel", "business_date", "difference_fen").iter_rows())
    assert found == sorted([
        ("SETTLEMENT_SHORT", "alipay", W.D(2026, 9, 29), -100),
        ("SETTLEMENT_MISSING", "alipay", W.D(2026, 10, 10), -W.net_of(W.D(2026, 10, 10))),
        ("SETTLEMENT_LATE", "alipay", W.D(2026, 10, 11), 0),
        ("DUPLICATE_CREDIT", "alipay", W.D(2026, 9, 29), W.net_of(W.D(2026, 9, 28))),
        ("UNEXPECTED_DEPOSIT", None, W.D(2026, 10, 9), 50_000),
        ("FEE_VARIANCE", "alipay", W.D(2026, 10, 12), 50),
        ("FEE_VARIANCE", "wechat", W.D(2026, 10, 12), 30),
        ("REVERSAL_AFTER_SETTLEMENT", "alipay", W.D(2026, 10, 9), -W.REFUND[2]),
    ])  # fmt: skip
    assert night.exceptions["exception_key"].is_unique().all()
    assert (
        night.exceptions["explanation_zh"].is_not_null().all()
        and night.exceptions["explanation_en"].is_not_null().all()
    )
    short = night.exceptions.filter(pl.col("outcome") == "SETTLEMENT_SHORT").row(0, named=True)
    assert "1.00" in short["explanation_zh"] and 0 < short["score"] < 100


def test_the_clearing_balance_is_every_item_and_nothing_else(night: FundsNight) -> None:
    alipay = night.transit.filter(pl.col("channel") == "alipay").row(0, named=True)
    assert alipay["pending_fen"] == W.net_of(W.D(2026, 10, 13))
    assert alipay["overdue_fen"] == W.net_of(W.D(2026, 10, 10)) + 100  # missing + the short payout's shortfall
    assert alipay["surplus_fen"] == W.net_of(W.D(2026, 9, 28))  # the duplicate is held, not explained away
    assert alipay["closing_fen"] == alipay["pending_fen"] + alipay["overdue_fen"] - alipay["surplus_fen"]
    assert night.balanced
    proof = night.proof.filter(pl.col("channel") == "alipay").sort("day")
    assert (proof["opening_fen"].slice(1) == proof["closing_fen"].slice(0, proof.height - 1)).all()


def test_the_balance_drains_once_every_window_has_passed_and_everything_came() -> None:
    rules = week_rules()
    _, lines = read_statement(W.statement_bytes(), "cmb.csv", rules.statement_layouts)
    # what was left owed arrives, the duplicate goes back: the clearing account drains
    owed = [
        (W.D(2026, 10, 15), W.net_of(W.D(2026, 10, 10)), "支付宝结算 20261010"),
        (W.D(2026, 10, 15), W.net_of(W.D(2026, 10, 13)), "支付宝结算 20261013"),
        (W.D(2026, 10, 15), 100, "支付宝结算 20260929 补差"),
        (W.D(2026, 10, 15), -W.net_of(W.D(2026, 9, 28)), "退回重复结算 20260928"),
    ]
    extra = pl.DataFrame([
        {**lines.row(0, named=True), "line_key": f"late{n}", "line_no": 900 + n, "booking_date": day, "value_date": day,
         "amount_fen": fen, "narrative": text}
        for n, (day, fen, text) in enumerate(owed)
    ], schema=lines.schema)  # fmt: skip
    night = run_week(W.D(2026, 10, 16), pl.concat([lines, extra]))
    alipay = night.transit.filter(pl.col("channel") == "alipay").row(0, named=True)
    assert alipay["closing_fen"] == 0 and alipay["drained"]


def test_a_published_day_that_changes_is_balance_drift(night: FundsNight) -> None:
    published = night.proof.with_columns(
        settled_fen=pl.when((pl.col("channel") == "alipay") & (pl.col("day") == W.D(2026, 10, 1)))
        .then(pl.col("settled_fen") - 700)
        .otherwise(pl.col("settled_fen"))
    )
    rules = week_rules()
    _, lines = read_statement(W.statement_bytes(), "cmb.csv", rules.statement_layouts)
    again = reconcile_funds(W.collections(), lines, rules, W.D(2026, 9, 28), W.AS_OF, refunds=W.refunds(),
                            reported_fees=W.reported_fees(), published=published)  # fmt: skip
    drift = again.exceptions.filter(pl.col("outcome") == FundsOutcome.BALANCE_DRIFT.value)
    assert drift.select("channel", "business_date", "difference_fen").rows() == [("alipay", W.D(2026, 10, 1), -700)]
    assert not again.balanced


def test_the_same_night_twice_is_the_same_answer(night: FundsNight) -> None:
    again = run_week()
    assert again.exceptions.equals(night.exceptions) and again.outcomes.equals(night.outcomes)


def test_a_pending_settlement_is_no_exception_until_its_window_passes() -> None:
    early = run_week(W.D(2026, 10, 12))
    day = early.outcomes.filter(pl.col("business_date") == W.D(2026, 10, 10)).row(0, named=True)
    assert day["outcome"] == "SETTLEMENT_PENDING"
    assert early.exceptions.filter(pl.col("business_date") == W.D(2026, 10, 10)).is_empty()
    later = run_week(W.D(2026, 10, 13))
    assert later.outcomes.filter(pl.col("business_date") == W.D(2026, 10, 10))["outcome"].item() == "SETTLEMENT_MISSING"


def test_no_payer_name_of_a_person_appears_unmasked() -> None:
    rules = week_rules()
    _, lines = read_statement(W.statement_bytes(), "cmb.csv", rules.statement_layouts)
    person = lines.with_columns(
        counterparty_name=pl.when(pl.col("counterparty_name") == "某某贸易有限公司")
        .then(pl.lit("王小明"))
        .otherwise(pl.col("counterparty_name")),
        narrative=pl.when(pl.col("narrative") == "货款")
        .then(pl.lit("还款 13812345678"))
        .otherwise(pl.col("narrative")),
    )
    night = run_week(lines=person)
    text = night.exceptions.write_csv()
    assert "王小明" not in text and "13812345678" not in text and "王**" in text


def test_what_is_overdue_is_aged_in_working_days(night: FundsNight) -> None:
    alipay = night.transit.filter(pl.col("channel") == "alipay").row(0, named=True)
    # 10-10 missing (window 10-12, two working days past on 10-14); 09-29's shortfall, six past
    assert (alipay["overdue_0_2_fen"], alipay["overdue_3_5_fen"], alipay["overdue_6_plus_fen"]) == (
        W.net_of(W.D(2026, 10, 10)), 0, 100,
    )  # fmt: skip
    assert alipay["overdue_0_2_fen"] + alipay["overdue_3_5_fen"] + alipay["overdue_6_plus_fen"] == alipay["overdue_fen"]
