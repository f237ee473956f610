"""The run summary: outcome counts and the money identity that proves nothing was lost.

received = applied + held, and reversed = unapplied + released, to the fen. ``balanced`` is true
only when both hold.
"""

from __future__ import annotations

import polars as pl


def money_totals(outcomes: pl.DataFrame) -> dict[str, int]:
    """The six fen totals of a day's outcomes (records only; instructions move no money)."""
    records = outcomes.filter(pl.col("subject") == "record")
    debits = records.filter(pl.col("received_fen") > 0)
    reversals = records.filter(pl.col("reversed_fen") > 0)
    return {
        "received": int(debits["received_fen"].sum()),
        "applied": int(debits["applied_fen"].sum()),
        "held": int(debits["held_fen"].sum()),
        "reversed": int(reversals["reversed_fen"].sum()),
        "unapplied": -int(reversals["applied_fen"].sum()),
        "released": -int(reversals["held_fen"].sum()),
    }


def money_by_channel(outcomes: pl.DataFrame) -> dict[str, dict[str, int]]:
    """:func:`money_totals` for each channel with records, so each channel ties out on its own."""
    records = outcomes.filter(pl.col("subject") == "record")
    channels = sorted(c for c in records["channel"].unique().to_list() if c is not None)
    return {channel: money_totals(records.filter(pl.col("channel") == channel)) for channel in channels}


def subject_counts(outcomes: pl.DataFrame) -> dict[str, int]:
    """Outcomes by what they are about: records, instructions without a record, files, channels
    that sent nothing. The record count plus the others is the outcome count."""
    counts = outcomes.group_by("subject").len().sort("subject")
    return {row["subject"]: int(row["len"]) for row in counts.iter_rows(named=True)}


def is_balanced(fen: dict[str, int]) -> bool:
    return fen["received"] == fen["applied"] + fen["held"] and fen["reversed"] == fen["unapplied"] + fen["released"]


def outcome_counts(outcomes: pl.DataFrame) -> dict[str, int]:
    counts = outcomes.group_by("outcome").len().sort("outcome")
    return {row["outcome"]: int(row["len"]) for row in counts.iter_rows(named=True)}
