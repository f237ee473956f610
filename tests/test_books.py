"""Installment and loan state as pure rules over literal tables (no database)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from reconcile.books import (
    STATE_COLUMNS,
    books_date,
    changed_state,
    crossed_grace,
    crossing_window,
    derive_installment_state,
    derive_loan_status,
    installment_status_expr,
)

UTC = dt.UTC
GRACE_ENDS = dt.date(2026, 11, 20)
# 2026-11-20 23:59:59 Shanghai and one second later, in UTC
LAST_SECOND_OF_GRACE = dt.datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC)
FIRST_SECOND_AFTER = dt.datetime(2026, 11, 20, 16, 0, 0, tzinfo=UTC)


def _installments(*rows: tuple[str, int, int, int, int, int, dt.datetime | None]) -> pl.DataFrame:
    """(contract, no, principal due, interest due, opening principal paid, opening interest paid, opening paid at)"""
    return pl.DataFrame(
        [
            {
                "contract_no": c,
                "installment_no": n,
                "overdue_after": GRACE_ENDS,
                "principal_due_fen": p,
                "interest_due_fen": i,
                "fee_due_fen": 0,
                "penalty_due_fen": 0,
                "opening_principal_paid_fen": op,
                "opening_interest_paid_fen": oi,
                "opening_fee_paid_fen": 0,
                "opening_penalty_paid_fen": 0,
                "opening_paid_at": at,
            }
            for c, n, p, i, op, oi, at in rows
        ],
        schema_overrides={"opening_paid_at": pl.Datetime("us", "UTC")},
    )


def _paid(*rows: tuple[str, int, int, int, dt.datetime | None]) -> pl.DataFrame:
    """(contract, no, principal paid, interest paid, latest payment) from the ledger"""
    return pl.DataFrame(
        [
            {
                "contract_no": c,
                "installment_no": n,
                "principal_paid_fen": p,
                "interest_paid_fen": i,
                "fee_paid_fen": 0,
                "penalty_paid_fen": 0,
                "paid_at": at,
            }
            for c, n, p, i, at in rows
        ],
        schema={
            "contract_no": pl.String,
            "installment_no": pl.Int64,
            "principal_paid_fen": pl.Int64,
            "interest_paid_fen": pl.Int64,
            "fee_paid_fen": pl.Int64,
            "penalty_paid_fen": pl.Int64,
            "paid_at": pl.Datetime("us", "UTC"),
        },
    )


@pytest.mark.parametrize(
    ("ledger", "day", "status"),
    [
        ((9000, 1000, LAST_SECOND_OF_GRACE), dt.date(2026, 11, 21), "PAID"),  # paid in full on the last day of grace
        ((9000, 1000, FIRST_SECOND_AFTER), dt.date(2026, 11, 22), "PAID_LATE"),  # one second later
        ((3000, 1000, LAST_SECOND_OF_GRACE), dt.date(2026, 11, 20), "PARTIALLY_PAID"),  # grace not over
        ((3000, 1000, LAST_SECOND_OF_GRACE), dt.date(2026, 11, 21), "OVERDUE"),  # the day after grace ends
        ((0, 0, None), dt.date(2026, 11, 20), "DUE"),
        ((0, 0, None), dt.date(2026, 11, 21), "OVERDUE"),
        ((9000, 1001, LAST_SECOND_OF_GRACE), dt.date(2026, 11, 21), "PAID"),  # one fen over is paid (excess is held)
        ((8999, 1000, LAST_SECOND_OF_GRACE), dt.date(2026, 11, 21), "OVERDUE"),  # one fen short is open
    ],
)
def test_installment_status_from_the_ledger(
    ledger: tuple[int, int, dt.datetime | None], day: dt.date, status: str
) -> None:
    principal, interest, at = ledger
    state = derive_installment_state(
        _installments(("C1", 3, 9000, 1000, 0, 0, None)), _paid(("C1", 3, principal, interest, at)), day
    )
    assert state["status"].to_list() == [status]
    assert state["principal_paid_fen"].to_list() == [principal]
    assert state["paid_at"].to_list() == [at if status in ("PAID", "PAID_LATE") else None]


def test_opening_amounts_count_with_the_ledger() -> None:
    """The snapshot said 60.00 of principal was paid; the ledger adds 30.00 and the interest."""
    opening_at = dt.datetime(2026, 11, 1, 2, tzinfo=UTC)
    rows = _installments(("C1", 3, 9000, 1000, 6000, 0, None), ("C2", 1, 9000, 1000, 9000, 1000, opening_at))
    state = derive_installment_state(rows, _paid(("C1", 3, 3000, 1000, LAST_SECOND_OF_GRACE)), dt.date(2026, 11, 25))
    assert state.sort("contract_no").select("contract_no", "principal_paid_fen", "status", "paid_at").rows() == [
        ("C1", 9000, "PAID", LAST_SECOND_OF_GRACE),
        ("C2", 9000, "PAID", opening_at),  # no ledger entry: the snapshot's own time of payment
    ]


def test_an_imported_snapshot_is_never_overdue() -> None:
    frame = derive_installment_state(_installments(("C1", 3, 9000, 1000, 0, 0, None)), _paid(), dt.date(2026, 11, 1))
    imported = frame.with_columns(overdue_after=pl.lit(GRACE_ENDS), **{
        f"{p}_due_fen": pl.lit(d) for p, d in (("principal", 9000), ("interest", 1000), ("fee", 0), ("penalty", 0))
    }).select(installment_status_expr(None).alias("status"))  # fmt: skip
    assert imported["status"].to_list() == ["DUE"]


def test_only_changed_state_is_written() -> None:
    day = dt.date(2026, 11, 25)
    rows = _installments(("C1", 1, 9000, 1000, 0, 0, None), ("C1", 2, 9000, 1000, 0, 0, None))
    after = derive_installment_state(rows, _paid(("C1", 1, 9000, 1000, LAST_SECOND_OF_GRACE)), day)
    before = after.with_columns(
        status=pl.when(pl.col("installment_no") == 2).then(pl.lit("DUE")).otherwise(pl.col("status"))
    )
    assert set(STATE_COLUMNS) <= set(before.columns)
    changed = changed_state(before, after)
    assert changed.select("installment_no", "status").rows() == [(2, "OVERDUE")]
    assert changed_state(after, after).height == 0


def test_only_open_installments_past_grace_turn_overdue() -> None:
    day = dt.date(2026, 11, 21)
    frame = pl.DataFrame(
        {
            "contract_no": ["C1", "C2", "C3", "C4"],
            "installment_no": [1, 1, 1, 1],
            "status": ["DUE", "PARTIALLY_PAID", "DUE", "PAID"],
            "overdue_after": [GRACE_ENDS, GRACE_ENDS, day, GRACE_ENDS],
        }
    )
    assert crossed_grace(frame, day).rows() == [("C1", 1, "OVERDUE"), ("C2", 1, "OVERDUE")]


def test_loan_status() -> None:
    counts = pl.DataFrame({"contract_no": ["A", "B", "C"], "open_installments": [0, 0, 2]})
    held = pl.DataFrame({"contract_no": ["A", "C"], "held_fen": [1, 500]})
    assert derive_loan_status(counts, held).sort("contract_no").rows() == [
        ("A", "OVERPAID"),  # settled with one fen still held for the borrower
        ("B", "SETTLED"),
        ("C", "ACTIVE"),
    ]


def NOV(day: int) -> dt.date:  # reads as a date in the table below
    return dt.date(2026, 11, day)


@pytest.mark.parametrize(
    ("day", "latest", "books_on", "window"),
    [
        (NOV(27), None, NOV(27), (None, NOV(27))),  # a book's first night: every earlier grace
        (NOV(27), NOV(26), NOV(27), (NOV(26), NOV(27))),  # the next night: one day of grace ends
        (NOV(29), NOV(26), NOV(29), (NOV(26), NOV(29))),  # nights skipped: all their days
        (NOV(27), NOV(27), NOV(27), None),  # the same night again
        (NOV(20), NOV(27), NOV(27), None),  # an older night again: judged as of the latest
    ],
)  # fmt: skip
def test_the_calendar_of_a_night(
    day: dt.date, latest: dt.date | None, books_on: dt.date, window: tuple[dt.date | None, dt.date] | None
) -> None:
    assert books_date(day, latest) == books_on
    assert crossing_window(day, latest) == window
