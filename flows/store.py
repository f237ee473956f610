"""Moving frames in and out of the database, the same way on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from alembic import command
from alembic.config import Config
from sqlalchemy import Column, Connection, Engine, MetaData, Table, and_, text

from flows.db import make_engine, session_options

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


def safe_url(url: str) -> str:
    """The URL as it may be shown: host and database, never the password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def database_problem(error: BaseException, url: str) -> str | None:
    """One line for a database that is unreachable, missing, not initialised or gone mid-run (host
    and database, never the password, never the statement or its parameters, which hold the
    records), or None when ``error`` is not the database's."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(error, DBAPIError):
        return None
    said = str(error.orig).strip() if error.orig is not None else ""
    first = said.splitlines()[0] if said else type(error.orig or error).__name__
    if "no such table" in first or ("does not exist" in first and "relation" in first):
        said = "is not initialised (or older than this version): run `recon init`"
        return f"the database {safe_url(url)} {said} ({first})"
    if error.connection_invalidated or "terminating connection" in first or "closed the connection" in first:
        return f"the database {safe_url(url)} went away during the run: {first}"
    return f"cannot use the database {safe_url(url)}: {first}"


def connect(url: str) -> Engine:
    return make_engine(url)


#: Plan settings of a read that looks staged keys up by their table's index (``by_index=True``):
#: the planner prices a nested loop over a million sorted keys above hashing the whole table, which
#: is slower here (1.33M installment keys of 11.8M: 5.1 s by the index, 11.5 s hashed).
BY_INDEX = ("enable_hashjoin", "enable_mergejoin")


def _by_index(on: bool, by_index: bool) -> list[str]:
    """The statements that turn :data:`BY_INDEX` on for a read (``on``) or back after it; none when
    the read is planned as usual. Not reset after a failed read: its transaction is aborted, which
    undoes a ``SET LOCAL``, and a ``RESET`` there would hide the failure behind "current transaction
    is aborted"."""
    if not by_index:
        return []
    return [f"SET LOCAL {setting} = off" if on else f"RESET {setting}" for setting in BY_INDEX]


def read_frame(conn: Connection, statement: Any, schema: dict[str, Any], by_index: bool = False) -> pl.DataFrame:
    """Run a select and return a frame with exactly ``schema`` (even when no row comes back).

    PostgreSQL: the columnar path — ``COPY (query) TO STDOUT`` as CSV on the same connection (so
    temporary tables and the open transaction are seen), parsed by polars in one go; ``by_index``:
    joined by index lookups (:data:`BY_INDEX`). SQLite: the driver's tuples straight into polars (no
    ORM rows); its text dates and UTC times parsed by polars.
    """
    if conn.dialect.name == "postgresql":
        for sql in _by_index(True, by_index):
            conn.execute(text(sql))
        frame = _copy_out(conn, statement, schema)
        for sql in _by_index(False, by_index):
            conn.execute(text(sql))
        return frame
    result = conn.execute(statement)
    columns = list(result.keys())
    rows = result.cursor.fetchall() if result.cursor is not None else []
    if not rows:
        return pl.DataFrame(schema=schema)
    raw = pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)
    return raw.select([_coerce(raw, name, dtype) for name, dtype in schema.items()])


def _coerce(raw: pl.DataFrame, name: str, dtype: Any) -> pl.Expr:
    column = pl.col(name)
    if raw.schema[name] == pl.String and isinstance(dtype, pl.Datetime):
        parsed = column.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us")
        return (parsed.dt.replace_time_zone("UTC") if dtype.time_zone else parsed).cast(dtype)
    if raw.schema[name] == pl.String and dtype == pl.Date:
        return column.str.to_date("%Y-%m-%d")
    if isinstance(raw.schema[name], pl.Datetime) and isinstance(dtype, pl.Datetime) and dtype.time_zone:
        return column.dt.convert_time_zone("UTC").cast(dtype)
    return column.cast(dtype)


def _copy_out(conn: Connection, statement: Any, schema: dict[str, Any]) -> pl.DataFrame:
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    sql = f"COPY ({compiled.string}) TO STDOUT WITH (FORMAT csv, HEADER true, NULL '\\N')"
    payload = bytearray()
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        with cursor.copy(sql, compiled.params) as copy:
            for block in copy:
                payload += block
    if not payload:
        return pl.DataFrame(schema=schema)
    text_frame = pl.read_csv(
        bytes(payload), infer_schema=False, null_values="\\N", empty_string_is_null=False, raise_if_empty=False
    )
    if text_frame.height == 0:
        return pl.DataFrame(schema=schema)
    return text_frame.select([_from_text(name, dtype) for name, dtype in schema.items()])


def _from_text(name: str, dtype: Any) -> pl.Expr:
    """A column of PostgreSQL's CSV text as ``dtype`` (the session time zone is UTC: ``+00``)."""
    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        parsed = column.str.strip_suffix("+00").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us")
        return (parsed.dt.replace_time_zone("UTC") if dtype.time_zone else parsed).cast(dtype)
    if dtype == pl.Date:
        return column.str.to_date("%Y-%m-%d")
    if dtype == pl.Boolean:
        return (column == "t").alias(name)
    return column.cast(dtype)


class Reads(Protocol):
    """Reads of one stage that only reads: keys staged in temporary tables (gone when the reads
    end), rows back as frames with exactly the schema asked for (see :func:`reading`)."""

    def stage(self, name: str, frame: pl.DataFrame, like: Table) -> Table: ...

    def read(self, statement: Any, schema: dict[str, Any], by_index: bool = False) -> pl.DataFrame: ...


class _ConnectionReads:
    """On a SQLAlchemy connection: :func:`stage_frame` and :func:`read_frame`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.staged: list[Table] = []

    def stage(self, name: str, frame: pl.DataFrame, like: Table) -> Table:
        self.staged.append(stage_frame(self.conn, name, frame, like))
        return self.staged[-1]

    def read(self, statement: Any, schema: dict[str, Any], by_index: bool = False) -> pl.DataFrame:
        return read_frame(self.conn, statement, schema, by_index)


class _AdbcReads:
    """On an ADBC connection to PostgreSQL: keys in by its bulk ingest (binary COPY), rows back as
    Arrow, read in C++ — about half the time of ``COPY TO`` as CSV through psycopg, whose cost is
    a Python call per row."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def stage(self, name: str, frame: pl.DataFrame, like: Table) -> Table:
        cursor = self.connection.cursor()
        try:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
            cursor.adbc_ingest(name, in_key_order(frame, like).to_arrow(), mode="create", temporary=True)
            cursor.execute(f"ANALYZE {name}")  # see stage_frame: without statistics, nested loops
        finally:
            cursor.close()
        return staged_table(name, frame.columns, like)

    def read(self, statement: Any, schema: dict[str, Any], by_index: bool = False) -> pl.DataFrame:
        import pyarrow as pa
        from sqlalchemy.dialects import postgresql

        # the statements are the product's own; their few parameters (dates, times, codes) are
        # rendered as SQL literals by SQLAlchemy, which quotes them
        sql = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        cursor = self.connection.cursor()
        try:
            for planning in _by_index(True, by_index):
                cursor.execute(planning)
            cursor.execute(sql)
            table = cursor.fetch_arrow_table()
            for planning in _by_index(False, by_index):
                cursor.execute(planning)
        finally:
            cursor.close()
        # a type Arrow has no match for (``numeric``: what ``sum`` of a bigint is) comes as an
        # extension type over its text; the text is cast to the schema's type like COPY's CSV
        for index, field in enumerate(table.schema):
            if hasattr(field.type, "storage_type"):
                storage = [chunk.storage for chunk in table.column(index).chunks]
                table = table.set_column(index, field.name, pa.chunked_array(storage, field.type.storage_type))
        raw = pl.from_arrow(table)
        assert isinstance(raw, pl.DataFrame)
        if raw.height == 0:
            return pl.DataFrame(schema=schema)
        return raw.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


@contextmanager
def reading(engine: Engine) -> Iterator[Reads]:
    """The reads of a stage that writes nothing, in one transaction (every read sees the same
    books). PostgreSQL: an ADBC connection of its own (``adbc-driver-postgresql``) with the
    engine's session options. SQLite: a SQLAlchemy connection."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            reads = _ConnectionReads(conn)
            yield reads
            for staged in reads.staged:
                staged.drop(conn)
        return
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(libpq_uri(engine)) as connection:
        yield _AdbcReads(connection)
        connection.rollback()  # a read-only transaction: nothing to keep


def libpq_uri(engine: Engine) -> str:
    """The engine's PostgreSQL URL as libpq reads it, carrying the same session options (UTC, no
    JIT, work_mem) in ``options``, percent-encoded (libpq does not read ``+`` as a space)."""
    from urllib.parse import quote

    url = engine.url
    query = {k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()}
    query["options"] = session_options(url)
    login = quote(url.username or "", safe="") + (f":{quote(url.password, safe='')}" if url.password else "")
    where = (url.host or "") + (f":{url.port}" if url.port else "")
    said = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
    return f"postgresql://{login}{'@' if login else ''}{where}/{quote(url.database or '', safe='')}?{said}"


def _batches(rows: list[dict[str, Any]], size: int = BATCH_ROWS) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def insert_frame(conn: Connection, table: Table, frame: pl.DataFrame) -> int:
    """Append every row of ``frame`` (columns named as the table's).

    PostgreSQL: one COPY from CSV made by polars. SQLite: executemany in batches.
    """
    if frame.height == 0:
        return 0
    if conn.dialect.name == "postgresql":
        copy_frame(conn, table.name, frame)
        return frame.height
    sqlite_executemany(conn, table.name, frame)
    return frame.height


def sqlite_executemany(conn: Connection, table_name: str, frame: pl.DataFrame) -> None:
    """SQLite bulk insert: tuples straight to the driver, in the storage formats SQLAlchemy uses
    (dates ``YYYY-MM-DD``, UTC times ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    prepared = frame.with_columns(
        [
            pl.col(name).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
            if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
            else pl.col(name).dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
            if isinstance(dtype, pl.Datetime)
            else pl.col(name).cast(pl.String)
            if dtype == pl.Date
            else pl.col(name).cast(pl.Int64)
            if dtype == pl.Boolean
            else pl.col(name)
            for name, dtype in frame.schema.items()
        ]
    )
    columns = ", ".join(f'"{name}"' for name in prepared.columns)
    marks = ", ".join("?" for _ in prepared.columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, prepared.height, BATCH_ROWS * 5):
            chunk = prepared.slice(start, BATCH_ROWS * 5)
            cursor.executemany(f"INSERT INTO {table_name} ({columns}) VALUES ({marks})", chunk.iter_rows())
    finally:
        cursor.close()


#: Rows of a frame turned into CSV at a time for COPY: the text of a whole day at once (channel
#: records with their raw lines) would be hundreds of MB held twice (text, then bytes).
COPY_ROWS = 100_000


def copy_frame(conn: Connection, table_name: str, frame: pl.DataFrame) -> None:
    """PostgreSQL COPY of ``frame`` into ``table_name`` (times written with their offset), one
    slice of :data:`COPY_ROWS` rows at a time, each written by polars straight into a buffer.

    psycopg's queued writer sends each slice from a thread of its own, so polars makes the next
    slice's CSV while the server takes the last (a million channel records: 0.92x the time of
    sending each slice before making the next, measured here)."""
    from psycopg.copy import QueuedLibpqWriter

    columns = ", ".join(f'"{name}"' for name in frame.columns)
    raw = conn.connection.driver_connection
    statement = f"COPY {table_name} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
            for start in range(0, frame.height, COPY_ROWS):
                buffer = io.BytesIO()
                frame.slice(start, COPY_ROWS).write_csv(
                    buffer, include_header=False, null_value="\\N", datetime_format="%Y-%m-%d %H:%M:%S%.6f%:z",
                    quote_style="necessary",
                )  # fmt: skip
                copy.write(buffer.getbuffer())


def same_keys(left: Table, right: Table, keys: Sequence[str]) -> Any:
    """The join condition ``left.k = right.k`` for every key column (a staged table and its own)."""
    return and_(*[left.c[k] == right.c[k] for k in keys])


def staged_table(name: str, columns: Sequence[str], like: Table) -> Table:
    """The temporary table ``name`` with these columns, typed as ``like``'s."""
    return Table(name, MetaData(), *[Column(column, like.c[column].type) for column in columns], prefixes=["TEMPORARY"])


def in_key_order(frame: pl.DataFrame, like: Table) -> pl.DataFrame:
    """``frame`` sorted by the columns of ``like``'s primary key that it holds, in the key's order.

    Staged keys are joined to their table through its primary-key index (or one that starts the
    same way, as the ledger's by installment); walked in key order the index and the pages it
    points to are read in sequence rather than at random: 825k installment keys found in 3.8 s
    sorted against 15.4 s shuffled, and updated in 10.1 s against 27.6 s, measured here.
    """
    keys = [name for name in like.primary_key.columns.keys() if name in frame.columns]
    return frame.sort(keys, nulls_last=True) if keys and frame.height > 1 else frame


def stage_frame(conn: Connection, name: str, frame: pl.DataFrame, like: Table) -> Table:
    """A temporary table ``name`` holding ``frame``; column types are taken from ``like``.

    Bulk updates and upserts go through a staged table and one set-based statement instead of a
    round trip per row.
    """
    staged = staged_table(name, frame.columns, like)
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    staged.create(conn)
    insert_frame(conn, staged, in_key_order(frame, like))
    if conn.dialect.name == "postgresql":
        # a temporary table has no statistics until analysed: without them the planner guesses a
        # handful of rows and joins a million staged keys by nested loops
        conn.execute(text(f"ANALYZE {name}"))
    return staged


def update_from_frame(
    conn: Connection, table: Table, frame: pl.DataFrame, keys: Sequence[str], still_where: str | None = None
) -> int:
    """Set the non-key columns of ``frame`` on the rows of ``table`` whose ``keys`` match, in one statement.

    ``still_where``: a condition on the table's row that must still hold when it is written (the
    database checks it again after waiting for a row another transaction changed, so a decision
    made on rows read earlier never overwrites a newer one).
    """
    if frame.height == 0:
        return 0
    staged = stage_frame(conn, f"stage_{table.name}", frame, table)
    values = [column for column in frame.columns if column not in keys]
    assignments = ", ".join(f'"{column}" = s."{column}"' for column in values)
    condition = " AND ".join(f'{table.name}."{key}" = s."{key}"' for key in keys)
    if still_where:
        condition += f" AND ({table.name}.{still_where})"
    conn.execute(text(f"UPDATE {table.name} SET {assignments} FROM {staged.name} AS s WHERE {condition}"))
    conn.execute(text(f"DROP TABLE {staged.name}"))
    return frame.height


def upsert_frame(
    conn: Connection, table: Table, frame: pl.DataFrame, keys: Sequence[str], update: Sequence[str]
) -> int:
    """Insert rows, or update ``update`` columns of rows whose ``keys`` exist and differ.

    Staged in a temporary table, then one ``INSERT … SELECT … ON CONFLICT DO UPDATE``: importing the
    same rows again writes nothing.
    """
    if frame.height == 0:
        return 0
    staged = stage_frame(conn, f"stage_{table.name}", frame, table)
    columns = ", ".join(f'"{column}"' for column in frame.columns)
    assignments = ", ".join(f'"{column}" = excluded."{column}"' for column in update)
    changed = " OR ".join(f'{table.name}."{column}" IS DISTINCT FROM excluded."{column}"' for column in update)
    if conn.dialect.name == "sqlite":
        changed = " OR ".join(f'{table.name}."{column}" IS NOT excluded."{column}"' for column in update)
    conflict = ", ".join(f'"{key}"' for key in keys)
    action = f"DO UPDATE SET {assignments} WHERE {changed}" if update else "DO NOTHING"
    conn.execute(
        text(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staged.name} WHERE true "
            f"ON CONFLICT ({conflict}) {action}"
        )
    )
    conn.execute(text(f"DROP TABLE {staged.name}"))
    return frame.height
