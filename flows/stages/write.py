"""Write: the date's facts and the state they change, in one transaction.

Facts are replaced for the date (channel records, ledger) and appended in bulk; state is derived
by ``reconcile/books.py`` and ``reconcile/lifecycle.py`` from rows read in bulk, and only the rows
whose state changed are written back. The date is either as before or as after.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, and_, delete, func, select, text

from flows.db import (
    OPEN_EXCEPTIONS_SQL,
    OPEN_STATUSES_SQL,
    ChannelRecord,
    ChannelSettlement,
    ExceptionItem,
    ExceptionReview,
    Installment,
    LedgerEntry,
    Loan,
    SourceFile,
    StatementLine,
    table_of,
)
from flows.faults import checkpoint
from flows.locks import STATE_LOCK, hold_until_commit
from flows.runs import latest_reconciled_date
from flows.store import insert_frame, read_frame, same_keys, stage_frame, update_from_frame
from reconcile.adjustments import MOVES_BOOKS, PAYING_KINDS, RUN_KINDS, TXN, voided
from reconcile.books import (
    INSTALLMENT_KEY,
    PAID_STATUSES,
    PARTS,
    STATE_COLUMNS,
    UTC_US,
    books_date,
    changed_state,
    crossed_grace,
    crossing_window,
    derive_installment_state,
    derive_loan_status,
)
from reconcile.funds.night import FUNDS_SUBJECTS
from reconcile.ingest import ParsedFile
from reconcile.lifecycle import (
    EXISTING_SCHEMA,
    SETTLED_BY_LATER_RECORDS,
    SETTLING_SCHEMA,
    ExceptionPlan,
    exception_rows,
    ledger_changes,
    plan_exceptions,
    settled_by_later_files,
    settling_records,
)
from reconcile.masking import mask_numbers_in_series
from reconcile.text import printable_text
from schemas.funds import STATEMENT_DTYPES

RECORD_COLUMNS = [
    "source_file", "line_no", "channel", "record_kind", "status", "channel_txn_id", "reference", "instruction_id",
    "contract_no", "installment_no", "amount_fen", "settled_at", "account_shown", "failure_reason", "failure_code",
    "failure_text", "match_pass", "outcome", "flags", "applied_fen", "held_fen",
]  # fmt: skip
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
INSTALLMENT_STATE_SCHEMA = {
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "overdue_after": pl.Date,
    **{f"{p}_due_fen": pl.Int64 for p in PARTS},
    **{f"opening_{p}_paid_fen": pl.Int64 for p in PARTS},
    "opening_paid_at": UTC_US,
    **{f"{p}_paid_fen": pl.Int64 for p in PARTS},
    "status": pl.String,
    "paid_at": UTC_US,
}
HELD_SCHEMA = {"contract_no": pl.String, "held_fen": pl.Int64}
LEDGER_PAID_SCHEMA = {
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    **{f"{p}_paid_fen": pl.Int64 for p in PARTS},
    "paid_at": UTC_US,
}


def write_day(
    engine: Engine,
    day: dt.date,
    run_id: str,
    outcomes: pl.DataFrame,
    ledger: pl.DataFrame,
    parsed: list[ParsedFile],
    now: dt.datetime,
) -> dict[str, Any]:
    """Replace the date's records and ledger (the run's entries; a reviewer's stay while the money
    they moved is still held), derive installment and loan state, keep exceptions."""
    run_made = and_(LedgerEntry.business_date == day, LedgerEntry.kind.in_(RUN_KINDS))
    with engine.begin() as conn:
        before_ledger = read_frame(
            conn, select(*[table_of(LedgerEntry).c[c] for c in LEDGER_DIFF_SCHEMA]).where(run_made), LEDGER_DIFF_SCHEMA
        )
        conn.execute(delete(ChannelRecord).where(ChannelRecord.business_date == day))
        conn.execute(delete(LedgerEntry).where(run_made))
        checkpoint("after_delete")
        insert_frame(conn, table_of(ChannelRecord), channel_record_rows(outcomes, parsed, day))
        checkpoint("after_records")
        insert_frame(conn, table_of(LedgerEntry), ledger.with_columns(business_date=pl.lit(day), run_id=pl.lit(run_id)))
        checkpoint("after_ledger")
        undone = void_reviewers_entries(conn, ledger, day, run_id, now)
        register_files(conn, parsed, day, run_id, now)
        write_statement_lines(conn, parsed, day)
        touched = (
            pl.concat([before_ledger.select(INSTALLMENT_KEY), ledger.select(INSTALLMENT_KEY), undone])
            .drop_nulls()
            .unique()
        )
        write_installment_state(conn, touched, day)
        checkpoint("after_installments")
        write_loan_status(conn, touched.select("contract_no").unique())
        exception_changes = write_exceptions(conn, outcomes, day, run_id, now)
        checkpoint("before_commit")
    return {
        "exceptions": exception_changes,
        "ledger": ledger_changes(before_ledger, ledger.select(list(LEDGER_DIFF_SCHEMA))),
    }


REVIEWED_SCHEMA = {
    "channel": pl.String,
    "channel_txn_id": pl.String,
    "kind": pl.String,
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "held_fen": pl.Int64,
}


def void_reviewers_entries(
    conn: Connection, ledger: pl.DataFrame, day: dt.date, run_id: str, now: dt.datetime
) -> pl.DataFrame:
    """A reviewer's entries on the date (a refund or an application by hand) whose money the run no
    longer holds there are removed, their audit rows marked voided by this run, and their resolved
    exceptions reopened; returns the installments they had touched."""
    table = table_of(LedgerEntry)
    reviewed = read_frame(
        conn,
        select(*[table.c[c] for c in REVIEWED_SCHEMA]).where(
            table.c.business_date == day, table.c.kind.not_in(RUN_KINDS)
        ),
        REVIEWED_SCHEMA,
    )
    if reviewed.height == 0:
        return pl.DataFrame(schema={k: REVIEWED_SCHEMA[k] for k in INSTALLMENT_KEY})
    ours = ledger.join(reviewed.select(TXN).unique(), on=TXN, how="semi").select(list(REVIEWED_SCHEMA))
    gone = voided(pl.concat([ours, reviewed]))
    if gone.height == 0:
        return pl.DataFrame(schema={k: REVIEWED_SCHEMA[k] for k in INSTALLMENT_KEY})
    staged = stage_frame(conn, "stage_voided", gone.select(TXN), table)
    items = table_of(ExceptionItem)
    keys = read_frame(
        conn,
        select(items.c.exception_key)
        .join(staged, and_(staged.c.channel == items.c.channel, staged.c.channel_txn_id == items.c.channel_txn_id))
        .where(items.c.business_date == day),
        {"exception_key": pl.String},
    )
    staged.drop(conn)
    note = (
        f"reopened by run {run_id}: the money its resolution moved is no longer held on {day}; the entries were undone"
    )
    reopened = keys.with_columns(
        status=pl.lit("OPEN"), resolution_code=pl.lit(None, pl.String), resolution_note=pl.lit(note)
    )
    moving = ", ".join(repr(c) for c in MOVES_BOOKS)
    update_from_frame(
        conn, items, reopened, ["exception_key"], f"status = 'RESOLVED' AND exceptions.resolution_code IN ({moving})"
    )
    return undo_reviewers_entries(
        conn, gone.with_columns(business_date=pl.lit(day)), keys["exception_key"].to_list(), now, run_id
    )


def undo_reviewers_entries(
    conn: Connection, txns: pl.DataFrame, keys: list[str], now: dt.datetime, undone_by: str
) -> pl.DataFrame:
    """Remove a reviewer's ledger entries of these transactions (``business_date``, ``channel``,
    ``channel_txn_id``) and mark the audit rows of the resolutions that made them (exceptions
    ``keys``) voided by ``undone_by`` (a run, or a review changing them); returns the installments
    the entries had touched."""
    table = table_of(LedgerEntry)
    staged = stage_frame(conn, "stage_undone", txns.select("business_date", *TXN).unique(), table)
    mine = and_(
        staged.c.business_date == table.c.business_date,
        staged.c.channel == table.c.channel,
        staged.c.channel_txn_id == table.c.channel_txn_id,
    )
    touched = read_frame(
        conn,
        select(table.c.contract_no, table.c.installment_no).join(staged, mine).where(table.c.kind.not_in(RUN_KINDS)),
        {k: REVIEWED_SCHEMA[k] for k in INSTALLMENT_KEY},
    )
    conn.execute(delete(table).where(table.c.kind.not_in(RUN_KINDS), select(staged.c.channel).where(mine).exists()))
    staged.drop(conn)
    reviews = table_of(ExceptionReview)
    conn.execute(
        reviews.update()
        .where(reviews.c.exception_key.in_(keys), reviews.c.moved_fen.is_not(None), reviews.c.voided_at.is_(None))
        .values(voided_at=now, voided_by_run=undone_by)
    )
    return touched


def channel_record_rows(outcomes: pl.DataFrame, parsed: list[ParsedFile], day: dt.date) -> pl.DataFrame:
    """Every line read on the date, with the outcome it got and the file (by SHA-256) it came from."""
    shas = {p.source_file: p.sha256 for p in parsed}
    rows = outcomes.filter(pl.col("subject") == "record").select(
        pl.lit(day).alias("business_date"),
        pl.col("subject_key").alias("record_key"),
        *RECORD_COLUMNS,
        printable_text(pl.col("raw_line").fill_null("")).alias("raw_line"),
        pl.col("source_file").replace_strict(shas, default="").alias("file_sha256"),
    )
    # account numbers masked as a card-data standard asks; the archived file keeps the bytes
    return rows.with_columns(mask_numbers_in_series(rows["raw_line"]))


def register_files(conn: Connection, parsed: list[ParsedFile], day: dt.date, run_id: str, now: dt.datetime) -> None:
    """One ``source_files`` row per SHA-256, the first copy's; bytes registered before stay as they were."""
    known = set(
        conn.execute(select(SourceFile.sha256).where(SourceFile.sha256.in_([p.sha256 for p in parsed]))).scalars()
    )
    fresh = []
    for p in parsed:
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


def statement_line_rows(parsed: list[ParsedFile], day: dt.date) -> pl.DataFrame:
    """The statement lines the date's accepted statements hold, once per bank line."""
    frames = [p.statement_lines for p in parsed if p.statement_lines is not None and p.status == "ACCEPTED"]
    if not frames:
        return pl.DataFrame(schema={"business_date": pl.Date, **STATEMENT_DTYPES})
    lines = pl.concat(frames).unique("line_key", keep="first", maintain_order=True)
    return lines.select(pl.lit(day).alias("business_date"), *STATEMENT_DTYPES)


def write_statement_lines(conn: Connection, parsed: list[ParsedFile], day: dt.date) -> int:
    """Replace the date's statement lines and the channels' own fee and payout lines (in the date's
    write transaction: they are its facts)."""
    conn.execute(delete(StatementLine).where(StatementLine.business_date == day))
    conn.execute(delete(ChannelSettlement).where(ChannelSettlement.business_date == day))
    said = [
        p.settlement_lines.with_columns(business_date=pl.lit(day), file_sha256=pl.lit(p.sha256),
                                        channel=pl.lit(p.channel), source_file=pl.lit(p.source_file))
        for p in parsed if p.settlement_lines is not None and p.status == "ACCEPTED" and p.settlement_lines.height
    ]  # fmt: skip
    if said:
        insert_frame(conn, table_of(ChannelSettlement), pl.concat(said))
    return insert_frame(conn, table_of(StatementLine), statement_line_rows(parsed, day))


def write_installment_state(conn: Connection, touched: pl.DataFrame, day: dt.date) -> int:
    """Derive the state of every installment the date's ledger touches (before or after this run),
    write the ones that changed, then turn ``OVERDUE`` the open ones whose grace ended since the
    latest night already reconciled.

    State is derived from every date's ledger entries on an installment: two transactions deriving
    at once would each miss the other's uncommitted entries, and the later write would undo the
    earlier payment. So it is derived under :data:`STATE_LOCK` until the commit: the second waits,
    then reads the first's entries (the facts written before it go side by side)."""
    hold_until_commit(conn, STATE_LOCK)
    latest = latest_reconciled_date(conn)
    written = 0
    if touched.height:
        installments, ledger = table_of(Installment), table_of(LedgerEntry)
        staged = stage_frame(conn, "stage_touched", touched, installments)
        current = read_frame(
            conn,
            select(*[installments.c[c] for c in INSTALLMENT_STATE_SCHEMA]).join(
                staged, same_keys(staged, installments, INSTALLMENT_KEY)
            ),
            INSTALLMENT_STATE_SCHEMA,
            by_index=True,
        )
        paid = read_frame(
            conn,
            select(
                ledger.c.contract_no,
                ledger.c.installment_no,
                *[func.sum(ledger.c[f"{p}_fen"]).label(f"{p}_paid_fen") for p in PARTS],
                func.max(ledger.c.settled_at).filter(ledger.c.kind.in_(PAYING_KINDS)).label("paid_at"),
            )
            .join(staged, same_keys(staged, ledger, INSTALLMENT_KEY))
            .group_by(ledger.c.contract_no, ledger.c.installment_no),
            LEDGER_PAID_SCHEMA,
        )
        staged.drop(conn)
        derived = derive_installment_state(current.drop(STATE_COLUMNS), paid, books_date(day, latest))
        changed = changed_state(current.select(*INSTALLMENT_KEY, *STATE_COLUMNS), derived)
        written += update_from_frame(conn, table_of(Installment), changed, INSTALLMENT_KEY)
    window = crossing_window(day, latest)
    return written + (write_crossed_grace(conn, day, window[0]) if window else 0)


def write_crossed_grace(conn: Connection, day: dt.date, since: dt.date | None) -> int:
    """Open installments whose last day of grace is in ``[since, day)`` (every one before ``day``
    when ``since`` is None) turn ``OVERDUE``; found by the ``overdue_after`` index."""
    table = table_of(Installment)
    window = table.c.overdue_after < day
    if since is not None:
        window = and_(table.c.overdue_after >= since, window)
    open_late = read_frame(
        conn,
        select(table.c.contract_no, table.c.installment_no, table.c.status, table.c.overdue_after).where(
            window, text(OPEN_STATUSES_SQL)
        ),
        {"contract_no": pl.String, "installment_no": pl.Int64, "status": pl.String, "overdue_after": pl.Date},
    )
    # still open when written: a run of another date may have paid it since it was read
    return update_from_frame(conn, table, crossed_grace(open_late, day), INSTALLMENT_KEY, OPEN_STATUSES_SQL)


def write_loan_status(conn: Connection, contracts: pl.DataFrame) -> int:
    """The status of each loan whose installments the date touched, written where it changed."""
    if contracts.height == 0:
        return 0
    installments, ledger, loans = table_of(Installment), table_of(LedgerEntry), table_of(Loan)
    staged = stage_frame(conn, "stage_loans", contracts, loans)
    open_count = func.count().filter(installments.c.status.not_in(PAID_STATUSES))
    open_counts = read_frame(
        conn,
        select(installments.c.contract_no, open_count.label("open_installments"))
        .join(staged, staged.c.contract_no == installments.c.contract_no)
        .group_by(installments.c.contract_no),
        {"contract_no": pl.String, "open_installments": pl.Int64},
    )
    was = read_frame(
        conn,
        select(loans.c.contract_no, loans.c.status).join(staged, staged.c.contract_no == loans.c.contract_no),
        {"contract_no": pl.String, "status": pl.String},
    )
    staged.drop(conn)
    # money held tells OVERPAID from SETTLED only: summed for the loans with nothing left open
    held = pl.DataFrame(schema=HELD_SCHEMA)
    settled = open_counts.filter(pl.col("open_installments") == 0).select("contract_no")
    if settled.height:
        staged = stage_frame(conn, "stage_settled_loans", settled, loans)
        held = read_frame(
            conn,
            select(ledger.c.contract_no, func.sum(ledger.c.held_fen).label("held_fen"))
            .join(staged, staged.c.contract_no == ledger.c.contract_no)
            .group_by(ledger.c.contract_no),
            HELD_SCHEMA,
        )
        staged.drop(conn)
    derived = derive_loan_status(open_counts, held)
    changed = derived.join(was, on="contract_no", how="left", suffix="_was").filter(
        pl.col("status").ne_missing(pl.col("status_was"))
    )
    return update_from_frame(conn, loans, changed.select("contract_no", "status"), ["contract_no"])


def apply_exception_plan(conn: Connection, plan: ExceptionPlan) -> None:
    """The lifecycle's plan written in bulk: new exceptions inserted, the others updated by key."""
    table = table_of(ExceptionItem)
    insert_frame(conn, table, plan.insert)
    for updates in (plan.reopened, plan.seen_again, plan.resolve):
        update_from_frame(conn, table, updates, ["exception_key"])


def write_exceptions(
    conn: Connection, outcomes: pl.DataFrame, day: dt.date, run_id: str, now: dt.datetime
) -> dict[str, int]:
    """Apply the exception lifecycle's plan for the date, then resolve older exceptions this date's
    records settle."""
    table = table_of(ExceptionItem)
    existing = read_frame(
        conn,
        # the funds exceptions of the date have their own lifecycle (flows/stages/funds.py)
        select(*[table.c[c] for c in EXISTING_SCHEMA]).where(
            table.c.business_date == day, table.c.subject.not_in(FUNDS_SUBJECTS)
        ),
        EXISTING_SCHEMA,
    )
    plan = plan_exceptions(exception_rows(outcomes, day), existing, day, run_id, now)
    apply_exception_plan(conn, plan)
    settling = settling_records(outcomes)
    settled = 0
    if settling.height:
        # the date's debits (a million) are the candidates: matched to the few older open ones here,
        # not staged and joined in the database
        open_items = read_frame(conn, older_settleable(day), {"exception_key": pl.String, **SETTLING_SCHEMA})
        settled = update_from_frame(
            conn, table, settled_by_later_files(open_items, settling, day, run_id), ["exception_key"]
        )
    return {**plan.counts, "settled_by_files": settled}


def older_settleable(day: dt.date) -> Any:
    """The older open exceptions a date's records may settle, found by the partial index of open
    exceptions by outcome (migration 0007): what stays open, not the history, is read."""
    table = table_of(ExceptionItem)
    return select(table.c.exception_key, *[table.c[c] for c in SETTLING_SCHEMA]).where(
        table.c.outcome.in_(SETTLED_BY_LATER_RECORDS), text(OPEN_EXCEPTIONS_SQL), table.c.business_date < day
    )
