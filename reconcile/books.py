"""The state of the books, derived: installment status, what each part has had paid, loan status.

State is a function of facts: what was due, what the servicing system says was paid before we
began (the snapshot's opening amounts), and the settlement ledger. Nothing here reads a database;
``flows/stages/write.py`` carries the rows in and out.

Worked example — installment 3 of C1 owes 100.00 (principal 90.00, interest 10.00), grace ends
2026-11-20, opening 0, and the ledger holds one payment of 100.00 settled 2026-11-22 09:00 Shanghai:
``paid = 100.00 = owed`` → ``PAID_LATE`` (paid on the 22nd, after the 20th). Had it paid 40.00,
on the 21st it would be ``OVERDUE`` (open past its last day of grace), on the 19th
``PARTIALLY_PAID``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

PARTS = ("penalty", "fee", "interest", "principal")
INSTALLMENT_KEY = ["contract_no", "installment_no"]
#: Statuses an installment can still leave by a payment or by the calendar.
OPEN_STATUSES = ("DUE", "PARTIALLY_PAID")
PAID_STATUSES = ("PAID", "PAID_LATE")
UTC_US = pl.Datetime("us", "UTC")


def installment_status_expr(day: dt.date | None) -> pl.Expr:
    """``DUE``, ``PARTIALLY_PAID``, ``PAID``, ``PAID_LATE`` or ``OVERDUE`` (open after its last day
    of grace, as seen on ``day``; with ``day`` None — a snapshot as imported — never ``OVERDUE``).

    Needs ``<part>_due_fen``, ``<part>_paid_fen``, ``paid_at`` (UTC) and ``overdue_after``.
    """
    owed = pl.sum_horizontal([pl.col(f"{p}_due_fen") - pl.col(f"{p}_paid_fen") for p in PARTS])
    paid_any = pl.sum_horizontal([pl.col(f"{p}_paid_fen") for p in PARTS]) > 0
    paid_day = pl.col("paid_at").dt.convert_time_zone("Asia/Shanghai").dt.date()
    past_grace = pl.lit(False) if day is None else pl.col("overdue_after") < day
    return (
        pl.when(owed <= 0)
        .then(pl.when(paid_day > pl.col("overdue_after")).then(pl.lit("PAID_LATE")).otherwise(pl.lit("PAID")))
        .when(past_grace)
        .then(pl.lit("OVERDUE"))
        .when(paid_any)
        .then(pl.lit("PARTIALLY_PAID"))
        .otherwise(pl.lit("DUE"))
    )


#: Columns of an installment's derived state, as stored.
STATE_COLUMNS = (*[f"{p}_paid_fen" for p in PARTS], "status", "paid_at")


def derive_installment_state(installments: pl.DataFrame, ledger_paid: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """What each installment has had paid and its status on ``day``: the snapshot's opening
    amounts plus every ledger entry on it.

    ``installments``: ``contract_no``, ``installment_no``, ``overdue_after``, ``<part>_due_fen``,
    ``opening_<part>_paid_fen``, ``opening_paid_at``. ``ledger_paid``: per installment the sums of
    the ledger's ``<part>_paid_fen`` and ``paid_at``, the latest payment (installments without an
    entry may be absent). → the key and :data:`STATE_COLUMNS`; ``paid_at`` only when paid in full.
    """
    facts = installments.select(
        *INSTALLMENT_KEY, "overdue_after", *[f"{p}_due_fen" for p in PARTS],
        *[f"opening_{p}_paid_fen" for p in PARTS], "opening_paid_at",
    )  # fmt: skip
    state = facts.join(ledger_paid, on=INSTALLMENT_KEY, how="left").with_columns(
        [(pl.col(f"opening_{p}_paid_fen") + pl.col(f"{p}_paid_fen").fill_null(0)).alias(f"{p}_paid_fen") for p in PARTS]
        + [pl.coalesce("paid_at", "opening_paid_at").alias("paid_at")]
    )
    status = installment_status_expr(day)
    return state.with_columns(status=status).select(
        *INSTALLMENT_KEY,
        *[f"{p}_paid_fen" for p in PARTS],
        "status",
        pl.when(pl.col("status").is_in(PAID_STATUSES)).then(pl.col("paid_at")).otherwise(None).alias("paid_at"),
    )


def changed_state(before: pl.DataFrame, after: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``after`` whose derived state differs from ``before`` (both keyed by installment
    with :data:`STATE_COLUMNS`): only those are written."""
    joined = after.join(before.select(*INSTALLMENT_KEY, *STATE_COLUMNS), on=INSTALLMENT_KEY, how="left", suffix="_was")
    differs = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_was")) for c in STATE_COLUMNS])
    return joined.filter(differs).select(after.columns)


def books_date(day: dt.date, latest_reconciled: dt.date | None) -> dt.date:
    """The date the calendar part of a status is judged on: the night's, or — when a date is
    reconciled again after later ones — the latest night already reconciled (the books show today's
    state, not the old date's; the cascade reconciles the later nights again anyway)."""
    return day if latest_reconciled is None else max(day, latest_reconciled)


def crossing_window(day: dt.date, latest_reconciled: dt.date | None) -> tuple[dt.date | None, dt.date] | None:
    """Last days of grace whose open installments the night for ``day`` turns ``OVERDUE``:
    ``(from, to)`` meaning ``from <= overdue_after < to`` (``from`` None: every earlier one — the
    first night of a book), or None when no night is new (an earlier date reconciled again).

    Every open installment whose grace ended before the latest reconciled night is ``OVERDUE``
    already (each night marks its window, an import marks what it brings as of that night), so a
    night reads only the installments whose grace ended since — never the history.
    """
    if latest_reconciled is None:
        return None, day
    if day <= latest_reconciled:
        return None
    return latest_reconciled, day


def crossed_grace(open_installments: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Open installments (``DUE``, ``PARTIALLY_PAID``) whose last day of grace is behind ``day``:
    they turn ``OVERDUE``. Needs the key, ``status`` and ``overdue_after``."""
    return open_installments.filter(pl.col("status").is_in(OPEN_STATUSES) & (pl.col("overdue_after") < day)).select(
        *INSTALLMENT_KEY, pl.lit("OVERDUE").alias("status")
    )


def loan_status_expr() -> pl.Expr:
    """``SETTLED`` (结清: no installment left open), ``OVERPAID`` (settled, money still held for
    the borrower) or ``ACTIVE``. Needs ``open_installments`` and ``held_fen``."""
    settled = pl.col("open_installments") == 0
    return (
        pl.when(settled & (pl.col("held_fen").fill_null(0) > 0))
        .then(pl.lit("OVERPAID"))
        .when(settled)
        .then(pl.lit("SETTLED"))
        .otherwise(pl.lit("ACTIVE"))
    )


def derive_loan_status(open_counts: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """``contract_no`` and ``status`` of each loan in ``open_counts`` (``contract_no``,
    ``open_installments``), given the money held per contract (``contract_no``, ``held_fen``)."""
    return open_counts.join(held, on="contract_no", how="left").select(
        "contract_no", loan_status_expr().alias("status")
    )
