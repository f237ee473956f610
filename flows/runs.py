"""Run records and the reads a run summary and a workbook need."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, func, select, text, update

from flows.db import (
    OPEN_ACTIONABLE_SQL,
    OPEN_EXCEPTIONS_SQL,
    DatabaseIdentity,
    ExceptionItem,
    ExceptionReview,
    FundsExpectation,
    Installment,
    LedgerEntry,
    Run,
    table_of,
)
from flows.store import connect, read_frame
from reconcile.money import fen_to_yuan_text

log = logging.getLogger("recon")


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


def fail_run(engine: Engine, run_id: str, error: str) -> None:
    """Mark a run that could not finish FAILED with its reason (if the database still answers:
    otherwise the next run of the date marks it ABANDONED). The pool's connections may have died
    with the failure (a database restart): once more on fresh ones before giving up."""
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                conn.execute(
                    update(Run)
                    .where(Run.run_id == run_id, Run.status == "RUNNING")
                    .values(status="FAILED", finished_at=dt.datetime.now(dt.UTC), summary={"error": error})
                )
            return
        except Exception as unreachable:  # the database itself may be what failed
            engine.dispose()
            if attempt == 2:
                said = str(unreachable).strip().splitlines()
                log.warning("run %s could not be marked FAILED: %s: %s", run_id, type(unreachable).__name__,
                            said[0] if said else "")  # fmt: skip


def latest_reconciled_date(conn: Connection) -> dt.date | None:
    """The latest business date with a finished run (this run is still RUNNING)."""
    latest = conn.execute(select(func.max(Run.business_date)).where(Run.status == "SUCCEEDED")).scalar()
    return latest if isinstance(latest, dt.date) else (dt.date.fromisoformat(latest) if latest else None)


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


def suspense(engine: Engine, day: dt.date, fen: dict[str, int]) -> dict[str, Any]:
    """The date's held money as its ledger has it now, against its records: what the records held
    less what reversals released is what is still held, plus what reviewers refunded and applied by
    hand (``reconcile/adjustments.py``), to the fen."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(LedgerEntry.kind, func.sum(LedgerEntry.held_fen))
            .where(LedgerEntry.business_date == day)
            .group_by(LedgerEntry.kind)
        ).all()
    held = {kind: int(total or 0) for kind, total in rows}
    refunded = -held.get("release", 0)
    applied = -held.get("manual", 0)
    still = sum(held.values())
    net = fen["held"] - fen["released"]
    return {"held_net": net, "refunded_by_hand": refunded, "applied_by_hand": applied, "still_held": still,
            "agrees": net == still + refunded + applied}  # fmt: skip


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
    "facts": pl.String,
    "resolution_note": pl.String,
}


#: What the funds sheet shows of an expected settlement (``funds_expectations``).
SETTLEMENT_SCHEMA: dict[str, Any] = {
    "business_date": pl.Date, "channel": pl.String, "merchant_id": pl.String, "gross_fen": pl.Int64,
    "refunds_fen": pl.Int64, "fee_expected_fen": pl.Int64, "fee_reported_fen": pl.Int64, "net_fen": pl.Int64,
    "window_from": pl.Date, "window_to": pl.Date, "outcome": pl.String, "paid_on": pl.Date,
    "allocated_fen": pl.Int64, "remaining_fen": pl.Int64, "age_days": pl.Int64, "gross_stated_fen": pl.Int64,
    "net_stated_fen": pl.Int64, "payout_stated_fen": pl.Int64,
}  # fmt: skip
#: How many days of settled expectations the funds sheet lists (the unsettled ones it lists all).
SETTLED_SHOWN_DAYS = 14


def settlements_for_workbook(engine: Engine, day: dt.date) -> pl.DataFrame:
    """The expected settlements a person looks at on the date's funds sheet: every one not yet
    settled in time (in transit, missing, short …), and the settled ones of the last two weeks."""
    table = table_of(FundsExpectation)
    recent = table.c.business_date.between(day - dt.timedelta(days=SETTLED_SHOWN_DAYS - 1), day)
    with engine.connect() as conn:
        return read_frame(
            conn,
            select(*[table.c[c] for c in SETTLEMENT_SCHEMA]).where(
                (table.c.business_date <= day) & (recent | (table.c.outcome != "SETTLED"))
            ),
            SETTLEMENT_SCHEMA,
        )


def exceptions_for_workbook(engine: Engine, day: dt.date) -> pl.DataFrame:
    """The date's open exceptions plus every older one still open that a person must act on
    (MEDIUM, HIGH), with its age in days and, for one that reopened after a reviewer resolved it,
    the earlier resolution (``earlier_resolution``). Older LOW ones (failed debits to retry, partial
    and late payments) stay out: they are informational, listed in full in their own date's detail
    file, and would make every workbook grow with the history."""
    with engine.connect() as conn:
        frame = read_frame(conn, workbook_exceptions(day), WORKBOOK_SCHEMA)
        reviews = read_frame(
            conn,
            select(ExceptionReview.id, ExceptionReview.exception_key, ExceptionReview.resolution_code),
            {"id": pl.Int64, "exception_key": pl.String, "resolution_code": pl.String},
        )
    latest = reviews.sort("id").group_by("exception_key").agg(pl.col("resolution_code").last().alias("_reviewed"))
    reopened = pl.col("resolution_note").str.starts_with("reopened by").fill_null(False)
    return (
        frame.join(latest, on="exception_key", how="left")
        .with_columns(
            age_days=(pl.lit(day) - pl.col("business_date")).dt.total_days(),
            earlier_resolution=pl.when(reopened).then(pl.col("_reviewed")),
        )
        .drop("_reviewed")
        .sort("outcome", "business_date", "exception_key")
    )


def workbook_exceptions(day: dt.date) -> Any:
    """The select of :func:`exceptions_for_workbook`. A resolved exception leaves the workbook; one
    that reopens comes back. Said in the literals of the partial indexes (migration 0007), so the
    older ones are found among those still open, not in every older date."""
    table = table_of(ExceptionItem)
    todays_open = (table.c.business_date == day) & text(OPEN_EXCEPTIONS_SQL)
    older_open = (table.c.business_date < day) & text(f"({OPEN_ACTIONABLE_SQL})")
    return select(*[table.c[c] for c in WORKBOOK_SCHEMA]).where(todays_open | older_open)


def latest_summary(engine: Engine, day: dt.date) -> dict[str, Any] | None:
    """The summary of the date's last successful run (what its books are now), or None."""
    with engine.connect() as conn:
        found = conn.execute(
            select(Run.summary)
            .where(Run.business_date == day, Run.status == "SUCCEEDED")
            .order_by(Run.finished_at.desc())
            .limit(1)
        ).scalar()
    return dict(found) if found else None


def database_id(engine: Engine) -> str:
    """This database's id (written into each workbook)."""
    with engine.connect() as conn:
        return str(conn.execute(select(DatabaseIdentity.database_id)).scalar_one())


def open_exceptions_by_age(engine: Engine, day: dt.date) -> list[dict[str, Any]]:
    """Open exceptions as of ``day`` by type and age in days (the workbook's buckets): one row per
    outcome with a count per bucket and the fen involved; numbers only, nothing personal."""
    from flows.workbook import AGE_BUCKETS

    table = table_of(ExceptionItem)
    with engine.connect() as conn:
        counts = read_frame(
            conn,
            select(table.c.outcome, table.c.business_date, func.count().label("n"),
                   func.coalesce(func.sum(table.c.amount_fen), 0).label("fen"))
            .where(table.c.status == "OPEN", table.c.business_date <= day)
            .group_by(table.c.outcome, table.c.business_date),
            {"outcome": pl.String, "business_date": pl.Date, "n": pl.Int64, "fen": pl.Int64},
        )  # fmt: skip
    age = (pl.lit(day) - pl.col("business_date")).dt.total_days()
    rows = []
    for outcome, group in counts.sort("outcome").group_by("outcome", maintain_order=True):
        row: dict[str, Any] = {"outcome": outcome[0]}
        for low, high, name in AGE_BUCKETS:
            inside = (age >= low) & ((age <= high) if high is not None else pl.lit(True))
            row[f"{name} days"] = int(group.filter(inside)["n"].sum())
        row["total"] = int(group["n"].sum())
        row["amount_yuan"] = fen_to_yuan_text(int(group["fen"].sum()))  # text: money never goes through a float
        rows.append(row)
    return rows
