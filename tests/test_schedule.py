"""Schedules checked against values computed by hand (monthly rate = annual / 12, half-up to the fen)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from reconcile.schedule import add_months, build_installments, schedule_template


def totals(method: str, principal: int = 1_200_000, rate: str = "0.24", term: int = 12) -> list[tuple[int, int]]:
    return [(line.principal_fen, line.interest_fen) for line in schedule_template(principal, rate, term, method)]


def test_equal_installment_pays_1134_72_a_month_and_the_last_absorbs_rounding() -> None:
    lines = totals("equal_installment")
    # 12000 * 0.02 * 1.02^12 / (1.02^12 - 1) = 1134.7151... → 1134.72
    assert [p + i for p, i in lines[:11]] == [113472] * 11
    # month 1: interest 12000 * 2% = 240.00, principal 1134.72 - 240.00 = 894.72
    assert lines[0] == (89472, 24000)
    # month 2: remaining 11105.28 * 2% = 222.1056 → 222.11
    assert lines[1] == (113472 - 22211, 22211)
    assert sum(p for p, _ in lines) == 1_200_000
    # the last pays what principal remains plus its interest, not the level payment
    remaining = 1_200_000 - sum(p for p, _ in lines[:11])
    assert lines[11] == (remaining, round(remaining * 0.02))


def test_equal_principal_pays_the_same_principal_plus_interest_on_what_remains() -> None:
    lines = totals("equal_principal")
    assert [p for p, _ in lines] == [100000] * 12
    assert [i for _, i in lines] == [(1_200_000 - 100000 * k) * 2 // 100 for k in range(12)]


def test_equal_principal_puts_the_remainder_of_an_uneven_split_in_the_last_month() -> None:
    lines = totals("equal_principal", principal=100_000, rate="0.12", term=3)
    assert [p for p, _ in lines] == [33333, 33333, 33334]
    # interest 1%: 1000.00, 666.67 (66667 * 0.01 = 666.67), 333.34
    assert [i for _, i in lines] == [1000, 667, 333]


def test_interest_first_pays_interest_monthly_and_principal_at_the_end() -> None:
    lines = totals("interest_first", principal=500_000, rate="0.18", term=6)
    assert lines == [(0, 7500)] * 5 + [(500_000, 7500)]


def test_bullet_pays_everything_at_maturity() -> None:
    template = schedule_template(1_000_000, "0.12", 6, "bullet")
    assert len(template) == 1
    assert (template[0].principal_fen, template[0].interest_fen, template[0].months_after_start) == (
        1_000_000,
        60000,
        6,
    )


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown repayment method"):
        schedule_template(100, "0.1", 1, "balloon")


def test_due_dates_clamp_to_the_end_of_a_short_month() -> None:
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2026, 11, 30), 3) == dt.date(2027, 2, 28)
    loans = pl.DataFrame(
        {
            "contract_no": ["C1"],
            "principal_fen": [1_200_000],
            "annual_rate": ["0.24"],
            "term_months": [3],
            "repayment_method": ["equal_principal"],
            "start_date": [dt.date(2026, 1, 31)],
        }
    )
    built = build_installments(loans)
    assert built["due_date"].to_list() == [dt.date(2026, 2, 28), dt.date(2026, 3, 31), dt.date(2026, 4, 30)]
    assert built["principal_due_fen"].sum() == 1_200_000


# --- worked examples published outside this project --------------------------------------------
# Each is a schedule another project's own tests assert to the cent; the rounding conventions are
# the same as ours (monthly rate = annual / 12, half up to the fen, the last month absorbs the rest).


def test_equal_installment_agrees_with_apache_fineract() -> None:
    # apache/fineract, fineract-progressive-loan/src/test/java/org/apache/fineract/portfolio/
    # loanproduct/calc/ProgressiveEMICalculatorTest.java (commit 76c1158e), the 360/30 monthly case:
    # 100.00 at 9.4822 % a year over 6 months pays 17.13 every month.
    lines = totals("equal_installment", principal=10_000, rate="0.094822", term=6)
    assert [i for _, i in lines] == [79, 66, 53, 40, 27, 13]
    assert [p for p, _ in lines] == [1634, 1647, 1660, 1673, 1686, 1700]
    assert {p + i for p, i in lines} == {1713}


def test_equal_principal_agrees_with_sunline_microloan() -> None:
    # q1323829945/sunline-microloan, modules/lib-schedule/src/test/kotlin/.../EqualPrincipalScheduleTest.kt:
    # 1,000,000.00 at 6.3 % over 3 months; its code rounds the monthly principal half up to the cent.
    lines = totals("equal_principal", principal=100_000_000, rate="0.063", term=3)
    assert lines == [(33_333_333, 525_000), (33_333_333, 350_000), (33_333_334, 175_000)]


def test_equal_principal_rounds_the_monthly_principal_half_up_not_down() -> None:
    # Where principal / months has a fraction of half a fen or more, rounding and truncating differ.
    # Calculators that truncate publish 4,166.66 for 50,000.00 over 12 months (qq1060656096/
    # loan-calculator, tests/Calculator/EqualPrincipalPaymentCalculatorTest.php, commit 37844dff) and
    # 833.33 for 10,000.00 over 12 (arrowrowe/fi-calc, tests/libs/repay/repay-methods-spec.js);
    # rounding half up, as the sunline code above does, gives 4,166.67 and the last month 4,166.63.
    lines = totals("equal_principal", principal=5_000_000, rate="0.10", term=12)
    assert [p for p, _ in lines] == [416_667] * 11 + [416_663]
    assert lines[0] == (416_667, 41_667)  # 50,000.00 × 10 % / 12 = 416.666… → 416.67
    # 10,000.00 over 6 months at 6 %: 1,666.67 five times, the last 1,666.65
    six = totals("equal_principal", principal=1_000_000, rate="0.06", term=6)
    assert six == [(166_667, 5000), (166_667, 4167), (166_667, 3333), (166_667, 2500), (166_667, 1667), (166_665, 833)]


def test_interest_first_agrees_with_fi_calc() -> None:
    # arrowrowe/fi-calc, tests/libs/repay/repay-methods-spec.js (commit 08e0e82b), 按月付息到期还本:
    # 10,000.00 at a monthly rate of 0.345 % (4.14 % a year) over 12 months: 34.50 interest each
    # month, the principal with the last; 414.00 interest in all.
    lines = totals("interest_first", principal=1_000_000, rate="0.0414", term=12)
    assert lines == [(0, 3450)] * 11 + [(1_000_000, 3450)]
    assert sum(i for _, i in lines) == 41_400


def test_bullet_agrees_with_loan_js() -> None:
    # CrazyOrr/loan.js, test/__snapshots__/loan.test.ts.snap (commit 532452b3), LumpSumLoan: 100 at
    # 10 % a year owes 10 of interest after 12 months and 0.8333… after one (principal × annual / 12
    # × months); to the fen, half up, that is 10.00 and 0.83.
    assert totals("bullet", principal=10_000, rate="0.10", term=12) == [(10_000, 1000)]
    assert totals("bullet", principal=10_000, rate="0.10", term=1) == [(10_000, 83)]
