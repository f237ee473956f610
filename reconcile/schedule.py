"""Repayment schedules for the four repayment methods, in integer fen.

Interest for a month is the remaining principal times the monthly rate (annual / 12), rounded half
up to the fen; so is 等额本金's monthly principal (principal / months). Rounding is absorbed by
the last installment so that principal sums exactly to the loan's principal. Arithmetic is
:class:`decimal.Decimal` on the way, integer fen on the way out.

Worked check: 12,000.00 yuan at 24 % over 12 months, ``equal_installment``: the monthly rate is
2 %, the payment 1,134.72; month 1 is 240.00 interest + 894.72 principal; month 12 pays the last
remaining principal plus its interest, so principal sums to 12,000.00 exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import polars as pl

from reconcile.text import format_text

METHODS = ("equal_installment", "equal_principal", "interest_first", "bullet")


@dataclass(frozen=True)
class ScheduledInstallment:
    """One line of a schedule; ``months_after_start`` places its due date."""

    installment_no: int
    months_after_start: int
    principal_fen: int
    interest_fen: int

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.interest_fen


def _round_fen(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@lru_cache(maxsize=65536)
def schedule_template(
    principal_fen: int, annual_rate: str, term_months: int, method: str
) -> tuple[ScheduledInstallment, ...]:
    """The schedule of one loan shape, independent of its start date (cached per shape)."""
    if principal_fen <= 0 or term_months <= 0:
        raise ValueError("principal and term must be positive")
    rate = Decimal(annual_rate) / 12
    if method == "equal_installment":
        return _equal_installment(principal_fen, rate, term_months)
    if method == "equal_principal":
        return _equal_principal(principal_fen, rate, term_months)
    if method == "interest_first":
        interest = _round_fen(principal_fen * rate)
        return tuple(
            ScheduledInstallment(k, k, principal_fen if k == term_months else 0, interest)
            for k in range(1, term_months + 1)
        )
    if method == "bullet":
        interest = _round_fen(principal_fen * rate * term_months)
        return (ScheduledInstallment(1, term_months, principal_fen, interest),)
    raise ValueError(f"unknown repayment method {method!r}; expected one of {METHODS}")


def _equal_installment(principal_fen: int, rate: Decimal, n: int) -> tuple[ScheduledInstallment, ...]:
    if rate == 0:
        payment = _round_fen(Decimal(principal_fen) / n)
    else:
        growth = (1 + rate) ** n
        payment = _round_fen(principal_fen * rate * growth / (growth - 1))
    remaining = principal_fen
    rows = []
    for k in range(1, n + 1):
        interest = _round_fen(remaining * rate)
        principal = remaining if k == n else min(payment - interest, remaining)
        rows.append(ScheduledInstallment(k, k, principal, interest))
        remaining -= principal
    return tuple(rows)


def _equal_principal(principal_fen: int, rate: Decimal, n: int) -> tuple[ScheduledInstallment, ...]:
    # the monthly principal rounded half up, as borrowers' calculators show it (10,000.00 over 6
    # months: 1,666.67 a month, not 1,666.66); the last month pays what remains
    share = _round_fen(Decimal(principal_fen) / n)
    remaining = principal_fen
    rows = []
    for k in range(1, n + 1):
        interest = _round_fen(remaining * rate)
        principal = remaining if k == n else share
        rows.append(ScheduledInstallment(k, k, principal, interest))
        remaining -= principal
    return tuple(rows)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, clamped to the end of a shorter month (Jan 31 → Feb 28)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last_day in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last_day))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def build_installments(loans: pl.DataFrame) -> pl.DataFrame:
    """Installments of every loan in ``loans`` (a LoanFrame), fee and penalty zero.

    Schedules depend on the loan's shape, not its start date, so each distinct shape is computed
    once and joined back; due dates are start date plus whole months, end-of-month clamped.
    """
    shapes = loans.select("principal_fen", "annual_rate", "term_months", "repayment_method").unique()
    template_rows = [
        {
            "principal_fen": shape["principal_fen"],
            "annual_rate": shape["annual_rate"],
            "term_months": shape["term_months"],
            "repayment_method": shape["repayment_method"],
            "installment_no": line.installment_no,
            "months_after_start": line.months_after_start,
            "principal_due_fen": line.principal_fen,
            "interest_due_fen": line.interest_fen,
        }
        for shape in shapes.iter_rows(named=True)
        for line in schedule_template(
            shape["principal_fen"], shape["annual_rate"], shape["term_months"], shape["repayment_method"]
        )
    ]
    templates = pl.DataFrame(
        template_rows,
        schema={
            "principal_fen": pl.Int64,
            "annual_rate": pl.String,
            "term_months": pl.Int64,
            "repayment_method": pl.String,
            "installment_no": pl.Int64,
            "months_after_start": pl.Int64,
            "principal_due_fen": pl.Int64,
            "interest_due_fen": pl.Int64,
        },
    )
    joined = loans.select(
        "contract_no", "principal_fen", "annual_rate", "term_months", "repayment_method", "start_date"
    ).join(templates, on=["principal_fen", "annual_rate", "term_months", "repayment_method"], how="inner")
    return (
        joined.with_columns(
            due_date=pl.col("start_date").dt.offset_by(format_text("{}mo", pl.col("months_after_start"))),
            fee_due_fen=pl.lit(0, pl.Int64),
            penalty_due_fen=pl.lit(0, pl.Int64),
        )
        .select(
            "contract_no",
            "installment_no",
            "due_date",
            "principal_due_fen",
            "interest_due_fen",
            "fee_due_fen",
            "penalty_due_fen",
        )
        .sort("contract_no", "installment_no")
    )
