"""Moving frames in and out of the database, the same way on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, insert
from sqlalchemy.dialects import postgresql, sqlite

from flows.db import make_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
BATCH_ROWS = 20_000


def upgrade_database(url: str) -> None:
    """Create the database schema or bring it to the newest migration (``recon init``)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_locations", str(MIGRATIONS / "versions"))
    engine = make_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    engine.dispose()


def connect(url: str) -> Engine:
    return make_engine(url)


def read_frame(conn: Connection, statement: Any, schema: dict[str, Any]) -> pl.DataFrame:
    """Run a select and return a frame with exactly ``schema`` (even when no row comes back)."""
    result = conn.execute(statement)
    rows = result.all()
    columns = list(result.keys())
    if not rows:
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame([tuple(row) for row in rows], schema=columns, orient="row", infer_schema_length=None)
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def _batches(rows: list[dict[str, Any]], size: int = BATCH_ROWS) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def insert_frame(conn: Connection, table: Table, frame: pl.DataFrame) -> int:
    """Insert every row of ``frame`` (columns named as the table's) with executemany batches."""
    if frame.height == 0:
        return 0
    rows = frame.to_dicts()
    for batch in _batches(rows):
        conn.execute(insert(table), batch)
    return len(rows)


def upsert_frame(
    conn: Connection, table: Table, frame: pl.DataFrame, keys: Sequence[str], update: Sequence[str]
) -> int:
    """Insert rows, or update ``update`` columns of rows whose ``keys`` already exist."""
    if frame.height == 0:
        return 0
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in update}
    )
    rows = frame.to_dicts()
    for batch in _batches(rows):
        conn.execute(statement, batch)
    return len(rows)
