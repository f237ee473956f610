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


def is_balanced(fen: dict[str, int]) -> bool:
    return fen["received"] == fen["applied"] + fen["held"] and fen["reversed"] == fen["unapplied"] + fen["released"]


def outcome_counts(outcomes: pl.DataFrame) -> dict[str, int]:
    counts = outcomes.group_by("outcome").len().sort("outcome")
    return {row["outcome"]: int(row["len"]) for row in counts.iter_rows(named=True)}
