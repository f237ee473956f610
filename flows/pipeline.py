"""The stages of one business date's run, as plain functions the Prefect flow wires together.

``discover`` → ``parse`` → ``load_state`` → (pure) ``match_day`` → ``write_day`` (one transaction)
→ ``file_away`` and the workbook after the commit. Business rules live in ``reconcile/``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, and_, delete, func, select, update

from flows.db import (
    ChannelRecord,
    DebitInstruction,
    ExceptionItem,
    Installment,
    LedgerEntry,
    Loan,
    Run,
    SourceFile,
    table_of,
)
from flows.faults import checkpoint
from flows.store import connect, insert_frame, read_frame, stage_frame, update_from_frame
from reconcile.codes import Outcome
from reconcile.delivery import DeliveryRejected, unpack
from reconcile.explain import explain
from reconcile.ingest import (
    ParsedFile,
    empty_invalid,
    empty_records,
    identify_layout,
    parse_channel_file,
    set_aside_evidence,
    set_aside_restated,
)
from reconcile.masking import mask_account_expr
from reconcile.matching import OUTCOME_COLUMNS, PARTS, MatchInput, MatchResult
from reconcile.settings import BUSINESS_TZ, Settings, business_date_bounds_utc
from reconcile.text import format_text
from schemas.frames import INSTRUCTION_DTYPES, PRIOR_PAYMENT_DTYPES

UTC_US = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class DiscoveredFile:
    """One readable file found in the inbox for a business date (a zip member counts as one).

    ``name``: as delivered, or ``zip!member``. ``path``: the delivered file on disk. ``data``: the
    bytes to read. ``channel``: None when nothing recognises it. ``rejection``: why the delivery as
    a whole is refused (a bad zip), or None.
    """

    name: str
    path: Path
    sha256: str
    size: int
    channel: str | None
    data: bytes = b""
    rejection: str | None = None
    layout: str | None = None


def discover(inbox_day: Path, settings: Settings) -> list[DiscoveredFile]:
    """Files in the date's inbox folder (zips opened in memory), hashed, each claimed by a channel."""
    if not inbox_day.is_dir():
        return []
    found = []
    for path in sorted(p for p in inbox_day.iterdir() if p.is_file() and not p.name.startswith(".")):
        data = path.read_bytes()
        try:
            pieces = unpack(path.name, data, settings.layouts)
        except DeliveryRejected as rejected:
            found.append(
                DiscoveredFile(path.name, path, hashlib.sha256(data).hexdigest(), len(data), None, b"", str(rejected))
            )
            continue
        for piece in pieces:
            channel, layout = claim(piece.name, piece.data, settings)
            digest = hashlib.sha256(piece.data).hexdigest()
            found.append(DiscoveredFile(piece.name, path, digest, len(piece.data), channel, piece.data, layout=layout))
    return found


def claim(name: str, data: bytes, settings: Settings) -> tuple[str | None, str | None]:
    """The channel a file belongs to and the layout it is in: the layout is recognised by content;
    when several channels send that layout, the file name pattern decides. (None, layout) when no
    single channel claims it; (None, None) when nothing recognises the content."""
    layout = identify_layout(data, settings.layouts)
    if layout is None:
        return None, None
    candidates = [c for c in settings.channels.values() if layout in c.layouts]
    if len(candidates) == 1:
        return candidates[0].channel_id, layout
    named = [c for c in candidates if fnmatch.fnmatch(name, c.file_pattern)]
    return (named[0].channel_id if len(named) == 1 else None), layout


def parse(files: list[DiscoveredFile], settings: Settings, day: dt.date) -> list[ParsedFile]:
    """Each file read by its layout; a second copy of the same bytes in the delivery is not read
    again but skipped, naming the first."""
    parsed = []
    accepted: dict[str, ParsedFile] = {}
    for found in files:
        first = accepted.get(found.sha256)
        if first is not None:
            why = f"the same bytes as {first.source_file} in this delivery: counted once"
            parsed.append(replace(first, source_file=found.name).skip(why))
            continue
        if found.channel is None or found.rejection is not None:
            reason = found.rejection or (
                "no configured layout recognises this file's content (or several channels "
                "share its layout and none's file pattern fits its name)"
            )
            parsed.append(
                ParsedFile(
                    found.name,
                    found.sha256,
                    "unknown",
                    "unknown",
                    None,
                    0,
                    empty_records(),
                    empty_invalid(),
                    rejected_reason=reason,
                )
            )
            continue
        channel = settings.channels[found.channel]
        layout = settings.layouts[found.layout or channel.layout]
        result = parse_channel_file(found.name, found.data, found.sha256, channel, layout, day)
        if result.rejected_reason is None:
            accepted[found.sha256] = result
        parsed.append(result)
    return set_aside_evidence(set_aside_restated(parsed, settings.layouts), settings)


def skip_counted_elsewhere(parsed: list[ParsedFile], history: dict[str, dict[str, Any]]) -> list[ParsedFile]:
    """A file whose exact bytes were first processed for another business date is not counted
    again (a channel re-sending yesterday's file under today's folder)."""
    result = []
    for item in parsed:
        known = history.get(item.sha256, {})
        if item.status == "ACCEPTED" and known.get("first_business_date") not in (None, known.get("business_date")):
            item = item.skip(
                f"the same bytes were processed for business date {known['first_business_date']} "
                f"as {known['first_name']}: counted there, not again"
            )
        result.append(item)
    return result


INSTALLMENT_STATE_SCHEMA = {
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "due_date": pl.Date,
    "grace_days": pl.Int64,
    **{f"{p}_due_fen": pl.Int64 for p in PARTS},
}


def load_state(engine: Engine, day: dt.date, parsed: list[ParsedFile], settings: Settings) -> MatchInput:
    """Instructions, installments (as settled before ``day``), loans and earlier payments.

    Only what the date can touch is read: instructions requested on the date or in the fallback
    window before it, or named by a record; their installments; every installment of a contract
    named in a memo; payments that a refund names. Lookups go through staged temporary tables.
    """
    records = pl.concat([p.records for p in parsed if p.rejected_reason is None] or [empty_records()])
    invalid = pl.concat([p.invalid for p in parsed] or [empty_invalid()])
    start, end = business_date_bounds_utc(day)
    window_start = start - dt.timedelta(days=int(settings.extra.get("fallback_window_days", 3)))
    instructions_table = table_of(DebitInstruction)
    ledger_table = table_of(LedgerEntry)
    installment_table = table_of(Installment)
    with engine.begin() as conn:
        references = pl.concat([records.select("reference"), invalid.select("reference")]).drop_nulls().unique()
        staged_refs = stage_frame(
            conn, "stage_refs", references.rename({"reference": "instruction_id"}), instructions_table
        )
        columns = [instructions_table.c[c] for c in INSTRUCTION_DTYPES]
        recent = read_frame(
            conn,
            select(*columns).where(DebitInstruction.requested_at >= window_start, DebitInstruction.requested_at < end),
            INSTRUCTION_DTYPES,
        )
        named = read_frame(
            conn,
            select(*columns).join(staged_refs, staged_refs.c.instruction_id == instructions_table.c.instruction_id),
            INSTRUCTION_DTYPES,
        )
        instructions = pl.concat([recent, named]).unique("instruction_id", keep="first").sort("instruction_id")

        memo_contracts = (
            records.select(pl.col("memo").str.extract(r"([A-Za-z0-9_-]+)", 1).alias("contract_no"))
            .drop_nulls()
            .unique()
        )
        refund_refs = records.filter(pl.col("record_kind") == "refund").select("reference").drop_nulls().unique()
        staged_refunds = stage_frame(conn, "stage_refunds", refund_refs, ledger_table)
        prior = read_frame(
            conn,
            select(*[ledger_table.c[c] for c in PRIOR_PAYMENT_DTYPES])
            .join(staged_refunds, staged_refunds.c.reference == ledger_table.c.reference)
            .where(ledger_table.c.kind == "payment", ledger_table.c.business_date < day),
            PRIOR_PAYMENT_DTYPES,
        )
        pairs = pl.concat(
            [instructions.select("contract_no", "installment_no"), prior.select("contract_no", "installment_no")]
        ).unique()
        staged_pairs = stage_frame(conn, "stage_pairs", pairs, installment_table)
        staged_memo = stage_frame(conn, "stage_memo", memo_contracts, installment_table)
        due_columns = [installment_table.c[c] for c in INSTALLMENT_STATE_SCHEMA if c != "grace_days"]
        due_schema = {k: v for k, v in INSTALLMENT_STATE_SCHEMA.items() if k != "grace_days"}
        by_pair = read_frame(
            conn,
            select(*due_columns).join(
                staged_pairs,
                and_(
                    staged_pairs.c.contract_no == installment_table.c.contract_no,
                    staged_pairs.c.installment_no == installment_table.c.installment_no,
                ),
            ),
            due_schema,
        )
        by_memo = read_frame(
            conn,
            select(*due_columns).join(staged_memo, staged_memo.c.contract_no == installment_table.c.contract_no),
            due_schema,
        )
        installments = pl.concat([by_pair, by_memo]).unique(["contract_no", "installment_no"], keep="first")
        staged_keys = stage_frame(
            conn, "stage_keys", installments.select("contract_no", "installment_no"), installment_table
        )
        paid = read_frame(
            conn,
            select(
                ledger_table.c.contract_no,
                ledger_table.c.installment_no,
                *[func.sum(ledger_table.c[f"{p}_fen"]).label(f"{p}_paid_fen") for p in PARTS],
            )
            .join(
                staged_keys,
                and_(
                    staged_keys.c.contract_no == ledger_table.c.contract_no,
                    staged_keys.c.installment_no == ledger_table.c.installment_no,
                ),
            )
            .where(ledger_table.c.business_date < day)
            .group_by(ledger_table.c.contract_no, ledger_table.c.installment_no),
            {"contract_no": pl.String, "installment_no": pl.Int64, **{f"{p}_paid_fen": pl.Int64 for p in PARTS}},
        )
        contracts = installments.select("contract_no").unique()
        staged_contracts = stage_frame(conn, "stage_contracts", contracts, table_of(Loan))
        loans = read_frame(
            conn,
            select(Loan.contract_no, Loan.bound_channel, Loan.bound_account, Loan.grace_days).join(
                staged_contracts, staged_contracts.c.contract_no == table_of(Loan).c.contract_no
            ),
            {"contract_no": pl.String, "bound_channel": pl.String, "bound_account": pl.String, "grace_days": pl.Int64},
        )
        for staged in (staged_refs, staged_refunds, staged_pairs, staged_memo, staged_keys, staged_contracts):
            staged.drop(conn)
    installments = (
        installments.join(loans.select("contract_no", "grace_days"), on="contract_no", how="left")
        .join(paid, on=["contract_no", "installment_no"], how="left")
        .with_columns([pl.col(f"{p}_paid_fen").fill_null(0) for p in PARTS])
        .sort("contract_no", "installment_no")
    )
    return MatchInput(
        business_date=day,
        records=records,
        instructions=instructions,
        installments=installments,
        loans=loans.sort("contract_no"),
        prior_payments=prior,
        answering_channels=frozenset(p.channel for p in parsed if p.status == "ACCEPTED"),
        invalid_references=frozenset(invalid["reference"].drop_nulls().to_list()),
    )


def file_outcomes(parsed: list[ParsedFile], day: dt.date, settings: Settings) -> pl.DataFrame:
    """Outcomes that come from ingestion: rejected files, missing files, invalid lines."""
    rows: list[dict[str, Any]] = []
    arrived = {p.channel for p in parsed}
    for item in parsed:
        if item.rejected_reason is not None:
            rows.append(
                {
                    "subject": "file",
                    "subject_key": f"file|{item.source_file}",
                    "outcome": Outcome.FILE_REJECTED.value,
                    "channel": item.channel,
                    "source_file": item.source_file,
                    "message": item.rejected_reason,
                }
            )
    for channel in settings.channels.values():
        if channel.expected_daily and channel.channel_id not in arrived:
            rows.append(
                {
                    "subject": "channel",
                    "subject_key": f"channel|{channel.channel_id}|{day.isoformat()}",
                    "outcome": Outcome.MISSING_FILE.value,
                    "channel": channel.channel_id,
                }
            )
    files = pl.DataFrame(
        rows,
        schema={
            "subject": pl.String,
            "subject_key": pl.String,
            "outcome": pl.String,
            "channel": pl.String,
            "source_file": pl.String,
            "message": pl.String,
        },
    )
    invalid = pl.concat([p.invalid for p in parsed] or [empty_invalid()]).select(
        pl.lit("record").alias("subject"),
        format_text("{}|line|{}|{}", pl.col("channel"), pl.col("source_file"), pl.col("line_no")).alias("subject_key"),
        pl.lit(Outcome.INVALID_RECORD.value).alias("outcome"),
        "channel",
        "source_file",
        "line_no",
        "raw_line",
        "reference",
        "message",
    )
    combined = pl.concat([files, invalid], how="diagonal_relaxed")
    extra = {name: dtype for name, dtype in OUTCOME_COLUMNS.items() if name not in combined.columns}
    combined = combined.with_columns([pl.lit(None, dtype).alias(name) for name, dtype in extra.items()])
    return combined.with_columns(
        flags=pl.lit(""),
        **{c: pl.lit(0, pl.Int64) for c in ("received_fen", "applied_fen", "held_fen", "reversed_fen")},
    ).select([*OUTCOME_COLUMNS, "message"])


def all_outcomes(result: MatchResult, parsed: list[ParsedFile], day: dt.date, settings: Settings) -> pl.DataFrame:
    matched = result.outcomes.with_columns(message=pl.lit(None, pl.String))
    combined = pl.concat([matched, file_outcomes(parsed, day, settings)], how="vertical_relaxed")
    return explain(combined.sort("subject", "subject_key"))


def write_day(
    engine: Engine,
    day: dt.date,
    run_id: str,
    outcomes: pl.DataFrame,
    ledger: pl.DataFrame,
    parsed: list[ParsedFile],
    now: dt.datetime,
) -> dict[str, Any]:
    """Replace the date's records and ledger, derive installment and loan state, keep exceptions.

    One transaction: the date is either as before or as after.
    """
    with engine.begin() as conn:
        before_ledger = read_frame(
            conn,
            select(*[table_of(LedgerEntry).c[c] for c in LEDGER_DIFF_SCHEMA]).where(LedgerEntry.business_date == day),
            LEDGER_DIFF_SCHEMA,
        )
        before = before_ledger.select("contract_no", "installment_no")
        conn.execute(delete(ChannelRecord).where(ChannelRecord.business_date == day))
        conn.execute(delete(LedgerEntry).where(LedgerEntry.business_date == day))
        checkpoint("after_delete")
        records = outcomes.filter(pl.col("subject") == "record").select(
            pl.lit(day).alias("business_date"),
            pl.col("subject_key").alias("record_key"),
            pl.col("source_file"),
            pl.col("line_no"),
            "channel",
            "record_kind",
            "status",
            "channel_txn_id",
            "reference",
            "instruction_id",
            "contract_no",
            "installment_no",
            "amount_fen",
            "settled_at",
            "account_shown",
            "failure_reason",
            "failure_code",
            "failure_text",
            "match_pass",
            "outcome",
            "flags",
            "applied_fen",
            "held_fen",
            pl.col("raw_line").fill_null(""),
        )
        shas = {p.source_file: p.sha256 for p in parsed}
        records = records.with_columns(
            file_sha256=pl.col("source_file").replace_strict(shas, default=""),
        )
        insert_frame(conn, table_of(ChannelRecord), records)
        checkpoint("after_records")
        insert_frame(
            conn,
            table_of(LedgerEntry),
            ledger.with_columns(business_date=pl.lit(day), run_id=pl.lit(run_id)),
        )
        checkpoint("after_ledger")
        _register_files(conn, parsed, day, run_id, now)
        touched = pl.concat([before, ledger.select("contract_no", "installment_no")]).drop_nulls().unique()
        _derive_installments(conn, touched, day)
        checkpoint("after_installments")
        _derive_loans(conn, touched.select("contract_no").unique())
        exception_changes = _keep_exceptions(conn, outcomes, day, run_id, now)
        checkpoint("before_commit")
    return {"exceptions": exception_changes, "ledger": ledger_changes(before_ledger, ledger)}


LEDGER_DIFF_SCHEMA = {
    "channel": pl.String,
    "channel_txn_id": pl.String,
    "kind": pl.String,
    "seq": pl.Int64,
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "amount_fen": pl.Int64,
    **{f"{p}_fen": pl.Int64 for p in PARTS},
    "held_fen": pl.Int64,
}


def ledger_changes(before: pl.DataFrame, after: pl.DataFrame) -> dict[str, int]:
    """What a run changed in its date's ledger compared with the previous run of the same date."""
    keys = ["channel", "channel_txn_id", "kind", "seq"]
    after = after.select(list(LEDGER_DIFF_SCHEMA))
    both = before.join(after, on=keys, how="inner", suffix="_after")
    changed = both.filter(
        pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_after")) for c in LEDGER_DIFF_SCHEMA if c not in keys])
    )
    return {
        "entries_added": after.join(before, on=keys, how="anti").height,
        "entries_removed": before.join(after, on=keys, how="anti").height,
        "entries_changed": changed.height,
    }


def _register_files(conn: Any, parsed: list[ParsedFile], day: dt.date, run_id: str, now: dt.datetime) -> None:
    known = set(
        conn.execute(select(SourceFile.sha256).where(SourceFile.sha256.in_([p.sha256 for p in parsed]))).scalars()
    )
    fresh = []
    for p in parsed:  # one row per SHA-256: the first copy's
        if p.sha256 in known:
            continue
        known.add(p.sha256)
        fresh.append(
            {
                "sha256": p.sha256,
                "business_date": day,
                "name": p.source_file,
                "channel": p.channel,
                "layout": p.layout,
                "rows": p.rows,
                "status": p.status,
                "reason": p.rejected_reason or p.skipped,
                "first_run_id": run_id,
                "registered_at": now,
            }
        )
    if fresh:
        conn.execute(table_of(SourceFile).insert(), fresh)


def _derive_installments(conn: Any, touched: pl.DataFrame, day: dt.date) -> None:
    """Installment state is derived from the ledger, in one deterministic way, for every touched one."""
    if touched.height == 0:
        _mark_overdue(conn, day)
        return
    installments, ledger = table_of(Installment), table_of(LedgerEntry)
    staged = stage_frame(conn, "stage_touched", touched, installments)
    on_touched = and_(
        staged.c.contract_no == installments.c.contract_no, staged.c.installment_no == installments.c.installment_no
    )
    dues = read_frame(
        conn,
        select(
            installments.c.contract_no,
            installments.c.installment_no,
            installments.c.overdue_after,
            *[installments.c[f"{p}_due_fen"] for p in PARTS],
        ).join(staged, on_touched),
        {
            "contract_no": pl.String,
            "installment_no": pl.Int64,
            "overdue_after": pl.Date,
            **{f"{p}_due_fen": pl.Int64 for p in PARTS},
        },
    )
    paid = read_frame(
        conn,
        select(
            ledger.c.contract_no,
            ledger.c.installment_no,
            *[func.sum(ledger.c[f"{p}_fen"]).label(f"{p}_paid_fen") for p in PARTS],
            func.max(ledger.c.settled_at).filter(ledger.c.kind == "payment").label("paid_at"),
        )
        .join(
            staged,
            and_(staged.c.contract_no == ledger.c.contract_no, staged.c.installment_no == ledger.c.installment_no),
        )
        .group_by(ledger.c.contract_no, ledger.c.installment_no),
        {
            "contract_no": pl.String,
            "installment_no": pl.Int64,
            **{f"{p}_paid_fen": pl.Int64 for p in PARTS},
            "paid_at": UTC_US,
        },
    )
    staged.drop(conn)
    state = dues.join(paid, on=["contract_no", "installment_no"], how="left").with_columns(
        [pl.col(f"{p}_paid_fen").fill_null(0) for p in PARTS]
    )
    state = state.with_columns(status=installment_status_expr(day))
    update_from_frame(
        conn,
        table_of(Installment),
        state.select(
            "contract_no",
            "installment_no",
            *[pl.col(f"{p}_paid_fen") for p in PARTS],
            "status",
            pl.when(pl.col("status").is_in(["PAID", "PAID_LATE"]))
            .then(pl.col("paid_at"))
            .otherwise(None)
            .alias("paid_at"),
        ),
        ["contract_no", "installment_no"],
    )
    _mark_overdue(conn, day)


def installment_status_expr(day: dt.date) -> pl.Expr:
    """DUE, PARTIALLY_PAID, PAID, PAID_LATE or OVERDUE (open past due date + grace on ``day``)."""
    owed = pl.sum_horizontal([pl.col(f"{p}_due_fen") - pl.col(f"{p}_paid_fen") for p in PARTS])
    paid_any = pl.sum_horizontal([pl.col(f"{p}_paid_fen") for p in PARTS]) > 0
    paid_day = pl.col("paid_at").dt.convert_time_zone("Asia/Shanghai").dt.date()
    return (
        pl.when(owed <= 0)
        .then(pl.when(paid_day > pl.col("overdue_after")).then(pl.lit("PAID_LATE")).otherwise(pl.lit("PAID")))
        .when(pl.col("overdue_after") < day)
        .then(pl.lit("OVERDUE"))
        .when(paid_any)
        .then(pl.lit("PARTIALLY_PAID"))
        .otherwise(pl.lit("DUE"))
    )


def _mark_overdue(conn: Any, day: dt.date) -> None:
    conn.execute(
        update(Installment)
        .where(Installment.status.in_(["DUE", "PARTIALLY_PAID"]), Installment.overdue_after < day)
        .values(status="OVERDUE")
    )


def _derive_loans(conn: Any, contracts: pl.DataFrame) -> None:
    """ACTIVE, SETTLED (结清: every installment paid) or OVERPAID (settled, money still held)."""
    values = contracts["contract_no"].to_list()
    if not values:
        return
    installments, ledger = table_of(Installment), table_of(LedgerEntry)
    staged = stage_frame(conn, "stage_loans", contracts, table_of(Loan))
    open_count = func.count().filter(installments.c.status.not_in(["PAID", "PAID_LATE"]))
    unsettled = read_frame(
        conn,
        select(installments.c.contract_no, open_count.label("open_installments"))
        .join(staged, staged.c.contract_no == installments.c.contract_no)
        .group_by(installments.c.contract_no),
        {"contract_no": pl.String, "open_installments": pl.Int64},
    )
    held_by_loan = read_frame(
        conn,
        select(ledger.c.contract_no, func.sum(ledger.c.held_fen).label("held_fen"))
        .join(staged, staged.c.contract_no == ledger.c.contract_no)
        .group_by(ledger.c.contract_no),
        {"contract_no": pl.String, "held_fen": pl.Int64},
    )
    staged.drop(conn)
    loans = (
        unsettled.with_columns(settled=pl.col("open_installments") == 0)
        .join(held_by_loan, on="contract_no", how="left")
        .with_columns(
            status=pl.when(pl.col("settled") & (pl.col("held_fen").fill_null(0) > 0))
            .then(pl.lit("OVERPAID"))
            .when(pl.col("settled"))
            .then(pl.lit("SETTLED"))
            .otherwise(pl.lit("ACTIVE"))
        )
    )
    update_from_frame(conn, table_of(Loan), loans.select("contract_no", "status"), ["contract_no"])


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


def exception_rows(outcomes: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The date's exceptions with their stable key and a fingerprint of the facts behind them."""
    return (
        outcomes.filter(pl.col("is_exception"))
        .with_columns(
            exception_key=format_text("{}|{}", pl.col("outcome"), pl.col("subject_key")),
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


def _keep_exceptions(conn: Any, outcomes: pl.DataFrame, day: dt.date, run_id: str, now: dt.datetime) -> dict[str, int]:
    """Upsert the date's exceptions by stable key and move each along its lifecycle.

    - new problem → ``OPEN``; the same problem again → one more occurrence, same row;
    - an ``OPEN`` exception of this date not found any more → ``RESOLVED`` (``AUTO``), saying by which run;
    - a reviewer's resolution stands while the facts stay the same; when they change, or an
      automatically resolved one is found again, it reopens and says why;
    - a later file that settles an older exception (the missing result arrives, the held money is
      refunded) resolves it, naming the file and line.
    """
    found = exception_rows(outcomes, day)
    table = table_of(ExceptionItem)
    existing = read_frame(
        conn,
        select(*[table.c[c] for c in EXISTING_SCHEMA]).where(table.c.business_date == day),
        EXISTING_SCHEMA,
    )
    new = found.join(existing, on="exception_key", how="anti")
    again = found.join(existing, on="exception_key", how="inner", suffix="_before")
    gone = existing.join(found, on="exception_key", how="anti").filter(pl.col("status") == "OPEN")
    stamp = pl.lit(now).cast(UTC_US)
    insert_frame(
        conn,
        table,
        new.with_columns(
            status=pl.lit("OPEN"),
            occurrences=pl.lit(1),
            first_seen_run=pl.lit(run_id),
            last_seen_run=pl.lit(run_id),
            first_seen_at=stamp,
            last_seen_at=stamp,
        ),
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
    )
    update_from_frame(
        conn,
        table,
        updated.filter(pl.col("_reopen")).select(
            "exception_key",
            "occurrences",
            "last_seen_run",
            "last_seen_at",
            "status",
            "resolution_note",
            "facts",
            "flags",
            "amount_fen",
            "held_fen",
            "explanation_zh",
            "explanation_en",
            pl.lit(None, pl.String).alias("resolution_code"),
        ),
        ["exception_key"],
    )
    update_from_frame(
        conn,
        table,
        updated.filter(~pl.col("_reopen")).select(
            "exception_key",
            "occurrences",
            "last_seen_run",
            "last_seen_at",
            "explanation_zh",
            "explanation_en",
            "facts",
            "flags",
            "amount_fen",
            "held_fen",
        ),
        ["exception_key"],
    )
    if gone.height:
        conn.execute(
            update(table)
            .where(table.c.exception_key.in_(gone["exception_key"].to_list()))
            .values(
                status="RESOLVED",
                resolution_code="AUTO",
                resolution_note=f"no longer found when run {run_id} reconciled {day.isoformat()} again",
            )
        )
    settled = _settled_by_later_files(conn, outcomes, day, run_id)
    return {
        "new": new.height,
        "seen_again": again.height,
        "reopened": updated.filter(pl.col("_reopen")).height,
        "auto_resolved": gone.height,
        "settled_by_files": settled,
    }


def _settled_by_later_files(conn: Any, outcomes: pl.DataFrame, day: dt.date, run_id: str) -> int:
    """Older open exceptions that this date's records settle: a result that arrives, a refund of held money."""
    records = outcomes.filter(pl.col("subject") == "record")
    answers = records.filter(pl.col("record_kind") == "debit").select(
        pl.lit(Outcome.MISSING_RESULT.value).alias("outcome"),
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
            for code in (Outcome.DUPLICATE_DEBIT, Outcome.OVERPAYMENT)
        ]
    )
    settling = (
        pl.concat([answers, refunds])
        .drop_nulls(["instruction_id"])
        .unique(["outcome", "channel", "instruction_id"], keep="first")
    )
    if settling.height == 0:
        return 0
    table = table_of(ExceptionItem)
    staged = stage_frame(conn, "stage_settling", settling.select("outcome", "channel", "instruction_id"), table)
    open_items = read_frame(
        conn,
        select(table.c.exception_key, table.c.outcome, table.c.channel, table.c.instruction_id)
        .join(
            staged,
            and_(
                staged.c.outcome == table.c.outcome,
                staged.c.channel == table.c.channel,
                staged.c.instruction_id == table.c.instruction_id,
            ),
        )
        .where(table.c.status == "OPEN", table.c.business_date < day),
        {"exception_key": pl.String, "outcome": pl.String, "channel": pl.String, "instruction_id": pl.String},
    )
    staged.drop(conn)
    resolved = open_items.join(settling, on=["outcome", "channel", "instruction_id"]).select(
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
    update_from_frame(conn, table, resolved, ["exception_key"])
    return resolved.height


WORKBOOK_SCHEMA = {
    "exception_key": pl.String,
    "business_date": pl.Date,
    "outcome": pl.String,
    "severity": pl.String,
    "status": pl.String,
    "channel": pl.String,
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "instruction_id": pl.String,
    "channel_txn_id": pl.String,
    "amount_fen": pl.Int64,
    "held_fen": pl.Int64,
    "account_masked": pl.String,
    "explanation_zh": pl.String,
    "explanation_en": pl.String,
    "suggested_action": pl.String,
    "source_file": pl.String,
    "line_no": pl.Int64,
}


def exceptions_for_workbook(engine: Engine, day: dt.date) -> pl.DataFrame:
    """The date's exceptions plus every older one still open, with its age in days."""
    table = table_of(ExceptionItem)
    with engine.connect() as conn:
        frame = read_frame(
            conn,
            select(*[table.c[c] for c in WORKBOOK_SCHEMA]).where(
                (table.c.business_date == day) | ((table.c.status == "OPEN") & (table.c.business_date < day))
            ),
            WORKBOOK_SCHEMA,
        )
    return frame.with_columns(age_days=(pl.lit(day) - pl.col("business_date")).dt.total_days()).sort(
        "outcome", "business_date", "exception_key"
    )


def file_history(engine: Engine, day: dt.date, parsed: list[ParsedFile]) -> dict[str, dict[str, Any]]:
    """For each file (by SHA-256): whether these exact bytes were processed before, and — for a
    file whose name was seen for this date with other bytes — the SHA-256 it supersedes."""
    with engine.connect() as conn:
        known = read_frame(
            conn,
            select(SourceFile.sha256, SourceFile.name, SourceFile.business_date, SourceFile.registered_at),
            {"sha256": pl.String, "name": pl.String, "business_date": pl.Date, "registered_at": UTC_US},
        )
    shas = set(known["sha256"].to_list())
    history = {}
    for item in parsed:
        earlier = known.filter(
            (pl.col("name") == item.source_file) & (pl.col("business_date") == day) & (pl.col("sha256") != item.sha256)
        ).sort("registered_at")
        same = known.filter(pl.col("sha256") == item.sha256)
        history[item.sha256] = {
            "seen_before": item.sha256 in shas,
            "replaces_sha256": earlier["sha256"][-1] if earlier.height else None,
            "business_date": day.isoformat(),
            "first_business_date": same["business_date"][0].isoformat() if same.height else None,
            "first_name": same["name"][0] if same.height else None,
        }
    return history


def unmapped_failures(parsed: list[ParsedFile]) -> dict[str, Any]:
    """Failed records whose code or words no table maps (kept raw, counted as OTHER)."""
    records = pl.concat([p.records for p in parsed if p.rejected_reason is None] or [empty_records()])
    other = records.filter((pl.col("status") == "FAILED") & (pl.col("failure_reason") == "OTHER"))
    raw = (
        other.select(pl.coalesce("failure_code", "failure_text").fill_null("(none)").alias("raw")).group_by("raw").len()
    )
    return {"count": other.height, "raw": dict(raw.sort("len", "raw", descending=[True, False]).head(10).iter_rows())}


def start_run(engine: Engine, run_id: str, day: dt.date, started: dt.datetime, parameters: dict[str, Any]) -> None:
    """Record a run; earlier runs of the date still marked RUNNING died (we hold the date's lock)."""
    with engine.begin() as conn:
        conn.execute(
            update(Run)
            .where(Run.business_date == day, Run.status == "RUNNING")
            .values(status="ABANDONED", finished_at=started)
        )
        conn.execute(
            table_of(Run)
            .insert()
            .values(run_id=run_id, business_date=day, started_at=started, status="RUNNING", parameters=parameters)
        )


def finish_run(engine: Engine, run_id: str, summary: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Run)
            .where(Run.run_id == run_id)
            .values(
                status=summary["status"],
                finished_at=dt.datetime.now(dt.UTC),
                summary=summary,
                timings=summary.get("timings_s"),
            )
        )


def later_reconciled_dates(url: str, day: dt.date) -> list[dt.date]:
    """Dates after ``day`` that have been reconciled before (their books may depend on ``day``)."""
    engine = connect(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Run.business_date).where(Run.business_date > day, Run.status == "SUCCEEDED").distinct()
            ).scalars()
            return sorted(set(rows))
    finally:
        engine.dispose()


def installment_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(Installment.status, func.count()).group_by(Installment.status)).all()
    return {status: int(count) for status, count in sorted(rows)}


def open_exception_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(ExceptionItem.status == "OPEN")).scalar_one())


def file_away(
    files: list[DiscoveredFile], parsed: list[ParsedFile], archive: Path, quarantine: Path, day: dt.date
) -> None:
    """Copy accepted files to the archive, rejected ones to quarantine with a reason beside them.

    The inbox is never touched: files are copied, and a copy never overwrites a different version.
    """
    for found, result in zip(files, parsed, strict=True):
        target_root = quarantine if result.rejected_reason else archive
        folder = target_root / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        # a zip member is archived as the zip it came in (once per zip and fate)
        target = folder / f"{hashlib.sha256(found.path.read_bytes()).hexdigest()[:12]}_{found.path.name}"
        if not target.exists():
            partial = folder / f".{target.name}.partial"
            shutil.copy2(found.path, partial)
            os.replace(partial, target)
        if result.rejected_reason:
            reason = folder / f"{target.name}.reason.txt"
            lines = reason.read_text(encoding="utf-8").splitlines() if reason.exists() else []
            line = f"{found.name}: {result.rejected_reason}"
            if line not in lines:
                reason.write_text("\n".join([*lines, line]) + "\n", encoding="utf-8")


def shanghai_now() -> dt.datetime:
    return dt.datetime.now(BUSINESS_TZ)
