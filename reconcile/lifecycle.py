"""The life of an exception across runs: one row per problem (by stable key), new → ``OPEN``, seen
again → one more occurrence, gone → ``RESOLVED`` (``AUTO``), a reviewer's resolution standing until
the facts behind it change, and older exceptions that a later file settles.

Pure: the date's outcomes and the stored exceptions in, the rows to insert and the updates to make
out (:class:`ExceptionPlan`); ``flows/stages/write.py`` applies them in bulk.

Example: run 1 finds ``OVERPAYMENT|alipay|debit|T1|`` (held 10.00) → inserted ``OPEN``. A reviewer
resolves it ``REFUNDED``. Run 2 finds it with the same facts → occurrences 2, still ``RESOLVED``.
Run 3 finds it held 12.00 → facts changed: reopened, the note says from what to what.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from reconcile.codes import Outcome
from reconcile.keys import exception_key_expr
from reconcile.masking import mask_account_expr
from reconcile.text import format_text

UTC_US = pl.Datetime("us", "UTC")

EXCEPTION_COLUMNS = [
    "exception_key",
    "business_date",
    "outcome",
    "severity",
    "subject",
    "channel",
    "contract_no",
    "installment_no",
    "instruction_id",
    "channel_txn_id",
    "amount_fen",
    "held_fen",
    "flags",
    "facts",
    "account_masked",
    "explanation_zh",
    "explanation_en",
    "suggested_action",
    "source_file",
    "line_no",
]
#: What the lifecycle needs of the exceptions already stored for the date.
EXISTING_SCHEMA = {
    "exception_key": pl.String,
    "status": pl.String,
    "occurrences": pl.Int64,
    "facts": pl.String,
    "resolution_code": pl.String,
}
#: What an exception is about: when any of these changes, a reviewer's resolution no longer holds.
FACT_COLUMNS = (
    "amount_fen", "instr_amount_fen", "applied_fen", "held_fen", "flags", "contract_no", "installment_no",
)  # fmt: skip
#: Columns a reopened exception gets anew (beside its bookkeeping).
REOPENED_COLUMNS = (
    "status", "resolution_note", "facts", "flags", "amount_fen", "held_fen", "explanation_zh", "explanation_en",
    "resolution_code",
)  # fmt: skip
SEEN_COLUMNS = ("explanation_zh", "explanation_en", "facts", "flags", "amount_fen", "held_fen")
BOOKKEEPING_COLUMNS = ("occurrences", "last_seen_run", "last_seen_at")


def exception_rows(outcomes: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The date's exceptions with their stable key and a fingerprint of the facts behind them."""
    return (
        outcomes.filter(pl.col("is_exception"))
        .with_columns(
            exception_key=exception_key_expr(),
            business_date=pl.lit(day),
            instruction_id=pl.coalesce(pl.col("instruction_id"), pl.col("reference")),
            facts=pl.concat_str(
                [pl.col(c).cast(pl.String).fill_null("-") for c in FACT_COLUMNS],
                separator="|",
            ),
            account_masked=mask_account_expr("account_shown"),
        )
        .select(EXCEPTION_COLUMNS)
    )


@dataclass(frozen=True)
class ExceptionPlan:
    """What a run does to the exceptions table.

    ``insert``: new problems, ``OPEN``. ``update``: problems found again, keyed by
    ``exception_key`` (reopened ones with their new status, note and facts; the others keep their
    status and resolution). ``resolve``: ``OPEN`` exceptions of the date not found any more, keyed,
    with status, resolution code and note. ``counts``: new, seen again, reopened, auto-resolved.
    """

    insert: pl.DataFrame
    reopened: pl.DataFrame
    seen_again: pl.DataFrame
    resolve: pl.DataFrame
    counts: dict[str, int]


def plan_exceptions(
    found: pl.DataFrame,
    existing: pl.DataFrame,
    day: dt.date,
    run_id: str,
    now: dt.datetime,
    stays_open: pl.Expr | None = None,
) -> ExceptionPlan:
    """Move each exception of the date along its lifecycle (see the module docstring).

    ``found``: :func:`exception_rows` of this run. ``existing``: the stored exceptions of the date
    (:data:`EXISTING_SCHEMA`). ``stays_open``: exceptions (by ``exception_key``) that are events,
    not conditions: not found again, they stay ``OPEN`` until a person resolves them.
    """
    new = found.join(existing, on="exception_key", how="anti")
    again = found.join(existing, on="exception_key", how="inner", suffix="_before")
    gone = existing.join(found, on="exception_key", how="anti").filter(pl.col("status") == "OPEN")
    if stays_open is not None:
        gone = gone.filter(~stays_open)
    stamp = pl.lit(now).cast(UTC_US)
    insert = new.with_columns(
        status=pl.lit("OPEN"),
        occurrences=pl.lit(1),
        first_seen_run=pl.lit(run_id),
        last_seen_run=pl.lit(run_id),
        first_seen_at=stamp,
        last_seen_at=stamp,
    )
    facts_changed = pl.col("facts") != pl.col("facts_before")
    reopen = (pl.col("status") == "RESOLVED") & ((pl.col("resolution_code") == "AUTO") | facts_changed)
    updated = again.with_columns(_reopen=reopen).with_columns(
        occurrences=pl.col("occurrences") + 1,
        last_seen_run=pl.lit(run_id),
        last_seen_at=stamp,
        status=pl.when(pl.col("_reopen")).then(pl.lit("OPEN")).otherwise(pl.col("status")),
        resolution_note=pl.when(pl.col("_reopen") & facts_changed)
        .then(format_text("reopened by run {}: facts changed from {} to {}", pl.lit(run_id), "facts_before", "facts"))
        .when(pl.col("_reopen"))
        .then(format_text("reopened by run {}: found again", pl.lit(run_id)))
        .otherwise(None),
        resolution_code=pl.lit(None, pl.String),
    )
    reopened = updated.filter(pl.col("_reopen")).select("exception_key", *BOOKKEEPING_COLUMNS, *REOPENED_COLUMNS)
    seen = updated.filter(~pl.col("_reopen")).select("exception_key", *BOOKKEEPING_COLUMNS, *SEEN_COLUMNS)
    resolve = gone.select(
        "exception_key",
        pl.lit("RESOLVED").alias("status"),
        pl.lit("AUTO").alias("resolution_code"),
        pl.lit(f"no longer found when run {run_id} reconciled {day.isoformat()} again").alias("resolution_note"),
    )
    counts = {
        "new": new.height,
        "seen_again": again.height,
        "reopened": reopened.height,
        "auto_resolved": resolve.height,
    }
    return ExceptionPlan(insert, reopened, seen, resolve, counts)


SETTLING_SCHEMA = {"outcome": pl.String, "channel": pl.String, "instruction_id": pl.String}
#: What a later date's records settle: a debit result answers its instruction's missing result; a
#: refund of held money settles the duplicate or the overpayment it gives back.
ANSWERED_BY_A_RESULT = Outcome.MISSING_RESULT
SETTLED_BY_A_REFUND = (Outcome.DUPLICATE_DEBIT, Outcome.OVERPAYMENT)
SETTLED_BY_LATER_RECORDS = tuple(code.value for code in (ANSWERED_BY_A_RESULT, *SETTLED_BY_A_REFUND))


def settling_records(outcomes: pl.DataFrame) -> pl.DataFrame:
    """What this date's records can settle among older open exceptions: a debit result answers a
    ``MISSING_RESULT`` of its instruction; a refund of held money settles a ``DUPLICATE_DEBIT`` or
    ``OVERPAYMENT`` of the payment it refunds. → ``outcome``, ``channel``, ``instruction_id``
    (the older exception's), ``source_file``, ``line_no`` (the settling line)."""
    records = outcomes.filter(pl.col("subject") == "record")
    answers = records.filter(pl.col("record_kind") == "debit").select(
        pl.lit(ANSWERED_BY_A_RESULT.value).alias("outcome"),
        "channel",
        pl.col("reference").alias("instruction_id"),
        "source_file",
        "line_no",
    )
    refunds = records.filter((pl.col("outcome") == Outcome.REVERSAL.value) & (pl.col("held_fen") < 0))
    refunds = pl.concat(
        [
            refunds.select(
                pl.lit(code.value).alias("outcome"),
                "channel",
                pl.col("reference").alias("instruction_id"),
                "source_file",
                "line_no",
            )
            for code in SETTLED_BY_A_REFUND
        ]
    )
    return (
        pl.concat([answers, refunds])
        .drop_nulls(["instruction_id"])
        .unique(["outcome", "channel", "instruction_id"], keep="first", maintain_order=True)
    )


def settled_by_later_files(open_items: pl.DataFrame, settling: pl.DataFrame, day: dt.date, run_id: str) -> pl.DataFrame:
    """Older ``OPEN`` exceptions (``exception_key``, ``outcome``, ``channel``, ``instruction_id``)
    that a settling record resolves: keyed, with status, resolution code and a note naming the
    file and line that settled it."""
    return open_items.join(settling, on=["outcome", "channel", "instruction_id"]).select(
        "exception_key",
        pl.lit("RESOLVED").alias("status"),
        pl.lit("AUTO").alias("resolution_code"),
        format_text(
            "settled by {} line {} (business date {}, run {})",
            "source_file",
            "line_no",
            pl.lit(day.isoformat()),
            pl.lit(run_id),
        ).alias("resolution_note"),
    )


LEDGER_KEY = ["channel", "channel_txn_id", "kind", "seq"]


def ledger_changes(before: pl.DataFrame, after: pl.DataFrame) -> dict[str, int]:
    """What a run changed in its date's ledger compared with the previous run of the same date
    (both with the same columns, keyed by channel, transaction id, kind and seq)."""
    both = before.join(after, on=LEDGER_KEY, how="inner", suffix="_after")
    compared = [c for c in after.columns if c not in LEDGER_KEY]
    changed = both.filter(pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_after")) for c in compared]))
    return {
        "entries_added": after.join(before, on=LEDGER_KEY, how="anti").height,
        "entries_removed": before.join(after, on=LEDGER_KEY, how="anti").height,
        "entries_changed": changed.height,
    }
