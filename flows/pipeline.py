"""The stages of one business date's run, as plain functions the Prefect flow wires together.

``discover`` → ``parse`` → ``load_state`` → (pure) ``match_day`` → ``write_day`` (one transaction)
→ ``file_away`` and the workbook after the commit. Business rules live in ``reconcile/``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, and_, bindparam, delete, func, select, update

from flows.db import (
    ChannelRecord,
    DebitInstruction,
    ExceptionItem,
    Installment,
    LedgerEntry,
    Loan,
    SourceFile,
    table_of,
)
from flows.store import insert_frame, read_frame
from reconcile.codes import Outcome
from reconcile.explain import explain
from reconcile.ingest import ParsedFile, empty_invalid, empty_records, parse_channel_file
from reconcile.matching import OUTCOME_COLUMNS, PARTS, MatchInput, MatchResult
from reconcile.settings import BUSINESS_TZ, Settings, business_date_bounds_utc

UTC_US = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class DiscoveredFile:
    """A file found in the inbox for a business date; ``channel`` None when no channel claims it."""

    name: str
    path: Path
    sha256: str
    size: int
    channel: str | None


def discover(inbox_day: Path, settings: Settings) -> list[DiscoveredFile]:
    """Files in the date's inbox folder, hashed, claimed by the channel whose pattern fits."""
    if not inbox_day.is_dir():
        return []
    found = []
    for path in sorted(p for p in inbox_day.iterdir() if p.is_file() and not p.name.startswith(".")):
        data = path.read_bytes()
        channel = next(
            (c.channel_id for c in settings.channels.values() if fnmatch.fnmatch(path.name, c.file_pattern)), None
        )
        found.append(DiscoveredFile(path.name, path, hashlib.sha256(data).hexdigest(), len(data), channel))
    return found


def parse(files: list[DiscoveredFile], settings: Settings, day: dt.date) -> list[ParsedFile]:
    parsed = []
    for found in files:
        if found.channel is None:
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
                    rejected_reason="no configured channel claims this file name",
                )
            )
            continue
        channel = settings.channels[found.channel]
        parsed.append(
            parse_channel_file(
                found.name, found.path.read_bytes(), found.sha256, channel, settings.layouts[channel.layout], day
            )
        )
    return parsed


INSTALLMENT_STATE_SCHEMA = {
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "due_date": pl.Date,
    "grace_days": pl.Int64,
    **{f"{p}_due_fen": pl.Int64 for p in PARTS},
}
INSTRUCTION_SCHEMA = {
    "instruction_id": pl.String,
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "channel": pl.String,
    "account": pl.String,
    "amount_fen": pl.Int64,
    "requested_at": UTC_US,
    "platform_status": pl.String,
    "platform_code": pl.String,
}


def load_state(engine: Engine, day: dt.date, parsed: list[ParsedFile], settings: Settings) -> MatchInput:
    """Instructions, installments (as settled before ``day``), loans and earlier payments."""
    records = pl.concat([p.records for p in parsed if p.rejected_reason is None] or [empty_records()])
    start, end = business_date_bounds_utc(day)
    window_start = start - dt.timedelta(days=settings.instruction_lookback_days)
    with engine.connect() as conn:
        instructions = read_frame(
            conn,
            select(*[table_of(DebitInstruction).c[c] for c in INSTRUCTION_SCHEMA]).where(
                DebitInstruction.requested_at >= window_start, DebitInstruction.requested_at < end
            ),
            INSTRUCTION_SCHEMA,
        )
        memo_contracts = records.select(pl.col("memo").str.extract(r"([A-Za-z0-9_-]+)", 1)).to_series().drop_nulls()
        contracts = sorted(set(instructions["contract_no"].to_list()) | set(memo_contracts.to_list()))
        loans = _select_in(
            conn,
            Loan,
            "contract_no",
            contracts,
            {"contract_no": pl.String, "bound_channel": pl.String, "bound_account": pl.String, "grace_days": pl.Int64},
        )
        installments = _select_in(
            conn,
            Installment,
            "contract_no",
            contracts,
            {k: v for k, v in INSTALLMENT_STATE_SCHEMA.items() if k != "grace_days"},
        ).join(loans.select("contract_no", "grace_days"), on="contract_no", how="left")
        paid = (
            _select_in(
                conn,
                LedgerEntry,
                "contract_no",
                contracts,
                {
                    "contract_no": pl.String,
                    "installment_no": pl.Int64,
                    "business_date": pl.Date,
                    **{f"{p}_fen": pl.Int64 for p in PARTS},
                },
            )
            .filter(pl.col("business_date") < day)
            .group_by("contract_no", "installment_no")
            .agg([pl.col(f"{p}_fen").sum().alias(f"{p}_paid_fen") for p in PARTS])
        )
        refund_refs = records.filter(pl.col("record_kind") == "refund")["reference"].drop_nulls().unique().to_list()
        prior = _select_in(
            conn,
            LedgerEntry,
            "reference",
            refund_refs,
            {
                "channel": pl.String,
                "channel_txn_id": pl.String,
                "kind": pl.String,
                "reference": pl.String,
                "contract_no": pl.String,
                "installment_no": pl.Int64,
                "business_date": pl.Date,
                **{f"{p}_fen": pl.Int64 for p in PARTS},
                "held_fen": pl.Int64,
            },
        ).filter((pl.col("kind") == "payment") & (pl.col("business_date") < day))
    installments = installments.join(paid, on=["contract_no", "installment_no"], how="left").with_columns(
        [pl.col(f"{p}_paid_fen").fill_null(0) for p in PARTS]
    )
    invalid_refs = pl.concat([p.invalid for p in parsed] or [empty_invalid()])["reference"].drop_nulls()
    return MatchInput(
        business_date=day,
        records=records,
        instructions=instructions,
        installments=installments,
        loans=loans,
        prior_payments=prior,
        answering_channels=frozenset(p.channel for p in parsed if p.rejected_reason is None),
        invalid_references=frozenset(invalid_refs.to_list()),
    )


def _select_in(conn: Any, model: Any, column: str, values: list[str], schema: dict[str, Any]) -> pl.DataFrame:
    """Rows of ``model`` whose ``column`` is one of ``values``, fetched in chunks."""
    table = model.__table__
    frames = [pl.DataFrame(schema=schema)]
    for start in range(0, len(values), 5000):
        chunk = values[start : start + 5000]
        statement = select(*[table.c[c] for c in schema]).where(table.c[column].in_(chunk))
        frames.append(read_frame(conn, statement, schema))
    return pl.concat(frames)


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
        pl.format("{}|line|{}|{}", pl.col("channel"), pl.col("source_file"), pl.col("line_no")).alias("subject_key"),
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
        before = read_frame(
            conn,
            select(LedgerEntry.contract_no, LedgerEntry.installment_no).where(LedgerEntry.business_date == day),
            {"contract_no": pl.String, "installment_no": pl.Int64},
        )
        conn.execute(delete(ChannelRecord).where(ChannelRecord.business_date == day))
        conn.execute(delete(LedgerEntry).where(LedgerEntry.business_date == day))
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
        insert_frame(
            conn,
            table_of(LedgerEntry),
            ledger.with_columns(business_date=pl.lit(day), run_id=pl.lit(run_id)),
        )
        _register_files(conn, parsed, day, run_id, now)
        touched = pl.concat([before, ledger.select("contract_no", "installment_no")]).drop_nulls().unique()
        _derive_installments(conn, touched, day)
        _derive_loans(conn, touched.select("contract_no").unique())
        exception_changes = _keep_exceptions(conn, outcomes, day, run_id, now)
    return exception_changes


def _register_files(conn: Any, parsed: list[ParsedFile], day: dt.date, run_id: str, now: dt.datetime) -> None:
    known = set(
        conn.execute(select(SourceFile.sha256).where(SourceFile.sha256.in_([p.sha256 for p in parsed]))).scalars()
    )
    fresh = [
        {
            "sha256": p.sha256,
            "business_date": day,
            "name": p.source_file,
            "channel": p.channel,
            "layout": p.layout,
            "rows": p.rows,
            "status": "REJECTED" if p.rejected_reason else "ACCEPTED",
            "reason": p.rejected_reason,
            "first_run_id": run_id,
            "registered_at": now,
        }
        for p in parsed
        if p.sha256 not in known
    ]
    if fresh:
        conn.execute(table_of(SourceFile).insert(), fresh)


def _derive_installments(conn: Any, touched: pl.DataFrame, day: dt.date) -> None:
    """Installment state is derived from the ledger, in one deterministic way, for every touched one."""
    if touched.height == 0:
        _mark_overdue(conn, day)
        return
    contracts = touched["contract_no"].unique().sort().to_list()
    dues = _select_in(
        conn,
        Installment,
        "contract_no",
        contracts,
        {
            "contract_no": pl.String,
            "installment_no": pl.Int64,
            "overdue_after": pl.Date,
            **{f"{p}_due_fen": pl.Int64 for p in PARTS},
        },
    )
    ledger = _select_in(
        conn,
        LedgerEntry,
        "contract_no",
        contracts,
        {
            "contract_no": pl.String,
            "installment_no": pl.Int64,
            "settled_at": UTC_US,
            "kind": pl.String,
            **{f"{p}_fen": pl.Int64 for p in PARTS},
        },
    )
    paid = ledger.group_by("contract_no", "installment_no").agg(
        *[pl.col(f"{p}_fen").sum().alias(f"{p}_paid_fen") for p in PARTS],
        pl.col("settled_at").filter(pl.col("kind") == "payment").max().alias("paid_at"),
    )
    state = (
        touched.join(dues, on=["contract_no", "installment_no"])
        .join(paid, on=["contract_no", "installment_no"], how="left")
        .with_columns([pl.col(f"{p}_paid_fen").fill_null(0) for p in PARTS])
    )
    state = state.with_columns(status=installment_status_expr(day))
    rows = state.select(
        pl.col("contract_no").alias("b_contract"),
        pl.col("installment_no").alias("b_no"),
        *[pl.col(f"{p}_paid_fen") for p in PARTS],
        pl.col("status"),
        pl.when(pl.col("status").is_in(["PAID", "PAID_LATE"])).then(pl.col("paid_at")).otherwise(None).alias("paid_at"),
    ).to_dicts()
    table = table_of(Installment)
    statement = (
        update(table)
        .where(and_(table.c.contract_no == bindparam("b_contract"), table.c.installment_no == bindparam("b_no")))
        .values({name: bindparam(name) for name in [*[f"{p}_paid_fen" for p in PARTS], "status", "paid_at"]})
    )
    for start in range(0, len(rows), 20_000):
        conn.execute(statement, rows[start : start + 20_000])
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
    statuses = _select_in(conn, Installment, "contract_no", values, {"contract_no": pl.String, "status": pl.String})
    held = _select_in(conn, LedgerEntry, "contract_no", values, {"contract_no": pl.String, "held_fen": pl.Int64})
    held_by_loan = held.group_by("contract_no").agg(pl.col("held_fen").sum())
    loans = (
        statuses.group_by("contract_no")
        .agg(pl.col("status").is_in(["PAID", "PAID_LATE"]).all().alias("settled"))
        .join(held_by_loan, on="contract_no", how="left")
        .with_columns(
            status=pl.when(pl.col("settled") & (pl.col("held_fen").fill_null(0) > 0))
            .then(pl.lit("OVERPAID"))
            .when(pl.col("settled"))
            .then(pl.lit("SETTLED"))
            .otherwise(pl.lit("ACTIVE"))
        )
    )
    table = table_of(Loan)
    statement = update(table).where(table.c.contract_no == bindparam("b_contract")).values(status=bindparam("status"))
    rows = loans.select(pl.col("contract_no").alias("b_contract"), "status").to_dicts()
    for start in range(0, len(rows), 20_000):
        conn.execute(statement, rows[start : start + 20_000])


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
    "explanation_zh",
    "explanation_en",
    "suggested_action",
    "source_file",
    "line_no",
]


def _keep_exceptions(conn: Any, outcomes: pl.DataFrame, day: dt.date, run_id: str, now: dt.datetime) -> dict[str, int]:
    """Upsert the date's exceptions by stable key; those no longer found resolve themselves."""
    found = (
        outcomes.filter(pl.col("is_exception"))
        .with_columns(
            exception_key=pl.format("{}|{}", pl.col("outcome"), pl.col("subject_key")),
            business_date=pl.lit(day),
            instruction_id=pl.coalesce(pl.col("instruction_id"), pl.col("reference")),
        )
        .select(EXCEPTION_COLUMNS)
    )
    existing = read_frame(
        conn,
        select(ExceptionItem.exception_key, ExceptionItem.status).where(ExceptionItem.business_date == day),
        {"exception_key": pl.String, "status": pl.String},
    )
    new = found.join(existing, on="exception_key", how="anti")
    again = found.join(existing, on="exception_key", how="semi")
    gone = existing.join(found, on="exception_key", how="anti").filter(pl.col("status") == "OPEN")
    insert_frame(
        conn,
        table_of(ExceptionItem),
        new.with_columns(
            status=pl.lit("OPEN"),
            occurrences=pl.lit(1),
            first_seen_run=pl.lit(run_id),
            last_seen_run=pl.lit(run_id),
            first_seen_at=pl.lit(now).cast(UTC_US),
            last_seen_at=pl.lit(now).cast(UTC_US),
        ),
    )
    table = table_of(ExceptionItem)
    if again.height:
        statement = (
            update(table)
            .where(table.c.exception_key == bindparam("b_key"))
            .values(
                occurrences=table.c.occurrences + 1,
                last_seen_run=run_id,
                last_seen_at=now,
                explanation_zh=bindparam("explanation_zh"),
                explanation_en=bindparam("explanation_en"),
            )
        )
        rows = again.select(pl.col("exception_key").alias("b_key"), "explanation_zh", "explanation_en").to_dicts()
        for start in range(0, len(rows), 20_000):
            conn.execute(statement, rows[start : start + 20_000])
    if gone.height:
        conn.execute(
            update(table)
            .where(table.c.exception_key.in_(gone["exception_key"].to_list()))
            .values(
                status="RESOLVED",
                resolution_code="AUTO",
                resolution_note=f"no longer found when run {run_id} reconciled the date again",
            )
        )
    return {"new": new.height, "seen_again": again.height, "auto_resolved": gone.height}


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
        target = folder / f"{found.sha256[:12]}_{found.name}"
        if not target.exists():
            shutil.copy2(found.path, target)
        if result.rejected_reason:
            (folder / f"{target.name}.reason.txt").write_text(result.rejected_reason + "\n", encoding="utf-8")


def shanghai_now() -> dt.datetime:
    return dt.datetime.now(BUSINESS_TZ)
