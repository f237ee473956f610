"""Literal tables for each rule of funds reconciliation: the calendar, fees, expectations,
classification and each matching pass. No database, no files."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from reconcile.funds.classify import classify
from reconcile.funds.expectations import expectations
from reconcile.funds.passes import expectation_outcomes, line_outcomes, match_funds
from reconcile.funds.rules import FundsConfigError, FundsRules, parse_funds_config, rate_ppm
from reconcile.funds.workdays import CalendarUnknown, SettlementRule, is_working_day, working_days_between
from schemas.funds import STATEMENT_DTYPES

D = dt.date


@pytest.mark.parametrize(
    ("day", "works"),
    [
        (D(2026, 9, 25), False),  # Mid-autumn Festival, a Friday
        (D(2026, 9, 28), True),
        (D(2026, 10, 1), False),  # National Day
        (D(2026, 10, 7), False),
        (D(2026, 10, 8), True),
        (D(2026, 10, 10), True),  # Saturday, worked in lieu (调休)
        (D(2026, 10, 11), False),  # Sunday
        (D(2026, 9, 20), True),  # Sunday, worked in lieu
    ],
)
def test_mainland_working_days(day: dt.date, works: bool) -> None:
    assert is_working_day(day) is works


@pytest.mark.parametrize(
    ("cycle", "grace", "day", "window"),
    [
        ("T+1", 0, D(2026, 9, 30), (D(2026, 10, 8), D(2026, 10, 8))),
        ("T+1", 1, D(2026, 9, 30), (D(2026, 10, 8), D(2026, 10, 9))),
        ("T+1", 0, D(2026, 10, 9), (D(2026, 10, 10), D(2026, 10, 10))),  # into the make-up Saturday
        ("T+1", 1, D(2026, 10, 9), (D(2026, 10, 10), D(2026, 10, 12))),
        ("T+0", 0, D(2026, 10, 3), (D(2026, 10, 8), D(2026, 10, 8))),  # the day itself, else the next working one
        ("T+0", 0, D(2026, 10, 9), (D(2026, 10, 9), D(2026, 10, 9))),
        ("D+1", 0, D(2026, 10, 3), (D(2026, 10, 4), D(2026, 10, 4))),  # calendar days: holidays do not matter
        ("T+2", 0, D(2026, 9, 29), (D(2026, 10, 8), D(2026, 10, 8))),
    ],
)
def test_settlement_windows(cycle: str, grace: int, day: dt.date, window: tuple[dt.date, dt.date]) -> None:
    assert SettlementRule(cycle, grace).window(day) == window


def test_aging_counts_working_days_only() -> None:
    assert working_days_between(D(2026, 9, 30), D(2026, 10, 9)) == 2  # 10-08, 10-09
    assert working_days_between(D(2026, 10, 9), D(2026, 10, 12)) == 2  # 10-10 (调休), 10-12
    assert working_days_between(D(2026, 10, 12), D(2026, 10, 12)) == 0


def test_a_year_the_calendar_does_not_know_is_said_not_guessed() -> None:
    with pytest.raises(CalendarUnknown, match="2031"):
        is_working_day(D(2031, 3, 3))


@pytest.mark.parametrize(("text", "ppm"), [("0.006", 6000), ("0.0025", 2500), ("0", 0), ("0.000001", 1)])
def test_rates_are_exact_millionths(text: str, ppm: int) -> None:
    assert rate_ppm(text) == ppm


@pytest.mark.parametrize("text", ["0.0000001", "1.5", "-0.01", "abc", "NaN"])
def test_rates_that_are_not_a_fraction_in_millionths_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        rate_ppm(text)


@pytest.mark.parametrize(
    ("fee", "amounts", "fees"),
    [
        (
            {"rate": "0.006", "min_fen": 1},
            [1, 83, 84, 10_000, 999_999],
            [1, 1, 1, 60, 6_000],
        ),  # 0.498 → 0 → min 1; 0.504 → 1
        ({"rate": "0.006"}, [83, 84, 250], [0, 1, 2]),  # half up: 1.5 → 2
        ({"rate": "0.0025", "min_fen": 10, "cap_fen": 2_000}, [100, 100_000, 10_000_000], [10, 250, 2_000]),
    ],
)
def test_fee_rule_per_debit(fee: dict[str, object], amounts: list[int], fees: list[int]) -> None:
    rules = parse_funds_config({"settlement": {"x": {"fee": fee}}})
    frame = pl.DataFrame({"a": amounts}).with_columns(f=rules.channel("x").fee.fee_expr(pl.col("a")))
    assert frame["f"].to_list() == fees


def test_configuration_mistakes_are_all_said_with_their_place() -> None:
    with pytest.raises(FundsConfigError) as caught:
        parse_funds_config(
            {"settlement": {"alipay": {"cycle": "T1", "fee": {"rate": "1.2"}, "payer_nams": []}, "ghost": {}}},
            channels=("alipay",),
        )
    problems = caught.value.problems
    assert any(p.startswith("settlement.alipay.cycle:") for p in problems)
    assert any(p.startswith("settlement.alipay.fee.rate:") for p in problems)
    assert any(p.startswith("settlement.alipay.payer_nams: unknown key") for p in problems)
    with pytest.raises(FundsConfigError, match=r"settlement\.ghost: no channel named 'ghost'"):
        parse_funds_config({"settlement": {"ghost": {}}}, channels=("alipay",))


def _rules(**channel: object) -> FundsRules:
    spec = {"cycle": "T+1", "payer_names": ["支付宝（中国）网络技术有限公司"], "reference_words": ["支付宝"],
            "fee": {"rate": "0.006", "min_fen": 1}} | channel  # fmt: skip
    return parse_funds_config({
        "settlement": {"alipay": spec, "wechat": {"cycle": "T+1", "payer_names": ["财付通支付科技有限公司"]}},
        "tolerances": {"near_ratio_bp": 500},
    })  # fmt: skip


def _collections(rows: list[tuple[str, dt.date, str, str, int]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, orient="row", schema={
        "channel": pl.String, "business_date": pl.Date, "record_kind": pl.String, "status": pl.String,
        "amount_fen": pl.Int64,
    })  # fmt: skip
    return frame.with_columns(merchant_id=pl.lit(None, dtype=pl.String))


def test_an_expectation_sums_successes_less_refunds_and_the_netted_fee() -> None:
    rows = [
        ("alipay", D(2026, 10, 12), "debit", "SUCCESS", 10_000),
        ("alipay", D(2026, 10, 12), "debit", "SUCCESS", 50),
        ("alipay", D(2026, 10, 12), "debit", "FAILED", 99_999),
        ("alipay", D(2026, 10, 12), "refund", "SUCCESS", 2_000),
        ("icbc", D(2026, 10, 12), "debit", "SUCCESS", 7),  # no funds rule: no expectation
    ]
    found = expectations(_collections(rows), _rules()).row(0, named=True)
    assert (found["gross_fen"], found["refunds_fen"], found["fee_expected_fen"]) == (10_050, 2_000, 61)
    assert found["net_fen"] == 10_050 - 2_000 - 61 and found["debits"] == 2 and found["refunds"] == 1
    assert (found["window_from"], found["window_to"], found["expectation_key"]) == (
        D(2026, 10, 13),
        D(2026, 10, 13),
        "alipay|-|2026-10-12",
    )
    billed = expectations(_collections(rows), _rules(fee={"rate": "0.006", "min_fen": 1, "netted": False})).row(
        0, named=True
    )
    assert billed["net_fen"] == 10_050 - 2_000 and not billed["fee_netted"]
    returned = expectations(
        _collections(rows),
        _rules(fee={"rate": "0.006", "min_fen": 1, "refund_returns_fee": True, "per_payout_fen": 100}),
    ).row(0, named=True)
    assert returned["fee_expected_fen"] == 60 + 1 - 12 + 100


def _lines(rows: list[tuple[str, dt.date, int, str, str]], reversal: set[str] | None = None) -> pl.DataFrame:
    """(key, value date, signed fen, payer, narrative) → classified statement lines."""
    reversal = reversal or set()
    frame = pl.DataFrame([{
        "line_key": key, "source_file": "s.csv", "file_sha256": "0" * 64, "line_no": n, "account": "1",
        "booking_date": day, "value_date": day, "amount_fen": fen, "reversal": key in reversal,
        "counterparty_name": payer, "counterparty_account": None, "narrative": text, "bank_reference": key,
        "raw_line": key,
    } for n, (key, day, fen, payer, text) in enumerate(rows, start=1)], schema=STATEMENT_DTYPES)  # fmt: skip
    return classify(frame, _rules())


ALIPAY = "支付宝（中国）网络技术有限公司"


def test_classification_by_payer_words_and_fee() -> None:
    lines = _lines([
        ("a", D(2026, 10, 8), 100, ALIPAY, "结算"),
        ("b", D(2026, 10, 8), 100, None, "支付宝 结算 2026-10-01"),
        ("c", D(2026, 10, 8), 100, "某公司", "支付宝 货款"),  # a payer shown that is not Alipay: the words do not count
        ("d", D(2026, 10, 8), -30, "财付通支付科技有限公司", "手续费 2026年10月12日"),
        ("e", D(2026, 10, 8), 100, None, "货款"),
    ])  # fmt: skip
    table = lines.select("line_key", "channel", "line_kind", "named_dates").rows()
    assert table == [
        ("a", "alipay", "settlement", []),
        ("b", "alipay", "settlement", [D(2026, 10, 1)]),
        ("c", None, "other", []),
        ("d", "wechat", "fee", [D(2026, 10, 12)]),
        ("e", None, "other", []),
    ]


def _expect(days_nets: list[tuple[dt.date, int]]) -> pl.DataFrame:
    rows = [("alipay", day, "debit", "SUCCESS", net) for day, net in days_nets]
    return expectations(_collections(rows), _rules(fee={"rate": "0"}))


def _outcomes(days_nets: list[tuple[dt.date, int]], lines: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    exp = _expect(days_nets)
    found = match_funds(exp, lines, _rules())
    return expectation_outcomes(exp, lines, found, as_of)


def test_exact_needs_the_one_candidate_on_both_sides() -> None:
    # two days of the same net in one window, the payouts naming no date: which is which is a guess
    lines = _lines([("x", D(2026, 10, 8), 500, ALIPAY, "结算"), ("y", D(2026, 10, 8), 500, ALIPAY, "结算")])
    found = _outcomes([(D(2026, 10, 6), 500), (D(2026, 10, 7), 500)], lines, D(2026, 10, 8))
    assert found["outcome"].to_list() == ["SETTLEMENT_PENDING", "SETTLEMENT_PENDING"]
    # once each names its date, each settles its own
    named = _lines(
        [("x", D(2026, 10, 8), 500, ALIPAY, "结算 20261006"), ("y", D(2026, 10, 8), 500, ALIPAY, "结算 20261007")]
    )
    found = _outcomes([(D(2026, 10, 6), 500), (D(2026, 10, 7), 500)], named, D(2026, 10, 8))
    assert found.select("outcome", "lines").rows() == [("SETTLED", "x"), ("SETTLED", "y")]


def test_lump_over_a_run_of_days_and_not_over_a_gap() -> None:
    days = [(D(2026, 10, 1), 100), (D(2026, 10, 2), 200), (D(2026, 10, 3), 400)]
    lump = _outcomes(days, _lines([("l", D(2026, 10, 8), 300, ALIPAY, "结算")]), D(2026, 10, 8))
    assert lump.select("outcome", "match_pass").rows() == [
        ("SETTLED", "lump"),
        ("SETTLED", "lump"),
        ("SETTLEMENT_PENDING", None),
    ]
    # 100 + 400 skips 10-02: not a run, not applied
    gap = _outcomes(days, _lines([("l", D(2026, 10, 8), 500, ALIPAY, "结算")]), D(2026, 10, 8))
    assert gap["outcome"].to_list() == ["SETTLEMENT_PENDING"] * 3


def test_parts_pay_one_expectation_in_several_credits() -> None:
    lines = _lines(
        [("p1", D(2026, 10, 8), 250, ALIPAY, "结算 20261006"), ("p2", D(2026, 10, 9), 750, ALIPAY, "结算 20261006")]
    )
    found = _outcomes([(D(2026, 10, 6), 1_000)], lines, D(2026, 10, 9))
    assert found.select("outcome", "match_pass", "allocated_fen", "lines").rows() == [
        ("SETTLEMENT_LATE", "parts", 1_000, "p1,p2")
    ]


def test_near_is_a_proposal_with_a_score_and_beyond_the_band_nothing() -> None:
    near = _outcomes([(D(2026, 10, 6), 10_000)], _lines([("n", D(2026, 10, 8), 9_900, ALIPAY, "结算")]), D(2026, 10, 9))
    row = near.row(0, named=True)
    assert (row["outcome"], row["difference_fen"], row["allocated_fen"], row["proposed_line"]) == (
        "SETTLEMENT_SHORT",
        -100,
        0,
        "n",
    )
    assert row["score"] == 100 - 20  # 1 % of a 5 % band
    far = _outcomes([(D(2026, 10, 6), 10_000)], _lines([("n", D(2026, 10, 8), 9_000, ALIPAY, "结算")]), D(2026, 10, 9))
    assert far["outcome"].to_list() == ["SETTLEMENT_MISSING"]
    over = _outcomes(
        [(D(2026, 10, 6), 10_000)], _lines([("n", D(2026, 10, 8), 10_300, ALIPAY, "结算")]), D(2026, 10, 9)
    )
    assert over["outcome"].to_list() == ["SETTLEMENT_OVER"]


def test_a_reversed_payout_leaves_the_day_owed_again() -> None:
    lines = _lines(
        [("c", D(2026, 10, 8), 500, ALIPAY, "结算"), ("r", D(2026, 10, 9), -500, ALIPAY, "冲正")], reversal={"r"}
    )
    exp = _expect([(D(2026, 10, 6), 500)])
    found = match_funds(exp, lines, _rules())
    outcome = expectation_outcomes(exp, lines, found, D(2026, 10, 9)).row(0, named=True)
    assert (outcome["outcome"], outcome["remaining_fen"]) == ("REVERSAL_AFTER_SETTLEMENT", 500)
    assert found.reversed_lines.rows() == [("c", "r")]
    assert dict(line_outcomes(lines, found).select("line_key", "outcome").iter_rows()) == {
        "c": "ALLOCATED",
        "r": "ALLOCATED",
    }


def test_a_credit_of_another_merchant_does_not_pay_this_one() -> None:
    rules = parse_funds_config(
        {"settlement": {"alipay": {"merchant_ids": ["2088A", "2088B"], "payer_names": [ALIPAY]}}}
    )
    rows = [("alipay", D(2026, 10, 6), "debit", "SUCCESS", 500)]
    frame = _collections(rows).with_columns(merchant_id=pl.lit("2088A"))
    exp = expectations(frame, rules)
    base = _lines([("m", D(2026, 10, 8), 500, ALIPAY, "结算 2088B")]).drop(
        "channel", "merchant_id", "line_kind", "named_dates"
    )
    lines = classify(base, rules)
    assert lines["merchant_id"].to_list() == ["2088B"]
    found = match_funds(exp, lines, rules)
    assert found.allocations.is_empty()


def test_two_merchants_of_one_channel_are_two_expectations_each_paid_by_its_own_payout() -> None:
    two = {"merchant_ids": ["2088A", "2088B"], "payer_names": [ALIPAY]}
    rules = parse_funds_config({"settlement": {"alipay": two}})
    rows = [("alipay", D(2026, 10, 6), "debit", "SUCCESS", 500), ("alipay", D(2026, 10, 6), "debit", "SUCCESS", 500)]
    frame = _collections(rows).with_columns(merchant_id=pl.Series(["2088A", "2088B"]))
    exp = expectations(frame, rules)
    assert exp.select("expectation_key", "net_fen").rows() == [("alipay|2088A|2026-10-06", 500),
                                                               ("alipay|2088B|2026-10-06", 500)]  # fmt: skip
    base = _lines([("a", D(2026, 10, 8), 500, ALIPAY, "结算 2088A"), ("b", D(2026, 10, 8), 500, ALIPAY, "结算 2088B")])
    lines = classify(base.drop("channel", "merchant_id", "line_kind", "named_dates"), rules)
    found = match_funds(exp, lines, rules)
    assert sorted(found.allocations.select("expectation_key", "line_key").rows()) == [
        ("alipay|2088A|2026-10-06", "a"), ("alipay|2088B|2026-10-06", "b"),
    ]  # fmt: skip
