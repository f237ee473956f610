"""The database: SQLAlchemy models of every table, engines for SQLite and PostgreSQL.

Money is BIGINT fen. Times go through :class:`UTCDateTime`, which refuses naive datetimes and
hands back aware UTC ones on both databases (SQLite would silently drop an offset).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored as UTC; a naive one is a programming error."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: times must carry a time zone")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


Fen = BigInteger
#: Installments still open: the only ones a night may turn ``OVERDUE``.
OPEN_STATUSES_SQL = "status IN ('DUE', 'PARTIALLY_PAID')"
#: Open exceptions, and the open ones a person acts on, in the words of the partial indexes of
#: migration 0007: a query that says the same in literals shows every planner the index's own
#: condition, whatever it makes of a bound parameter.
OPEN_EXCEPTIONS_SQL = "status = 'OPEN'"
OPEN_ACTIONABLE_SQL = "status = 'OPEN' AND severity <> 'LOW'"


class Base(DeclarativeBase):
    pass


def table_of(model: type[Base]) -> Table:
    """The Core table behind a model (typed, for bulk statements)."""
    return cast(Table, model.__table__)


class Loan(Base):
    __tablename__ = "loans"
    contract_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    borrower_name: Mapped[str] = mapped_column(String(100))
    id_number: Mapped[str] = mapped_column(String(18))
    phone: Mapped[str] = mapped_column(String(20))
    principal_fen: Mapped[int] = mapped_column(Fen)
    annual_rate: Mapped[str] = mapped_column(String(12))
    term_months: Mapped[int] = mapped_column(Integer)
    repayment_method: Mapped[str] = mapped_column(String(24))
    start_date: Mapped[dt.date] = mapped_column(Date)
    grace_days: Mapped[int] = mapped_column(Integer)
    bound_channel: Mapped[str] = mapped_column(String(24))
    bound_account: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE", server_default="ACTIVE")


class Installment(Base):
    __tablename__ = "installments"
    contract_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    installment_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_date: Mapped[dt.date] = mapped_column(Date, index=True)
    overdue_after: Mapped[dt.date] = mapped_column(Date, index=True)
    principal_due_fen: Mapped[int] = mapped_column(Fen)
    interest_due_fen: Mapped[int] = mapped_column(Fen)
    fee_due_fen: Mapped[int] = mapped_column(Fen)
    penalty_due_fen: Mapped[int] = mapped_column(Fen)
    principal_paid_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    interest_paid_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    fee_paid_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    penalty_paid_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    # no index may name the state columns (paid amounts, status, paid_at): PostgreSQL then updates
    # them in place (HOT) in the room its fillfactor leaves (migration 0003)
    status: Mapped[str] = mapped_column(String(16), default="DUE", server_default="DUE")
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # what the servicing system's snapshot says was paid before reconciliation began (migration 0003)
    opening_principal_paid_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    opening_interest_paid_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    opening_fee_paid_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    opening_penalty_paid_fen: Mapped[int] = mapped_column(Fen, default=0, server_default="0")
    opening_paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DebitInstruction(Base):
    __tablename__ = "debit_instructions"
    instruction_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    contract_no: Mapped[str] = mapped_column(String(40), index=True)
    installment_no: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(24))
    account: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(Fen)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    platform_status: Mapped[str] = mapped_column(String(12))
    platform_code: Mapped[str | None] = mapped_column(String(32), nullable=True)


class SourceFile(Base):
    __tablename__ = "source_files"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    business_date: Mapped[dt.date] = mapped_column(Date, index=True)
    name: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str | None] = mapped_column(String(24), nullable=True)
    layout: Mapped[str | None] = mapped_column(String(48), nullable=True)
    rows: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_run_id: Mapped[str] = mapped_column(String(40))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ChannelRecord(Base):
    """Every line read on a business date, valid or not, with the outcome it got."""

    __tablename__ = "channel_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    business_date: Mapped[dt.date] = mapped_column(Date)
    record_key: Mapped[str] = mapped_column(String(160))
    file_sha256: Mapped[str] = mapped_column(String(64))
    source_file: Mapped[str] = mapped_column(String(255))
    line_no: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(24))
    record_kind: Mapped[str | None] = mapped_column(String(8), nullable=True)
    status: Mapped[str | None] = mapped_column(String(8), nullable=True)
    channel_txn_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    instruction_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    contract_no: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    installment_no: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount_fen: Mapped[int | None] = mapped_column(Fen, nullable=True)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    account_shown: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(String(24), nullable=True)
    failure_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    failure_text: Mapped[str | None] = mapped_column(String(200), nullable=True)
    match_pass: Mapped[str | None] = mapped_column(String(24), nullable=True)
    outcome: Mapped[str] = mapped_column(String(24))
    flags: Mapped[str] = mapped_column(String(200), default="")
    applied_fen: Mapped[int] = mapped_column(Fen, default=0)
    held_fen: Mapped[int] = mapped_column(Fen, default=0)
    raw_line: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_channel_records_date_key", "business_date", "record_key"),)


class LedgerEntry(Base):
    """The settlement ledger: one row per payment or reversal and installment it reaches (``seq``
    counts them: a repayment naming only its contract may pay several), whatever the number of runs."""

    __tablename__ = "settlement_ledger"
    channel: Mapped[str] = mapped_column(String(24), primary_key=True)
    channel_txn_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, server_default="1")
    business_date: Mapped[dt.date] = mapped_column(Date, index=True)
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    contract_no: Mapped[str | None] = mapped_column(String(40), nullable=True)
    installment_no: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount_fen: Mapped[int] = mapped_column(Fen)
    penalty_fen: Mapped[int] = mapped_column(Fen)
    fee_fen: Mapped[int] = mapped_column(Fen)
    interest_fen: Mapped[int] = mapped_column(Fen)
    principal_fen: Mapped[int] = mapped_column(Fen)
    held_fen: Mapped[int] = mapped_column(Fen)
    settled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(24))
    run_id: Mapped[str] = mapped_column(String(40))

    __table_args__ = (Index("ix_ledger_installment", "contract_no", "installment_no"),)


class ExceptionItem(Base):
    """Something a person must look at, with a stable key and a lifecycle."""

    __tablename__ = "exceptions"
    exception_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    business_date: Mapped[dt.date] = mapped_column(Date, index=True)
    # 32: the funds outcomes are longer (REVERSAL_AFTER_SETTLEMENT; migration 0006)
    outcome: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str | None] = mapped_column(String(24), nullable=True)
    contract_no: Mapped[str | None] = mapped_column(String(40), nullable=True)
    installment_no: Mapped[int | None] = mapped_column(Integer, nullable=True)
    instruction_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel_txn_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amount_fen: Mapped[int | None] = mapped_column(Fen, nullable=True)
    held_fen: Mapped[int] = mapped_column(Fen, default=0)
    flags: Mapped[str] = mapped_column(String(200), default="")
    facts: Mapped[str] = mapped_column(Text, default="")
    account_masked: Mapped[str | None] = mapped_column(String(64), nullable=True)
    explanation_zh: Mapped[str] = mapped_column(Text)
    explanation_en: Mapped[str] = mapped_column(Text)
    suggested_action: Mapped[str] = mapped_column(Text)
    source_file: Mapped[str | None] = mapped_column(String(255), nullable=True)
    line_no: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="OPEN")
    resolution_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    resolution_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_run: Mapped[str] = mapped_column(String(40))
    last_seen_run: Mapped[str] = mapped_column(String(40))
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_exceptions_open_by_outcome", "outcome", "business_date",
              postgresql_where=text(OPEN_EXCEPTIONS_SQL), sqlite_where=text(OPEN_EXCEPTIONS_SQL)),
        Index("ix_exceptions_open_actionable", "business_date",
              postgresql_where=text(OPEN_ACTIONABLE_SQL), sqlite_where=text(OPEN_ACTIONABLE_SQL)),
    )  # fmt: skip


class StatementLine(Base):
    """A line of the collection account's bank statement, as received for a business date
    (migration 0006). The same bank line in two downloads has one ``line_key``."""

    __tablename__ = "statement_lines"
    business_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    line_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    source_file: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    line_no: Mapped[int] = mapped_column(Integer)
    account: Mapped[str | None] = mapped_column(String(64), nullable=True)
    booking_date: Mapped[dt.date] = mapped_column(Date)
    value_date: Mapped[dt.date] = mapped_column(Date, index=True)
    amount_fen: Mapped[int] = mapped_column(Fen)
    reversal: Mapped[bool] = mapped_column(Boolean)
    counterparty_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    counterparty_account: Mapped[str | None] = mapped_column(String(64), nullable=True)
    narrative: Mapped[str | None] = mapped_column(Text, nullable=True)
    bank_reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    raw_line: Mapped[str] = mapped_column(Text)


class ChannelSettlement(Base):
    """A channel's own word on its settlement, from its bills: a fee it charged or a payout it made
    (a layout's ``settlement_kinds``), and of a file as a whole (line 0) the fees it states, the net
    it settles and what it says it collected (migration 0006)."""

    __tablename__ = "channel_settlements"
    business_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    file_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    # fee, payout; and of the file as a whole (line 0): fee, net, collected
    settlement_kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    channel: Mapped[str] = mapped_column(String(24))
    channel_txn_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amount_fen: Mapped[int] = mapped_column(Fen)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source_file: Mapped[str] = mapped_column(String(255))


class FundsCollection(Base):
    """What a channel collected for a business date, summed once when the date is reconciled
    (``reconcile/funds/expectations.py::collected``): no later night reads the records again."""

    __tablename__ = "funds_collections"
    channel: Mapped[str] = mapped_column(String(24), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    business_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    debits: Mapped[int] = mapped_column(BigInteger)
    gross_fen: Mapped[int] = mapped_column(Fen)
    refunds: Mapped[int] = mapped_column(BigInteger)
    refunds_fen: Mapped[int] = mapped_column(Fen)
    fee_expected_fen: Mapped[int] = mapped_column(Fen)
    run_id: Mapped[str] = mapped_column(String(40))


class FundsRefund(Base):
    """A refund of a business date and the business date of the payment it refunds."""

    __tablename__ = "funds_refunds"
    business_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    refund_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    channel: Mapped[str] = mapped_column(String(24))
    merchant_id: Mapped[str] = mapped_column(String(40))
    channel_txn_id: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(Fen)
    paid_on_date: Mapped[dt.date] = mapped_column(Date)


class FundsExpectation(Base):
    """An expected settlement and what became of it, as of the latest night (``as_of``)."""

    __tablename__ = "funds_expectations"
    expectation_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    channel: Mapped[str] = mapped_column(String(24))
    merchant_id: Mapped[str] = mapped_column(String(40))
    business_date: Mapped[dt.date] = mapped_column(Date, index=True)
    gross_fen: Mapped[int] = mapped_column(Fen)
    refunds_fen: Mapped[int] = mapped_column(Fen)
    fee_expected_fen: Mapped[int] = mapped_column(Fen)
    fee_reported_fen: Mapped[int | None] = mapped_column(Fen, nullable=True)
    net_fen: Mapped[int] = mapped_column(Fen)
    gross_stated_fen: Mapped[int | None] = mapped_column(Fen, nullable=True)
    net_stated_fen: Mapped[int | None] = mapped_column(Fen, nullable=True)
    payout_stated_fen: Mapped[int | None] = mapped_column(Fen, nullable=True)
    window_from: Mapped[dt.date] = mapped_column(Date)
    window_to: Mapped[dt.date] = mapped_column(Date)
    allocated_fen: Mapped[int] = mapped_column(Fen)
    remaining_fen: Mapped[int] = mapped_column(Fen)
    outcome: Mapped[str] = mapped_column(String(32))
    match_pass: Mapped[str | None] = mapped_column(String(12), nullable=True)
    paid_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    lines: Mapped[str | None] = mapped_column(Text, nullable=True)
    age_days: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[dt.date] = mapped_column(Date)
    run_id: Mapped[str] = mapped_column(String(40))


class FundsProof(Base):
    """A channel's clearing balance for a day, as last shown (``as_of``): a later night computing
    another movement for a day shown reconciled raises ``BALANCE_DRIFT``."""

    __tablename__ = "funds_proofs"
    channel: Mapped[str] = mapped_column(String(24), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    opening_fen: Mapped[int] = mapped_column(Fen)
    collected_fen: Mapped[int] = mapped_column(Fen)
    refunds_fen: Mapped[int] = mapped_column(Fen)
    fees_fen: Mapped[int] = mapped_column(Fen)
    settled_fen: Mapped[int] = mapped_column(Fen)
    closing_fen: Mapped[int] = mapped_column(Fen)
    # the day itself had been reconciled when this was shown: only then is its movement history
    reconciled: Mapped[bool] = mapped_column(Boolean)
    as_of: Mapped[dt.date] = mapped_column(Date)
    run_id: Mapped[str] = mapped_column(String(40))


class Run(Base):
    __tablename__ = "runs"
    run_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    business_date: Mapped[dt.date] = mapped_column(Date, index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class DatabaseIdentity(Base):
    """One row: this database's id, written into each workbook so a reviewed workbook is imported
    only into the books it came from."""

    __tablename__ = "database_identity"
    database_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ExceptionReview(Base):
    """The audit of a reviewer's resolution: who, when, from which workbook (SHA-256), what changed."""

    __tablename__ = "exception_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exception_key: Mapped[str] = mapped_column(String(200), index=True)
    workbook_sha256: Mapped[str] = mapped_column(String(64))
    workbook_date: Mapped[dt.date] = mapped_column(Date)
    sheet: Mapped[str] = mapped_column(String(31))
    row_no: Mapped[int] = mapped_column(Integer)
    resolution_code: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    reviewed_on: Mapped[str | None] = mapped_column(String(40), nullable=True)
    imported_by: Mapped[str] = mapped_column(String(100))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status_before: Mapped[str] = mapped_column(String(10))
    resolution_before: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note_before: Mapped[str | None] = mapped_column(Text, nullable=True)
    # a resolution that moved held money (migration 0005): how much, onto which installment, and
    # the run that voided it when a rerun of the date no longer held that money
    moved_fen: Mapped[int | None] = mapped_column(Fen, nullable=True)
    applied_to: Mapped[str | None] = mapped_column(String(60), nullable=True)
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    voided_by_run: Mapped[str | None] = mapped_column(String(40), nullable=True)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys on, WAL and a busy timeout, PostgreSQL UTC."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, connect_args={"options": session_options(url)})


#: Memory a PostgreSQL session of the night may give one sort or hash before it spills to disk.
#: The server's default (4 MB) sorts a million staged keys on disk and joins them by index scans;
#: with this, they are hashed (the loan-status count over 11.8M installments: 25 s → 11 s).
WORK_MEM = "256MB"

#: What the planner takes a random page read to cost against a sequential one. The server's default
#: (4.0) prices disks that seek; the night's tables are read from memory, and at 4.0 the planner
#: hashes all 11.8M installments to find 825k staged keys (9.3 s here) where the primary-key index,
#: walked in key order (:func:`flows.store.stage_frame` sorts what it stages), finds them in 2–4 s.
#: 1.1 is the usual value for storage that does not seek (SSD, or a table held in cache).
RANDOM_PAGE_COST = "1.1"


def session_options(url: str | URL) -> str:
    """The options every PostgreSQL session of ours starts with (UTC, no JIT, :data:`WORK_MEM`,
    :data:`RANDOM_PAGE_COST`);
    the URL's own ``options`` (``?options=-c%20work_mem%3D64MB``) come after them, so they win."""
    own = make_url(url).query.get("options") or ""
    own = own if isinstance(own, str) else " ".join(own)
    ours = ["-c timezone=UTC -c jit=off", f"-c work_mem={WORK_MEM}", f"-c random_page_cost={RANDOM_PAGE_COST}"]
    return " ".join(filter(None, [*ours, own]))
