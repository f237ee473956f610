"""Comparable dumps of the books (run bookkeeping left out) for idempotency and crash tests."""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import create_engine, select

from flows.db import ChannelRecord, ExceptionItem, Installment, LedgerEntry, Loan, SourceFile, table_of

RUN_BOOKKEEPING = {
    "id", "run_id", "first_run_id", "registered_at", "first_seen_run", "last_seen_run", "first_seen_at",
    "last_seen_at", "occurrences", "resolution_note",
}  # fmt: skip


def dump_books(url: str, open_exceptions_only: bool = False) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the books; with ``open_exceptions_only``, exceptions resolved along the way
    (history that depends on when runs happened) are left out."""
    engine = create_engine(url)
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for model in (Loan, Installment, LedgerEntry, ChannelRecord, ExceptionItem, SourceFile):
            table = table_of(model)
            columns = [c for c in table.c if c.name not in RUN_BOOKKEEPING]
            statement = select(*columns)
            if model is ExceptionItem and open_exceptions_only:
                statement = statement.where(table.c.status == "OPEN")
            dump[table.name] = sorted(
                (tuple(row) for row in conn.execute(statement).all()), key=lambda r: tuple(map(str, r))
            )
    engine.dispose()
    return dump


def stored_outcomes(url: str) -> pl.DataFrame:
    """Every stored channel record's key and outcome (``subject_key``, ``outcome``)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = pl.DataFrame(
            conn.execute(select(ChannelRecord.record_key, ChannelRecord.outcome)).all(),
            schema=["subject_key", "outcome"],
            orient="row",
        )
    engine.dispose()
    return stored
