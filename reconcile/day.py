"""A whole business date in memory: the snapshot and the delivered files in, the outcomes, the
ledger and the state of every installment out — the same decisions a run makes, with no database.

The run (``flows/runner.py``) reads only what the date can touch and writes only what changed; this
takes the whole book as frames. The golden days run through both and must agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from reconcile.adjustments import PAYING_KINDS
from reconcile.books import INSTALLMENT_KEY, PARTS, derive_installment_state
from reconcile.ingest import ParsedFile
from reconcile.intake import accepted_records, all_outcomes, instruction_window, invalid_lines, memo_contracts
from reconcile.matching import MatchInput, match_day
from reconcile.settings import Settings
from schemas.frames import INSTRUCTION_DTYPES, PRIOR_PAYMENT_DTYPES


@dataclass(frozen=True)
class DayInMemory:
    """``outcomes``: explained, one per record, unanswered instruction, file and channel.
    ``ledger``: the date's entries. ``installments``: every installment's derived state."""

    outcomes: pl.DataFrame
    ledger: pl.DataFrame
    installments: pl.DataFrame


def reconcile_in_memory(
    loans: pl.DataFrame, installments: pl.DataFrame, instructions: pl.DataFrame,
    parsed: list[ParsedFile], day: dt.date, settings: Settings,
) -> DayInMemory:  # fmt: skip
    """One date of a book with no earlier ledger. ``installments`` as an import writes them
    (``reconcile.snapshot.installments_as_imported``); ``parsed``: the date's files, read."""
    records = accepted_records(parsed)
    invalid = invalid_lines(parsed)
    start, end = instruction_window(day, settings)
    named = pl.concat([records.select("reference"), invalid.select("reference")]).drop_nulls().unique()
    recent = instructions.filter((pl.col("requested_at") >= start) & (pl.col("requested_at") < end))
    by_reference = instructions.join(named, left_on="instruction_id", right_on="reference", how="semi")
    in_reach = pl.concat([recent, by_reference]).unique("instruction_id", keep="first")
    by_pair = installments.join(in_reach.select(INSTALLMENT_KEY).unique(), on=INSTALLMENT_KEY, how="semi")
    by_memo = installments.join(memo_contracts(records), on="contract_no", how="semi")
    reachable = pl.concat([by_pair, by_memo]).unique(INSTALLMENT_KEY, keep="first")
    state = MatchInput(
        business_date=day,
        records=records,
        instructions=in_reach.select(list(INSTRUCTION_DTYPES)).sort("instruction_id"),
        installments=reachable.join(loans.select("contract_no", "grace_days"), on="contract_no", how="left")
        .select(*INSTALLMENT_KEY, "due_date", *[f"{p}_due_fen" for p in PARTS], *[f"{p}_paid_fen" for p in PARTS],
                "grace_days")
        .sort(INSTALLMENT_KEY),
        loans=loans.select("contract_no", "bound_channel", "bound_account", "grace_days").sort("contract_no"),
        prior_payments=pl.DataFrame(schema=PRIOR_PAYMENT_DTYPES),
        answering_channels=frozenset(p.channel for p in parsed if p.status == "ACCEPTED"),
        invalid_references=frozenset(invalid["reference"].drop_nulls().to_list()),
    )  # fmt: skip
    result = match_day(state, settings)
    ledger = result.ledger
    paid = (
        ledger.drop_nulls(INSTALLMENT_KEY)
        .group_by(INSTALLMENT_KEY)
        .agg(
            *[pl.col(f"{p}_fen").sum().alias(f"{p}_paid_fen") for p in PARTS],
            pl.col("settled_at").filter(pl.col("kind").is_in(PAYING_KINDS)).max().alias("paid_at"),
        )
    )
    derived = derive_installment_state(installments, paid, day)
    return DayInMemory(all_outcomes(result, parsed, day, settings), ledger, derived.sort(INSTALLMENT_KEY))
