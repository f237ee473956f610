"""The clearing account of each channel: what it collected for us and has not yet paid out.

For each channel and day: opening + collected − refunds − fees netted − settled = closing, where
settled is every line of the statement that is the channel's (credits, reversals, claw-backs — also
duplicates and surprises: the proof counts money, the passes explain it). The closing of a day is
the next day's opening. Once every window has passed and every expectation has been paid, the
closing is zero: the balance drains. What it holds on the last night is aged: in its window
(pending), past it (what the exceptions are about), and credits nothing explains (negative).

A day's proof, once shown for a reconciled day, is a fact: when a later night computes another
movement for it (a date reconciled again with a new file, a statement line dated back), the
difference is a ``BALANCE_DRIFT`` for a person, never a silent change of history.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from reconcile.funds.expectations import fee_taken_expr

#: Ages of what is owed past its window, in working days (0: its window closed today).
AGES = (("0_2", 0, 2), ("3_5", 3, 5), ("6_plus", 6, 10_000))

PROOF_SCHEMA: dict[str, pl.DataType] = {
    "channel": pl.String(), "day": pl.Date(), "opening_fen": pl.Int64(), "collected_fen": pl.Int64(),
    "refunds_fen": pl.Int64(), "fees_fen": pl.Int64(), "settled_fen": pl.Int64(), "closing_fen": pl.Int64(),
}  # fmt: skip


def roll_forward(
    expectations: pl.DataFrame,
    lines: pl.DataFrame,
    first: dt.date,
    last: dt.date,
    opening: dict[str, int] | None = None,
) -> pl.DataFrame:
    """One row per channel and day from ``first`` to ``last``; ``opening``: each channel's closing
    of the day before ``first`` (0 when not given)."""
    channels = sorted(set(expectations["channel"].unique().to_list()) | set(lines["channel"].drop_nulls().to_list()))
    days = pl.date_range(first, last, interval="1d", eager=True).alias("day")
    grid = pl.DataFrame({"channel": channels}, schema={"channel": pl.String}).join(days.to_frame(), how="cross")
    booked = expectations.group_by("channel", day="business_date").agg(
        collected_fen=pl.col("gross_fen").sum(),
        refunds_fen=pl.col("refunds_fen").sum(),
        fees_fen=fee_taken_expr().sum(),
    )
    paid = (
        lines.filter(pl.col("channel").is_not_null() & (pl.col("line_kind") == "settlement"))
        .group_by("channel", day="value_date")
        .agg(settled_fen=pl.col("amount_fen").sum())
    )
    moved = grid.join(booked, on=["channel", "day"], how="left").join(paid, on=["channel", "day"], how="left")
    moved = moved.with_columns(
        pl.col("collected_fen", "refunds_fen", "fees_fen", "settled_fen").fill_null(0).cast(pl.Int64)
    )
    start = pl.col("channel").replace_strict(opening or {}, default=0, return_dtype=pl.Int64)
    change = pl.col("collected_fen") - pl.col("refunds_fen") - pl.col("fees_fen") - pl.col("settled_fen")
    proof = moved.sort("channel", "day").with_columns(
        closing_fen=(start + change.cum_sum().over("channel")).cast(pl.Int64)
    )
    proof = proof.with_columns(opening_fen=(pl.col("closing_fen") - change).cast(pl.Int64))
    return proof.select(list(PROOF_SCHEMA))


def in_transit(
    outcomes: pl.DataFrame, line_outcomes: pl.DataFrame, proof: pl.DataFrame, as_of: dt.date
) -> pl.DataFrame:
    """What each channel's closing on ``as_of`` holds, item by item:

    - ``pending_fen``: owed and still in its window;
    - ``overdue_fen``: owed past its window (missing, late and unpaid, reversed), less what came as
      a proposed short or over payment of it;
    - ``surplus_fen``: credits from the channel nothing owed (duplicates, unexpected), which the
      closing is short of;
    - ``unexplained_fen``: closing − pending − overdue + surplus, zero when every fen is an item:
      anything else is a ``BALANCE_DRIFT``.

    ``oldest_overdue_days``: the age, in working days past its window, of the oldest overdue item;
    ``overdue_<bucket>_fen``: what is owed past its window by age in working days (:data:`AGES`).
    """
    closing = proof.filter(pl.col("day") == as_of).select("channel", "closing_fen")
    pending = pl.col("outcome") == "SETTLEMENT_PENDING"
    late = ~pending & (pl.col("remaining_fen") != 0)
    # what is still owed of an item: its remainder, less what came as a proposed short payment of it
    owes = pl.when(pl.col("difference_fen").is_not_null()).then(-pl.col("difference_fen")).otherwise(
        pl.col("remaining_fen")
    )
    aged = {
        f"overdue_{name}_fen": owes
        .filter(late & pl.col("age_days").is_between(low, high))
        .sum()
        .cast(pl.Int64)
        for name, low, high in AGES
    }
    owed = outcomes.filter(pl.col("business_date") <= as_of).group_by("channel").agg(
        pending_fen=pl.col("remaining_fen").filter(pending).sum().cast(pl.Int64),
        owed_late_fen=pl.col("remaining_fen").filter(~pending).sum().cast(pl.Int64),
        oldest_overdue_days=pl.col("age_days").filter(late).max(),
        **aged,
    )
    mine = line_outcomes.filter(pl.col("channel").is_not_null() & (pl.col("line_kind") == "settlement"))
    surplus = pl.col("outcome").is_in(["DUPLICATE_CREDIT", "UNEXPECTED_DEPOSIT"])
    lines = mine.group_by("channel").agg(
        proposed_fen=pl.col("amount_fen").filter(pl.col("outcome") == "PROPOSED").sum().cast(pl.Int64),
        surplus_fen=pl.col("amount_fen").filter(surplus).sum().cast(pl.Int64),
    )
    framed = closing.join(owed, on="channel", how="left").join(lines, on="channel", how="left").with_columns(
        pl.col("pending_fen", "owed_late_fen", "proposed_fen", "surplus_fen", *aged).fill_null(0)
    )
    framed = framed.with_columns(overdue_fen=(pl.col("owed_late_fen") - pl.col("proposed_fen")).cast(pl.Int64))
    unexplained = pl.col("closing_fen") - pl.col("pending_fen") - pl.col("overdue_fen") + pl.col("surplus_fen")
    return framed.with_columns(
        unexplained_fen=unexplained.cast(pl.Int64), drained=pl.col("closing_fen") == 0
    ).select(
        "channel", "closing_fen", "pending_fen", "overdue_fen", "surplus_fen", "unexplained_fen", "drained",
        "oldest_overdue_days", *aged,
    ).sort("channel")  # fmt: skip


MOVEMENT = pl.col("collected_fen") - pl.col("refunds_fen") - pl.col("fees_fen") - pl.col("settled_fen")


def drift(proof: pl.DataFrame, published: pl.DataFrame) -> pl.DataFrame:
    """Days whose own movement (collected − refunds − fees − settled) differs from the one shown
    before for a day already reconciled (``published``: ``channel``, ``day`` and the four
    movements, only the days reconciled when shown): the difference is a ``BALANCE_DRIFT``.

    A day's movement, not its closing: every later closing carries an earlier day's change, which
    is one drift, not one a day. A day shown before its own records were in is not history yet."""
    then = published.select("channel", "day", published_fen=MOVEMENT.cast(pl.Int64))
    return (
        proof.join(then, on=["channel", "day"], how="inner")
        .with_columns(drift_fen=(MOVEMENT - pl.col("published_fen")).cast(pl.Int64))
        .filter(pl.col("drift_fen") != 0)
    )
