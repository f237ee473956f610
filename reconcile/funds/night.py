"""A night of funds reconciliation as one pure function: the proofs as of a date.

Everything is recomputed from facts each night — the records of the dates in the horizon, the
statement lines received, what the channels said they charged — so a rerun, or a file that came
late, gives the same answer as if it had always been there; only the published daily proofs are
history (a different closing for a published day is ``BALANCE_DRIFT``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from reconcile.funds.classify import classify
from reconcile.funds.clearing import drift, in_transit, roll_forward
from reconcile.funds.expectations import collected, expected_from
from reconcile.funds.explain import explain_funds
from reconcile.funds.passes import (
    NOT_EXCEPTIONS,
    FundsOutcome,
    billed_fees,
    expectation_outcomes,
    fee_variances,
    line_outcomes,
    match_funds,
    refunds_after_settlement,
)
from reconcile.funds.rules import FundsRules
from reconcile.masking import mask_numbers_in_text_expr, mask_party_name_expr

SEVERITY: dict[str, str] = {
    FundsOutcome.SETTLEMENT_LATE: "LOW",
    FundsOutcome.SETTLEMENT_MISSING: "HIGH",
    FundsOutcome.SETTLEMENT_SHORT: "HIGH",
    FundsOutcome.SETTLEMENT_OVER: "MEDIUM",
    FundsOutcome.FEE_VARIANCE: "MEDIUM",
    FundsOutcome.UNEXPECTED_DEPOSIT: "MEDIUM",
    FundsOutcome.DUPLICATE_CREDIT: "MEDIUM",
    FundsOutcome.REVERSAL_AFTER_SETTLEMENT: "MEDIUM",
    FundsOutcome.BALANCE_DRIFT: "HIGH",
}
#: What a funds exception is about in the exceptions table (the transaction side's are ``record``,
#: ``instruction``, ``file`` and ``channel``).
FUNDS_SUBJECTS = ("settlement", "statement", "clearing", "refund")
#: A shown day whose movement changed is an event, history: its drift stays open until a person
#: resolves it, though the next night, comparing with the new movement, does not find it again.
STAYS_OPEN = pl.col("exception_key").str.contains(f"^{FundsOutcome.BALANCE_DRIFT.value}:.*\\|published\\|")


@dataclass(frozen=True)
class FundsNight:
    """The funds side of a night: every frame a report or a table needs."""

    as_of: dt.date
    expectations: pl.DataFrame
    outcomes: pl.DataFrame
    lines: pl.DataFrame
    fee_variances: pl.DataFrame
    refunds_after: pl.DataFrame
    proof: pl.DataFrame
    transit: pl.DataFrame
    drift: pl.DataFrame
    exceptions: pl.DataFrame

    @property
    def balanced(self) -> bool:
        """Every fen of every clearing balance is an item, and no published day changed."""
        return bool((self.transit["unexplained_fen"] == 0).all()) and self.drift.is_empty()


def reconcile_funds(
    collections: pl.DataFrame | None,
    statement_lines: pl.DataFrame,
    rules: FundsRules,
    first: dt.date,
    as_of: dt.date,
    *,
    sums: pl.DataFrame | None = None,
    refunds: pl.DataFrame | None = None,
    reported_fees: pl.DataFrame | None = None,
    stated: pl.DataFrame | None = None,
    opening: dict[str, int] | None = None,
    published: pl.DataFrame | None = None,
) -> FundsNight:
    """The funds proofs from ``first`` to ``as_of``.

    ``collections``: the records of the business dates from ``first`` to ``as_of``
    (:data:`reconcile.funds.expectations.COLLECTION_COLUMNS`), or ``sums``: the dates' sums
    (:func:`reconcile.funds.expectations.collected`); ``statement_lines``: the collection
    account's lines (:class:`schemas.funds.StatementLineFrame`) with value dates from ``first``;
    ``refunds``: refunds with the business date of the payment each refunds (``paid_on_date``);
    ``reported_fees``: what the channels' own settlement lines say they charged; ``stated``: what
    they say they collected, settle net and paid out (shown, not matched); ``opening``: each
    clearing balance the day before ``first``; ``published``: daily proofs shown before.
    """
    lines = classify(statement_lines, rules)
    fees = billed_fees(lines, rules)
    if reported_fees is not None and not reported_fees.is_empty():
        fees = pl.concat([fees, reported_fees.select(fees.columns)], how="vertical_relaxed")
    if sums is None:
        assert collections is not None, "the dates' records or their sums"
        sums = collected(collections, rules)
    expected = expected_from(sums.filter(pl.col("business_date").is_between(first, as_of)), rules, fees, stated)
    found = match_funds(expected, lines, rules)
    outcomes = expectation_outcomes(expected, lines, found, as_of)
    by_line = line_outcomes(lines, found)
    variances = fee_variances(expected, rules)
    after = (
        refunds_after_settlement(refunds, outcomes) if refunds is not None and not refunds.is_empty()
        else pl.DataFrame(schema={"channel": pl.String, "merchant_id": pl.String, "business_date": pl.Date,
                                  "paid_on_date": pl.Date, "channel_txn_id": pl.String, "amount_fen": pl.Int64,
                                  "settled_key": pl.String})
    )  # fmt: skip
    proof = roll_forward(expected, lines, first, as_of, opening)
    transit = in_transit(outcomes, by_line, proof, as_of)
    drifted = (
        drift(proof, published)
        if published is not None
        else proof.head(0).with_columns(published_fen=pl.lit(0, pl.Int64), drift_fen=pl.lit(0, pl.Int64))
    )
    exceptions = funds_exceptions(outcomes, by_line, variances, after, transit, drifted, as_of)
    return FundsNight(as_of, expected, outcomes, by_line, variances, after, proof, transit, drifted, exceptions)


EXCEPTION_SCHEMA: dict[str, pl.DataType] = {
    "exception_key": pl.String(), "outcome": pl.String(), "severity": pl.String(), "channel": pl.String(),
    "business_date": pl.Date(), "amount_fen": pl.Int64(), "difference_fen": pl.Int64(), "age_days": pl.Int64(),
    "subject_key": pl.String(), "window_from": pl.Date(), "window_to": pl.Date(), "paid_on": pl.Date(),
    "score": pl.Int64(), "lines": pl.String(), "counterparty_name": pl.String(), "narrative": pl.String(),
    "source_file": pl.String(), "line_no": pl.Int64(), "explanation_zh": pl.String(), "explanation_en": pl.String(),
    "suggested_action": pl.String(),
}  # fmt: skip


def funds_exceptions(
    outcomes: pl.DataFrame,
    lines: pl.DataFrame,
    variances: pl.DataFrame,
    refunds_after: pl.DataFrame,
    transit: pl.DataFrame,
    drifted: pl.DataFrame,
    as_of: dt.date,
) -> pl.DataFrame:
    """Every funds item a person must look at, one row each with a stable key
    (``outcome:subject``): the same problem found again is the same row."""
    parts = [
        outcomes.filter(~pl.col("outcome").is_in(list(NOT_EXCEPTIONS))).select(
            "outcome", "channel", "business_date", "window_from", "window_to", "paid_on", "score", "age_days",
            amount_fen="net_fen", subject_key="expectation_key",
            difference_fen=pl.coalesce("difference_fen", -pl.col("remaining_fen")),
            lines=pl.coalesce("lines", "proposed_line"),
        ),
        lines.filter(pl.col("outcome").is_in([
            FundsOutcome.UNEXPECTED_DEPOSIT.value, FundsOutcome.DUPLICATE_CREDIT.value, FundsOutcome.FEE_VARIANCE.value
        ])).select(
            "outcome", "channel", "counterparty_name", "narrative", "source_file", "line_no", "amount_fen",
            business_date="value_date", difference_fen="amount_fen", subject_key="line_key", lines="line_key",
        ),
        variances.select(
            "channel", "business_date", "window_from", "window_to", outcome=pl.lit(FundsOutcome.FEE_VARIANCE.value),
            amount_fen="fee_reported_fen", difference_fen="fee_difference_fen", subject_key="expectation_key",
        ),
        refunds_after.select(
            "channel", "business_date", "amount_fen", outcome=pl.lit(FundsOutcome.REVERSAL_AFTER_SETTLEMENT.value),
            difference_fen=-pl.col("amount_fen"), paid_on="paid_on_date",
            subject_key=pl.concat_str(pl.col("channel"), pl.lit("|refund|"), pl.col("channel_txn_id")),
        ),
        transit.filter(pl.col("unexplained_fen") != 0).select(
            "channel", outcome=pl.lit(FundsOutcome.BALANCE_DRIFT.value), business_date=pl.lit(as_of),
            amount_fen="closing_fen", difference_fen="unexplained_fen",
            subject_key=pl.concat_str(pl.col("channel"), pl.lit("|clearing|"), pl.lit(as_of.isoformat())),
        ),
        drifted.select(
            "channel", outcome=pl.lit(FundsOutcome.BALANCE_DRIFT.value), business_date="day",
            amount_fen="closing_fen", difference_fen="drift_fen",
            subject_key=pl.concat_str(pl.col("channel"), pl.lit("|published|"), pl.col("day").cast(pl.String)),
        ),
    ]  # fmt: skip
    empty = pl.DataFrame(schema=EXCEPTION_SCHEMA)
    frame = pl.concat([empty, *parts], how="diagonal_relaxed").with_columns(
        exception_key=pl.concat_str(pl.col("outcome"), pl.col("subject_key"), separator=":"),
        severity=pl.col("outcome").replace_strict(dict(SEVERITY), default="MEDIUM"),
        age_days=pl.col("age_days").fill_null(0),
        # a payer may be a borrower repaying by transfer: names and numbers masked as everywhere
        counterparty_name=mask_party_name_expr("counterparty_name"),
        narrative=mask_numbers_in_text_expr("narrative"),
    )
    frame = explain_funds(frame.drop("explanation_zh", "explanation_en", "suggested_action"))
    return frame.select(list(EXCEPTION_SCHEMA)).unique("exception_key", keep="first", maintain_order=True)


def exception_table_rows(exceptions: pl.DataFrame) -> pl.DataFrame:
    """The funds exceptions as rows of the exceptions table (``reconcile/lifecycle.py``'s columns):
    ``facts`` is what a reviewer's resolution stands on (the amount, the difference, the lines)."""
    subject = (
        pl.when(pl.col("outcome") == FundsOutcome.BALANCE_DRIFT.value).then(pl.lit("clearing"))
        .when(pl.col("outcome") == FundsOutcome.REVERSAL_AFTER_SETTLEMENT.value).then(pl.lit("refund"))
        .when(pl.col("source_file").is_not_null()).then(pl.lit("statement"))
        .otherwise(pl.lit("settlement"))
    )  # fmt: skip
    facts = [pl.col(c).cast(pl.String).fill_null("-") for c in ("amount_fen", "difference_fen", "lines")]
    none = pl.lit(None, dtype=pl.String)
    return exceptions.select(
        "exception_key", "business_date", "outcome", "severity", subject.alias("subject"), "channel",
        contract_no=none, installment_no=pl.lit(None, dtype=pl.Int64), instruction_id=none,
        channel_txn_id=pl.col("subject_key").str.slice(0, 64), amount_fen="amount_fen", held_fen=pl.lit(0, pl.Int64),
        flags=pl.lit(""),
        facts=pl.concat_str(facts, separator="|"),
        account_masked=none, explanation_zh="explanation_zh", explanation_en="explanation_en",
        suggested_action="suggested_action", source_file="source_file", line_no="line_no",
    )  # fmt: skip
