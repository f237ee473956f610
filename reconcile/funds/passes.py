"""Expected settlements meet the statement's credits, in ordered passes; never a guess.

Each pass takes what is still open on both sides and allocates only where the pairing is the one
possible: an expectation and a credit that are each other's only candidate. What is left goes on to
the next pass; what no pass could pair is an outcome of its own.

1. ``exact``: one credit of exactly the expected net, its value date from the business date to the
   end of the window, from the channel (and merchant, when the payout names one), naming no other
   date. Several identical credits that can only be this expectation's: the first settles it, the
   others are ``DUPLICATE_CREDIT``.
2. ``lump``: one credit equal to the nets of a run of consecutive open expectations of the channel
   (a few days paid in one deposit: after a weekend, after a holiday), its value date in the last
   one's window and not past the first one's late horizon; the run must be the only one the credit
   adds up to.
3. ``parts``: one expectation paid in several credits: the open credits that can only be its (in its
   window or late horizon, naming it or no date) add up to the net.
4. ``late``: as ``exact``, after the window and within the late horizon: settled, late.
5. ``near``: what is still open pairs as a *proposal*, never applied: a credit within the tolerance
   (``near_ratio_bp`` of the net) of an expectation, each the other's best, with a score 0–100 (100 −
   the difference as a share of the tolerance band, − 5 per working day late). The expectation is
   ``SETTLEMENT_SHORT`` or ``SETTLEMENT_OVER`` by the difference; a person decides.

Reversals come first: a reversal line (RC, ``RvslInd``, 冲正) undoes the latest earlier credit of
the channel of the same amount; the reversed credit still pairs (the money came), and the
expectation it paid is ``REVERSAL_AFTER_SETTLEMENT`` and owed again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from reconcile.funds.rules import FundsRules
from reconcile.funds.workdays import next_working_day, working_days_between


class FundsOutcome(StrEnum):
    """What happened to an expected settlement, a statement line or a channel's balance."""

    SETTLED = "SETTLED"
    SETTLEMENT_PENDING = "SETTLEMENT_PENDING"
    SETTLEMENT_LATE = "SETTLEMENT_LATE"
    SETTLEMENT_MISSING = "SETTLEMENT_MISSING"
    SETTLEMENT_SHORT = "SETTLEMENT_SHORT"
    SETTLEMENT_OVER = "SETTLEMENT_OVER"
    FEE_VARIANCE = "FEE_VARIANCE"
    UNEXPECTED_DEPOSIT = "UNEXPECTED_DEPOSIT"
    DUPLICATE_CREDIT = "DUPLICATE_CREDIT"
    REVERSAL_AFTER_SETTLEMENT = "REVERSAL_AFTER_SETTLEMENT"
    BALANCE_DRIFT = "BALANCE_DRIFT"
    #: a line that paid an expectation (not an exception)
    ALLOCATED = "ALLOCATED"


#: Outcomes that are not a person's work.
NOT_EXCEPTIONS = frozenset({FundsOutcome.SETTLED, FundsOutcome.SETTLEMENT_PENDING, FundsOutcome.ALLOCATED})

ALLOCATION_SCHEMA: dict[str, pl.DataType] = {
    "expectation_key": pl.String(),
    "line_key": pl.String(),
    "amount_fen": pl.Int64(),
    "match_pass": pl.String(),
}


@dataclass(frozen=True)
class FundsMatch:
    """What the passes found: ``allocations`` (applied), ``proposals`` (for a person, with a
    score), ``duplicates`` (line keys of repeated credits), ``reversed_lines`` (credit line → the
    reversal line that undid it)."""

    allocations: pl.DataFrame
    proposals: pl.DataFrame
    duplicates: pl.DataFrame
    reversed_lines: pl.DataFrame


def late_until(expectations: pl.DataFrame, rules: FundsRules) -> pl.DataFrame:
    """``late_until``: the last value date a credit may still settle the expectation (late)."""
    distinct = expectations.select("channel", "window_to").unique()
    ends = [next_working_day(end, rules.channel(channel).late_horizon) for channel, end in distinct.iter_rows()]
    found = distinct.with_columns(late_until=pl.Series(ends, dtype=pl.Date))
    return expectations.join(found, on=["channel", "window_to"], how="left")


def pair_reversals(lines: pl.DataFrame) -> pl.DataFrame:
    """Each reversal line → the credit (or debit) it undoes: the latest earlier line of the same
    channel and opposite amount not already undone; a reversal with none stays unpaired."""
    reversals = lines.filter(pl.col("reversal")).sort("value_date", "line_key")
    originals = lines.filter(~pl.col("reversal"))
    taken: set[str] = set()
    pairs = []
    for row in reversals.iter_rows(named=True):
        found = originals.filter(
            (pl.col("channel").eq_missing(row["channel"])) & (pl.col("amount_fen") == -row["amount_fen"])
            & (pl.col("value_date") <= row["value_date"]) & ~pl.col("line_key").is_in(list(taken))
        ).sort("value_date", "line_key", descending=True)  # fmt: skip
        if found.height:
            original = found["line_key"][0]
            taken.add(original)
            pairs.append((original, row["line_key"]))
    return pl.DataFrame(pairs, schema={"line_key": pl.String, "reversed_by": pl.String}, orient="row")


def _candidates(open_e: pl.DataFrame, open_c: pl.DataFrame, start: str, end: str) -> pl.DataFrame:
    """Expectation × credit pairs of one channel whose value date is within [start, end] of the
    expectation, merchant compatible, naming no other date."""
    pairs = open_e.join(open_c, on="channel", how="inner", suffix="_line")
    return pairs.filter(
        (pl.col("merchant_id_line").is_null() | (pl.col("merchant_id_line") == pl.col("merchant_id")))
        & (pl.col("value_date") >= pl.col(start)) & (pl.col("value_date") <= pl.col(end))
        & ((pl.col("named_dates").list.len() == 0) | pl.col("named_dates").list.contains(pl.col("business_date")))
    )  # fmt: skip


def _one_to_one(pairs: pl.DataFrame) -> pl.DataFrame:
    """The pairs in which each side has no other candidate."""
    return pairs.filter((pl.len().over("expectation_key") == 1) & (pl.len().over("line_key") == 1))


def _allocate(pairs: pl.DataFrame, name: str) -> pl.DataFrame:
    return pairs.select("expectation_key", "line_key", amount_fen=pl.col("net_fen"), match_pass=pl.lit(name))


def match_funds(expectations: pl.DataFrame, lines: pl.DataFrame, rules: FundsRules) -> FundsMatch:
    """Run the passes: ``expectations`` (:class:`schemas.funds.ExpectationFrame`) against the
    classified statement ``lines`` (:func:`reconcile.funds.classify.classify`)."""
    framed = late_until(expectations, rules).with_columns(paid_from=pl.col("business_date"))
    settlement = lines.filter(pl.col("line_kind") == "settlement")
    reversed_lines = pair_reversals(settlement)
    undoing = reversed_lines["reversed_by"]
    credits = settlement.filter(~pl.col("line_key").is_in(undoing.implode()) & ~pl.col("reversal")).select(
        "line_key",
        "channel",
        pl.col("merchant_id"),
        "value_date",
        pl.col("amount_fen").alias("line_fen"),
        "named_dates",
    )
    open_e = framed.filter(pl.col("net_fen") != 0)
    allocated: list[pl.DataFrame] = []
    duplicates: list[str] = []

    def still_open() -> tuple[pl.DataFrame, pl.DataFrame]:
        done = pl.concat(allocated) if allocated else pl.DataFrame(schema=ALLOCATION_SCHEMA)
        used_e = done["expectation_key"].unique().implode()
        used_c = pl.concat([done["line_key"], pl.Series(duplicates, dtype=pl.String)]).unique().implode()
        return (
            open_e.filter(~pl.col("expectation_key").is_in(used_e)),
            credits.filter(~pl.col("line_key").is_in(used_c)),
        )

    # 1. exact, in time; identical repeats of a credit that can only be this expectation's are duplicates
    e, c = still_open()
    exact = _candidates(e, c, "paid_from", "window_to").filter(pl.col("line_fen") == pl.col("net_fen"))
    exact = exact.with_columns(_claims=pl.len().over("line_key")).filter(pl.col("_claims") == 1)
    first = exact.sort("value_date", "line_key").group_by("expectation_key", maintain_order=True).head(1)
    allocated.append(_allocate(first, "exact"))
    duplicates.extend(exact.filter(~pl.col("line_key").is_in(first["line_key"].implode()))["line_key"].to_list())

    # 2. lump: a run of consecutive open expectations adding up to one credit
    e, c = still_open()
    allocated.append(_lumps(e, c))

    # 3. parts: several credits, each only this expectation's, adding up to its net
    e, c = still_open()
    parts = _candidates(e, c, "paid_from", "late_until")
    parts = parts.filter(pl.len().over("line_key") == 1).filter(
        (pl.len().over("expectation_key") >= 2)
        & (pl.col("line_fen").sum().over("expectation_key") == pl.col("net_fen"))
    )
    allocated.append(
        parts.select("expectation_key", "line_key", amount_fen=pl.col("line_fen"), match_pass=pl.lit("parts"))
    )

    # 4. late: exact, after the window, within the late horizon
    e, c = still_open()
    late = _candidates(e, c, "window_to", "late_until").filter(
        (pl.col("value_date") > pl.col("window_to")) & (pl.col("line_fen") == pl.col("net_fen"))
    )
    allocated.append(_allocate(_one_to_one(late), "late"))

    # 5. near: proposals for a person
    e, c = still_open()
    proposals = _near(e, c, rules)
    done = pl.concat(allocated) if allocated else pl.DataFrame(schema=ALLOCATION_SCHEMA)
    return FundsMatch(
        allocations=done.select(list(ALLOCATION_SCHEMA)),
        proposals=proposals,
        duplicates=pl.DataFrame({"line_key": duplicates}, schema={"line_key": pl.String}),
        reversed_lines=reversed_lines,
    )


#: The longest run of days one lump deposit is looked for over.
LONGEST_LUMP = 31


def _lumps(e: pl.DataFrame, c: pl.DataFrame) -> pl.DataFrame:
    ordered = e.sort("channel", "merchant_id", "business_date").with_columns(
        _i=pl.int_range(pl.len()).over("channel", "merchant_id"),
        _cum=pl.col("net_fen").cum_sum().over("channel", "merchant_id"),
    )
    starts = ordered.select(
        "channel", "merchant_id", _i="_i", _before=pl.col("_cum") - pl.col("net_fen"), _first=pl.col("business_date"),
        _late=pl.col("late_until"),
    )  # fmt: skip
    ends = ordered.select(
        "channel", "merchant_id", _j="_i", _upto="_cum", _last=pl.col("business_date"), _from=pl.col("window_from"),
    )  # fmt: skip
    runs = (
        starts.join(ends, on=["channel", "merchant_id"])
        .filter((pl.col("_j") > pl.col("_i")) & (pl.col("_j") - pl.col("_i") < LONGEST_LUMP))
        .with_columns(_sum=pl.col("_upto") - pl.col("_before"))
    )
    fits = runs.join(c, left_on=["channel", "_sum"], right_on=["channel", "line_fen"], suffix="_line").filter(
        (pl.col("merchant_id_line").is_null() | (pl.col("merchant_id_line") == pl.col("merchant_id")))
        & (pl.col("value_date") >= pl.col("_from")) & (pl.col("value_date") <= pl.col("_late"))
        & ((pl.col("named_dates").list.len() == 0)
           | ((pl.col("named_dates").list.min() == pl.col("_first"))
              & (pl.col("named_dates").list.max() == pl.col("_last"))))
    )  # fmt: skip
    # the credit adds up to one run only, and that run is no other credit's
    fits = fits.filter(pl.len().over("line_key") == 1).filter(pl.len().over("channel", "merchant_id", "_i", "_j") == 1)
    members = (
        fits.select("channel", "merchant_id", "_i", "_j", "line_key")
        .join(
            ordered.select("channel", "merchant_id", "_i", "expectation_key", "net_fen").rename({"_i": "_k"}),
            on=["channel", "merchant_id"],
        )
        .filter((pl.col("_k") >= pl.col("_i")) & (pl.col("_k") <= pl.col("_j")))
    )
    # two credits whose runs overlap: neither is applied
    members = members.filter(pl.len().over("expectation_key") == 1)
    whole = members.filter(pl.len().over("line_key") == (pl.col("_j") - pl.col("_i") + 1))
    return whole.select("expectation_key", "line_key", amount_fen=pl.col("net_fen"), match_pass=pl.lit("lump"))


def _near(e: pl.DataFrame, c: pl.DataFrame, rules: FundsRules) -> pl.DataFrame:
    pairs = _candidates(e, c, "paid_from", "late_until")
    band = (pl.col("net_fen").abs() * rules.tolerances.near_ratio_bp) // 10_000
    pairs = pairs.with_columns(_diff=(pl.col("line_fen") - pl.col("net_fen")), _band=band).filter(
        (pl.col("_diff") != 0) & (pl.col("_diff").abs() <= pl.col("_band")) & (pl.col("_band") > 0)
        & ((pl.col("line_fen") > 0) == (pl.col("net_fen") > 0))
    )  # fmt: skip
    if pairs.is_empty():
        return pl.DataFrame(schema=PROPOSAL_SCHEMA)
    late_days = [
        working_days_between(end, value) if value > end else 0
        for end, value in pairs.select("window_to", "value_date").iter_rows()
    ]
    scored = pairs.with_columns(_late=pl.Series(late_days, dtype=pl.Int64)).with_columns(
        score=(100 - (pl.col("_diff").abs() * 100 + pl.col("_band") - 1) // pl.col("_band") - 5 * pl.col("_late")).clip(
            0, 99
        )
    )
    best_e = pl.col("score") == pl.col("score").max().over("expectation_key")
    best_c = pl.col("score") == pl.col("score").max().over("line_key")
    mutual = scored.filter(best_e & best_c).filter(
        (pl.len().over("expectation_key") == 1) & (pl.len().over("line_key") == 1)
    )
    return mutual.select(
        "expectation_key", "line_key", difference_fen=pl.col("_diff"), score=pl.col("score").cast(pl.Int64)
    )


PROPOSAL_SCHEMA: dict[str, pl.DataType] = {
    "expectation_key": pl.String(), "line_key": pl.String(), "difference_fen": pl.Int64(), "score": pl.Int64(),
}  # fmt: skip


def expectation_outcomes(
    expectations: pl.DataFrame, lines: pl.DataFrame, found: FundsMatch, as_of: dt.date
) -> pl.DataFrame:
    """One outcome per expectation as of the night ``as_of``: allocated and remaining fen, the
    lines that paid it, the latest value date, the proposal and its score, and an age in working
    days past the window (0 while in it)."""
    lines_dates = lines.select("line_key", "value_date")
    alloc = found.allocations.join(lines_dates, on="line_key", how="left").join(
        found.reversed_lines, on="line_key", how="left"
    )
    paid = alloc.group_by("expectation_key").agg(
        allocated_fen=pl.col("amount_fen").sum().cast(pl.Int64),
        paid_on=pl.col("value_date").max(),
        lines=pl.col("line_key").sort().str.join(","),
        match_pass=pl.col("match_pass").first(),
        reversed_by=pl.col("reversed_by").drop_nulls().first(),
    )
    proposed = found.proposals.rename({"line_key": "proposed_line"})
    framed = expectations.join(paid, on="expectation_key", how="left").join(proposed, on="expectation_key", how="left")
    framed = framed.with_columns(allocated_fen=pl.col("allocated_fen").fill_null(0))
    outcome = (
        pl.when(pl.col("reversed_by").is_not_null()).then(pl.lit(FundsOutcome.REVERSAL_AFTER_SETTLEMENT.value))
        .when(pl.col("net_fen") == 0).then(pl.lit(FundsOutcome.SETTLED.value))
        .when((pl.col("allocated_fen") == pl.col("net_fen")) & (pl.col("paid_on") <= pl.col("window_to")))
        .then(pl.lit(FundsOutcome.SETTLED.value))
        .when(pl.col("allocated_fen") == pl.col("net_fen")).then(pl.lit(FundsOutcome.SETTLEMENT_LATE.value))
        .when(pl.col("difference_fen") < 0).then(pl.lit(FundsOutcome.SETTLEMENT_SHORT.value))
        .when(pl.col("difference_fen") > 0).then(pl.lit(FundsOutcome.SETTLEMENT_OVER.value))
        .when(pl.col("window_to") >= as_of).then(pl.lit(FundsOutcome.SETTLEMENT_PENDING.value))
        .otherwise(pl.lit(FundsOutcome.SETTLEMENT_MISSING.value))
    )  # fmt: skip
    remaining = (
        pl.when(pl.col("reversed_by").is_not_null())
        .then(pl.col("net_fen"))
        .otherwise(pl.col("net_fen") - pl.col("allocated_fen"))
    )
    framed = framed.with_columns(outcome=outcome, remaining_fen=remaining.cast(pl.Int64))
    ages = [working_days_between(end, as_of) for end in framed["window_to"]]
    late = [working_days_between(end, paid) if paid is not None and paid > end else 0
            for end, paid in framed.select("window_to", "paid_on").iter_rows()]  # fmt: skip
    age = (
        pl.when(pl.col("remaining_fen") != 0).then(pl.Series(ages, dtype=pl.Int64))
        .when(pl.col("outcome") == FundsOutcome.SETTLEMENT_LATE.value).then(pl.Series(late, dtype=pl.Int64))
        .otherwise(0)
    )  # fmt: skip
    return framed.with_columns(age_days=age.cast(pl.Int64)).sort("channel", "merchant_id", "business_date")


def fee_variances(expectations: pl.DataFrame, rules: FundsRules) -> pl.DataFrame:
    """Expectations whose channel-stated fee differs from the rule's by more than the tolerance."""
    tolerance = {channel: spec.fee.tolerance_fen for channel, spec in rules.settlement.items()}
    return (
        expectations.filter(pl.col("fee_reported_fen").is_not_null())
        .with_columns(
            fee_difference_fen=pl.col("fee_reported_fen") - pl.col("fee_expected_fen"),
            tolerance_fen=pl.col("channel").replace_strict(tolerance, return_dtype=pl.Int64),
        )
        .filter(pl.col("fee_difference_fen").abs() > pl.col("tolerance_fen"))
    )


def line_outcomes(lines: pl.DataFrame, found: FundsMatch) -> pl.DataFrame:
    """One outcome per credit or channel line of the statement: ``ALLOCATED`` (with the fen it
    paid), ``DUPLICATE_CREDIT``, proposed (``SETTLEMENT_SHORT``/``_OVER`` is the expectation's; the
    line says which), a reversal and what it undid, or ``UNEXPECTED_DEPOSIT``. Our own payments out
    to nobody's accounts are not the funds passes' business and get no row."""
    used = found.allocations.group_by("line_key").agg(
        allocated_fen=pl.col("amount_fen").sum().cast(pl.Int64), paid=pl.col("expectation_key").sort().str.join(",")
    )
    proposed = found.proposals.select("line_key", proposed_for="expectation_key")
    undone = found.reversed_lines.rename({"line_key": "undoes", "reversed_by": "line_key"})
    framed = (
        lines.filter((pl.col("line_kind") != "other") | (pl.col("amount_fen") > 0))
        .join(used, on="line_key", how="left").join(proposed, on="line_key", how="left")
        .join(undone, on="line_key", how="left")
        .with_columns(allocated_fen=pl.col("allocated_fen").fill_null(0),
                      duplicate=pl.col("line_key").is_in(found.duplicates["line_key"].implode()))
    )  # fmt: skip
    outcome = (
        pl.when(pl.col("duplicate")).then(pl.lit(FundsOutcome.DUPLICATE_CREDIT.value))
        .when(pl.col("allocated_fen") != 0).then(pl.lit(FundsOutcome.ALLOCATED.value))
        .when(pl.col("undoes").is_not_null()).then(pl.lit(FundsOutcome.ALLOCATED.value))
        .when((pl.col("line_kind") == "fee") & (pl.col("named_dates").list.len() == 1))
        .then(pl.lit(FundsOutcome.ALLOCATED.value))
        .when(pl.col("line_kind") == "fee").then(pl.lit(FundsOutcome.FEE_VARIANCE.value))
        .when(pl.col("proposed_for").is_not_null()).then(pl.lit("PROPOSED"))
        .otherwise(pl.lit(FundsOutcome.UNEXPECTED_DEPOSIT.value))
    )  # fmt: skip
    return framed.with_columns(outcome=outcome).drop("duplicate")


def billed_fees(lines: pl.DataFrame, rules: FundsRules) -> pl.DataFrame:
    """Fees billed apart: a channel's fee debit naming one business date is that date's stated fee
    (``channel``, ``merchant_id`` — the channel's first when the line names none —,
    ``business_date``, ``fee_fen``), to compare with the rule's."""
    first = rules.first_merchants
    fees = lines.filter((pl.col("line_kind") == "fee") & (pl.col("named_dates").list.len() == 1))
    return fees.select(
        "channel", merchant_id=pl.coalesce("merchant_id", pl.col("channel").replace_strict(first, default=None)),
        business_date=pl.col("named_dates").list.first(), fee_fen=-pl.col("amount_fen"),
    )  # fmt: skip


def refunds_after_settlement(refunds: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """Refunds of money already paid out to us: ``refunds`` (``channel``, ``merchant_id``,
    ``business_date``, ``paid_on_date`` — the business date of the payment refunded —,
    ``channel_txn_id``, ``amount_fen``) whose payment's date is settled. The channel takes the
    money back from a later payout (that payout is expected net of it); a person watches it does,
    and only once."""
    settled = outcomes.filter(
        pl.col("outcome").is_in([FundsOutcome.SETTLED.value, FundsOutcome.SETTLEMENT_LATE.value])
    ).select("channel", "merchant_id", paid_on_date="business_date", settled_key="expectation_key")
    return refunds.filter(pl.col("paid_on_date") < pl.col("business_date")).join(
        settled, on=["channel", "merchant_id", "paid_on_date"], how="inner"
    )
