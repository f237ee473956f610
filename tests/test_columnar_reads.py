"""The load stage's reads (``flows.store.reading``): ADBC on PostgreSQL, a SQLAlchemy connection on
SQLite, the same frames from both — and the same frames as the write stage's ``read_frame``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Column, Select, Table, func, select, text

from flows.db import Installment, LedgerEntry, Loan, session_options, table_of
from flows.store import (
    BY_INDEX,
    connect,
    in_key_order,
    insert_frame,
    libpq_uri,
    read_frame,
    reading,
    same_keys,
    stage_frame,
)

UTC = dt.UTC
LOANS = pl.DataFrame(
    {
        "contract_no": ["C1", "C2", "C3"],
        "borrower_name": ["甲", "乙", "丙"],
        "id_number": ["110101199001011234"] * 3,
        "phone": ["13800000000"] * 3,
        "principal_fen": [100_000, 200_000, 300_000],
        "annual_rate": [0.18, 0.18, 0.2],
        "term_months": [2, 1, 1],
        "repayment_method": ["EQUAL_PRINCIPAL"] * 3,
        "start_date": [dt.date(2026, 10, 1)] * 3,
        "grace_days": [3, 0, 5],
        "bound_channel": ["alipay", "bank_a", "bank_a"],
        "bound_account": ["6222000011112222", "6222000033334444", "6222000055556666"],
        "status": ["ACTIVE", "ACTIVE", "SETTLED"],
    }
)
INSTALLMENTS = pl.DataFrame(
    {
        "contract_no": ["C1", "C1", "C2", "C3"],
        "installment_no": [1, 2, 1, 1],
        "due_date": [dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2026, 11, 27), dt.date(2026, 10, 1)],
        "overdue_after": [dt.date(2026, 11, 4), dt.date(2026, 12, 4), dt.date(2026, 11, 27), dt.date(2026, 10, 6)],
        "principal_due_fen": [50_000, 50_000, 200_000, 300_000],
        "interest_due_fen": [1_234, 1_234, 0, 7],
        "fee_due_fen": [0, 0, 0, 0],
        "penalty_due_fen": [0, 0, 0, 0],
        "status": ["PAID", "DUE", "DUE", "PAID_LATE"],
        "paid_at": [dt.datetime(2026, 11, 1, 2, 3, 4, 567_891, tzinfo=UTC), None, None, None],
        **{f"{p}_paid_fen": [0, 0, 0, 0] for p in ("principal", "interest", "fee", "penalty")},
        **{f"opening_{p}_paid_fen": [0, 0, 0, 0] for p in ("principal", "interest", "fee", "penalty")},
    }
)
SCHEMA = {
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "due_date": pl.Date,
    "interest_due_fen": pl.Int64,
    "status": pl.String,
    "paid_at": pl.Datetime("us", "UTC"),
    "grace_days": pl.Int64,
}


def _books(url: str) -> None:
    engine = connect(url)
    with engine.begin() as conn:
        insert_frame(conn, table_of(Loan), LOANS)
        insert_frame(conn, table_of(Installment), INSTALLMENTS)
    engine.dispose()


def _query(staged: Table) -> Select[Any]:
    installments, loans = table_of(Installment), table_of(Loan)
    return (
        select(*[installments.c[c] for c in list(SCHEMA)[:-1]], loans.c.grace_days)
        .join(staged, same_keys(staged, installments, ["contract_no", "installment_no"]))
        .join(loans, loans.c.contract_no == installments.c.contract_no)
        .where(installments.c.due_date < dt.date(2026, 11, 28))
    )


@pytest.mark.parametrize("by_index", [False, True], ids=["planner", "by_index"])
def test_reads_stage_keys_and_return_exact_frames(db_url: str, by_index: bool) -> None:
    _books(db_url)
    engine = connect(db_url)
    keys = pl.DataFrame({"contract_no": ["C9", "C2", "C1"], "installment_no": [1, 1, 1]})
    with reading(engine) as reads:
        staged = reads.stage("stage_probe", keys, table_of(Installment))
        got = reads.read(_query(staged), SCHEMA, by_index=by_index).sort("contract_no")
        nothing = reads.read(_query(staged).where(installments_status() == "NONE"), SCHEMA, by_index=by_index)
    with engine.begin() as conn:  # the write stage's path of the same rows
        probe = stage_frame(conn, "stage_probe", keys, table_of(Installment))
        expected = read_frame(conn, _query(probe), SCHEMA, by_index=by_index).sort("contract_no")
    engine.dispose()
    assert got.schema == pl.Schema(SCHEMA)
    assert got.to_dicts() == [
        {"contract_no": "C1", "installment_no": 1, "due_date": dt.date(2026, 11, 1), "interest_due_fen": 1_234,
         "status": "PAID", "paid_at": dt.datetime(2026, 11, 1, 2, 3, 4, 567_891, tzinfo=UTC), "grace_days": 3},
        {"contract_no": "C2", "installment_no": 1, "due_date": dt.date(2026, 11, 27), "interest_due_fen": 0,
         "status": "DUE", "paid_at": None, "grace_days": 0},
    ]  # fmt: skip
    assert got.equals(expected)
    assert nothing.schema == pl.Schema(SCHEMA) and nothing.height == 0


def installments_status() -> Column[Any]:
    return table_of(Installment).c.status


def test_reads_aggregate_and_leave_no_staged_table(db_url: str) -> None:
    _books(db_url)
    engine = connect(db_url)
    ledger = table_of(LedgerEntry)
    with reading(engine) as reads:
        staged = reads.stage("stage_sums", pl.DataFrame({"contract_no": ["C1"]}), table_of(Loan))
        sums = reads.read(
            select(ledger.c.contract_no, func.sum(ledger.c.held_fen).label("held_fen"))
            .join(staged, staged.c.contract_no == ledger.c.contract_no)
            .group_by(ledger.c.contract_no),
            {"contract_no": pl.String, "held_fen": pl.Int64},
        )
    assert sums.height == 0 and sums.schema == pl.Schema({"contract_no": pl.String, "held_fen": pl.Int64})
    with engine.connect() as conn:  # a new session: the staged tables were the reads' own
        if conn.dialect.name == "postgresql":
            left = conn.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE 'stage_sums%'")).scalar()
        else:
            left = conn.execute(text("SELECT count(*) FROM sqlite_temp_master WHERE name = 'stage_sums'")).scalar()
    engine.dispose()
    assert left == 0


def test_session_options_carry_over_and_the_url_wins() -> None:
    plain = "postgresql+psycopg://user:p%40ss%20word@db.example:6543/recon"
    assert session_options(plain) == "-c timezone=UTC -c jit=off -c work_mem=256MB -c random_page_cost=1.1"
    own = plain + "?options=-c%20work_mem%3D64MB&sslmode=require"
    assert session_options(own).endswith("-c random_page_cost=1.1 -c work_mem=64MB")  # the later one wins
    uri = libpq_uri(connect(own))
    assert uri.startswith("postgresql://user:p%40ss%20word@db.example:6543/recon?")
    assert "sslmode=require" in uri
    said = "-c timezone=UTC -c jit=off -c work_mem=256MB -c random_page_cost=1.1 -c work_mem=64MB"
    assert "options=" + said.replace(" ", "%20").replace("=", "%3D") in uri
    assert "+" not in uri  # libpq reads a plus as a plus


@pytest.mark.parametrize("setting", ["work_mem", "TimeZone", "jit"])
def test_adbc_session_has_the_engine_settings(pg_database: str, setting: str) -> None:
    engine = connect(pg_database)
    with engine.connect() as conn:
        theirs = conn.execute(text(f"SELECT current_setting('{setting}')")).scalar()
    with reading(engine) as reads:
        from sqlalchemy import literal_column

        ours = reads.read(select(literal_column(f"current_setting('{setting}')").label("v")), {"v": pl.String})
    engine.dispose()
    assert ours["v"].to_list() == [theirs]


def test_sums_come_back_as_integers(db_url: str) -> None:
    """``sum`` of a bigint is ``numeric`` on PostgreSQL, which Arrow has no type for."""
    _books(db_url)
    engine = connect(db_url)
    installments = table_of(Installment)
    with reading(engine) as reads:
        sums = reads.read(
            select(installments.c.contract_no, func.sum(installments.c.principal_due_fen).label("principal_fen"))
            .group_by(installments.c.contract_no)
            .order_by(installments.c.contract_no),
            {"contract_no": pl.String, "principal_fen": pl.Int64},
        )
    engine.dispose()
    assert sums.rows() == [("C1", 100_000), ("C2", 200_000), ("C3", 300_000)]


def test_a_read_by_index_leaves_the_planner_as_it_was(pg_database: str) -> None:
    from flows.store import upgrade_database

    upgrade_database(pg_database)
    engine = connect(pg_database)
    probe = select(func.count().label("count")).select_from(table_of(Installment))
    shown = [text(f"SHOW {setting}") for setting in BY_INDEX]
    with reading(engine) as reads:
        inside = reads.read(select(text("current_setting('enable_hashjoin') AS hashing")), {"hashing": pl.String},
                            by_index=True)  # fmt: skip
        reads.read(probe, {"count": pl.Int64}, by_index=True)
        after = reads.read(select(text("current_setting('enable_hashjoin') AS hashing")), {"hashing": pl.String})
    with engine.begin() as conn:
        by_copy = read_frame(conn, select(text("current_setting('enable_mergejoin') AS merging")),
                             {"merging": pl.String}, by_index=True)  # fmt: skip
        settings = [conn.execute(statement).scalar() for statement in shown]
    engine.dispose()
    assert inside["hashing"].to_list() == ["off"] and by_copy["merging"].to_list() == ["off"]
    assert after["hashing"].to_list() == ["on"] and settings == ["on", "on"]


def test_staged_rows_go_in_the_order_of_their_tables_key() -> None:
    keys = pl.DataFrame({"installment_no": [2, 1, 1, 3], "contract_no": ["C2", "C2", "C1", None], "x": [1, 2, 3, 4]})
    assert in_key_order(keys, table_of(Installment)).rows() == [(1, "C1", 3), (1, "C2", 2), (2, "C2", 1), (3, None, 4)]
    assert in_key_order(keys, table_of(Loan))["contract_no"].to_list() == ["C1", "C2", "C2", None]
    unkeyed = pl.DataFrame({"outcome": ["B", "A"]})
    assert in_key_order(unkeyed, table_of(Installment)).equals(unkeyed)  # no key column: as given


def test_a_column_empty_through_its_first_thousands_of_rows_still_reads(db_url: str) -> None:
    # SQLite reports no column types: a reader that typed a column by its first values would fail here
    many = 3_000
    installments = pl.DataFrame({
        "contract_no": ["C1"] * many, "installment_no": list(range(1, many + 1)),
        "due_date": [dt.date(2026, 11, 1)] * many, "overdue_after": [dt.date(2026, 11, 4)] * many,
        **{f"{p}_due_fen": [100] * many for p in ("principal", "interest", "fee", "penalty")},
        "status": ["DUE"] * (many - 2) + ["PAID", "PAID"],
        "paid_at": [None] * (many - 2) + [dt.datetime(2026, 11, 2, 1, tzinfo=UTC)] * 2,
        **{f"{p}_paid_fen": [0] * many for p in ("principal", "interest", "fee", "penalty")},
        **{f"opening_{p}_paid_fen": [0] * many for p in ("principal", "interest", "fee", "penalty")},
    })  # fmt: skip
    engine = connect(db_url)
    with engine.begin() as conn:
        insert_frame(conn, table_of(Loan), LOANS)
        insert_frame(conn, table_of(Installment), installments)
    table = table_of(Installment)
    schema = {"installment_no": pl.Int64, "paid_at": pl.Datetime("us", "UTC"), "status": pl.String}
    with reading(engine) as reads:
        got = reads.read(select(table.c.installment_no, table.c.paid_at, table.c.status)
                         .order_by(table.c.installment_no), schema)  # fmt: skip
    engine.dispose()
    assert got.schema == pl.Schema(schema) and got.height == many
    assert got.drop_nulls("paid_at").to_dicts() == [
        {"installment_no": n, "paid_at": dt.datetime(2026, 11, 2, 1, tzinfo=UTC), "status": "PAID"}
        for n in (many - 1, many)
    ]


def test_a_failed_read_by_index_says_its_own_error(pg_database: str) -> None:
    engine = connect(pg_database)
    with pytest.raises(Exception) as raised, engine.begin() as conn:
        read_frame(conn, select(text("1 / 0 AS x")), {"x": pl.Int64}, by_index=True)
    engine.dispose()
    said = getattr(raised.value, "orig", None) or raised.value  # the driver's error, or SQLAlchemy's over it
    assert type(said).__name__ == "DivisionByZero"  # not "the transaction is aborted"
