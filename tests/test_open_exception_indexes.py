"""The older open exceptions a night settles and a workbook shows are found by the partial indexes
of open exceptions (migration 0007), not by reading every older date: the rows are right, and each
database plans the product's own statements through those indexes."""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import create_engine, insert, text

from flows.db import ExceptionItem, table_of
from flows.runs import exceptions_for_workbook, workbook_exceptions
from flows.stages.write import older_settleable
from flows.store import read_frame
from reconcile.lifecycle import SETTLING_SCHEMA

DAY = dt.date(2026, 11, 27)
NOW = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)

# key, date, outcome, severity, status
ROWS = [
    ("missing-open", dt.date(2026, 11, 20), "MISSING_RESULT", "MEDIUM", "OPEN"),
    ("missing-resolved", dt.date(2026, 11, 20), "MISSING_RESULT", "MEDIUM", "RESOLVED"),
    ("missing-today", DAY, "MISSING_RESULT", "MEDIUM", "OPEN"),
    ("duplicate-open", dt.date(2026, 11, 26), "DUPLICATE_DEBIT", "HIGH", "OPEN"),
    ("overpaid-open", dt.date(2026, 11, 1), "OVERPAYMENT", "HIGH", "OPEN"),
    ("failed-open", dt.date(2026, 11, 26), "DEBIT_FAILED", "LOW", "OPEN"),
    ("failed-today", DAY, "DEBIT_FAILED", "LOW", "OPEN"),
    ("unmatched-open", dt.date(2026, 11, 25), "UNMATCHED", "HIGH", "OPEN"),
    ("unmatched-resolved", dt.date(2026, 11, 25), "UNMATCHED", "HIGH", "RESOLVED"),
    ("unmatched-today-resolved", DAY, "UNMATCHED", "HIGH", "RESOLVED"),
    ("later-open", dt.date(2026, 11, 28), "MISSING_RESULT", "MEDIUM", "OPEN"),
]


COMMON = {
    "subject": "record", "channel": "alipay", "held_fen": 0, "flags": "", "facts": "", "explanation_zh": "说明",
    "explanation_en": "why", "suggested_action": "look", "occurrences": 1, "first_seen_run": "r1",
    "last_seen_run": "r1", "first_seen_at": NOW, "last_seen_at": NOW,
}  # fmt: skip


def _fill(url: str) -> None:
    rows = [
        {**COMMON, "exception_key": key, "business_date": day, "outcome": outcome, "severity": severity,
         "status": status, "instruction_id": f"P-{key}"}
        for key, day, outcome, severity, status in ROWS
    ]  # fmt: skip
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(table_of(ExceptionItem)), rows)
    engine.dispose()


def test_the_older_open_ones_are_the_rows_read(db_url: str) -> None:
    _fill(db_url)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        settleable = read_frame(conn, older_settleable(DAY), {"exception_key": pl.String, **SETTLING_SCHEMA})
    assert sorted(settleable["exception_key"]) == ["duplicate-open", "missing-open", "overpaid-open"]
    assert set(settleable["instruction_id"]) == {"P-duplicate-open", "P-missing-open", "P-overpaid-open"}
    shown = exceptions_for_workbook(engine, DAY)
    # the date's open ones, LOW included; older ones only while open and not LOW; nothing later
    assert sorted(shown["exception_key"]) == [
        "duplicate-open", "failed-today", "missing-open", "missing-today", "overpaid-open", "unmatched-open",
    ]  # fmt: skip
    engine.dispose()


def _plan(url: str, statement: object) -> str:
    engine = create_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            # as the product runs it on SQLite: the dates and outcomes bound as parameters
            compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})  # type: ignore[attr-defined]
            bound = tuple(compiled.params[name] for name in compiled.positiontup)
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", bound)
            plan = "\n".join(str(row[-1]) for row in rows)
        else:
            # an empty table is cheaper to scan: forbid that, so the plan says whether the index serves
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
            plan = "\n".join(str(row[0]) for row in conn.execute(text(f"EXPLAIN {compiled.string}")))
    engine.dispose()
    return plan


def test_each_database_finds_them_by_the_partial_indexes(db_url: str) -> None:
    settle_plan = _plan(db_url, older_settleable(DAY))
    assert "ix_exceptions_open_by_outcome" in settle_plan, settle_plan
    workbook_plan = _plan(db_url, workbook_exceptions(DAY))
    assert "ix_exceptions_open_actionable" in workbook_plan or "ix_exceptions_open_by_outcome" in workbook_plan, (
        workbook_plan
    )
    assert "ix_exceptions_business_date" not in settle_plan, settle_plan
