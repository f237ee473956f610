"""Dump the books of a database as comparable CSV files, compare two dumps, and run the sample days
into fresh databases with whatever project code the running python imports.

Self-contained on purpose (sqlalchemy, polars and the standard library only; nothing from ``flows``
or ``reconcile``) so the same file dumps and compares the books of any version of the schema: the
"before" of a refactor with the old code, the "after" with the new, then ``diff`` the two folders.

    python bench/compare_books.py dump --url URL --out DIR
    python bench/compare_books.py diff DIR_A DIR_B
    python bench/compare_books.py run-days --out DIR --database sqlite|postgresql [--golden] [--demo] [--generated]

``run-days`` drives the ``recon`` command next to ``sys.executable`` (so: the venv whose python runs
this file) and reads the sample days from ``--sample-data`` (default: ``sample_data`` in the current
folder when there is one, else the one of the repository this file lives in). A dump leaves out run
bookkeeping (ids, run ids, first/last seen, occurrences, resolution notes), which differs run to run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Boolean, Date, DateTime, MetaData, create_engine, select, text, type_coerce
from sqlalchemy.engine import make_url
from sqlalchemy.types import NullType

TABLES = ("loans", "installments", "settlement_ledger", "channel_records", "exceptions", "source_files")
RUN_BOOKKEEPING = frozenset(
    {
        "id", "run_id", "first_run_id", "registered_at", "first_seen_run", "last_seen_run", "first_seen_at",
        "last_seen_at", "occurrences", "resolution_note",
    }
)  # fmt: skip
CHUNK_ROWS = 100_000  # rows converted at a time (a platform-sized table stays within memory)
NULL = "\x00NULL"  # stands for an empty CSV cell while comparing (never a stored value)
REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GENERATED_FROM, GENERATED_TO = dt.date(2026, 11, 25), dt.date(2026, 11, 27)
RERUN_FROM, RERUN_TO = dt.date(2026, 11, 25), dt.date(2026, 11, 26)
GENERATED_LOANS, GENERATED_SEED = 3000, 11


# --- dump -------------------------------------------------------------------------------------------------


def _utc_text(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, dt.datetime):
        moment: dt.datetime = value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite keeps no offset
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return _plain_text(value)


def _date_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            return str(value)
    return _plain_text(value)


def _bool_text(value: Any) -> str:
    if isinstance(value, bool | int):
        return "true" if value else "false"
    return _plain_text(value)


def _plain_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, dt.datetime | dt.date):
        return _utc_text(value) if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


def _converter(column: Any) -> Callable[[Any], str]:
    kind = column.type
    if isinstance(kind, DateTime):
        return _utc_text
    if isinstance(kind, Date):
        return _date_text
    if isinstance(kind, Boolean):
        return _bool_text
    return _plain_text


def dump_books(url: str, out: Path) -> dict[str, int]:
    """Write ``out/<table>.csv`` for each of the books' tables present; returns rows per table."""
    out.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    counts: dict[str, int] = {}
    try:
        metadata = MetaData()
        metadata.reflect(engine, only=lambda name, _meta: name in TABLES)
        with engine.connect() as conn:
            for name in TABLES:
                if name not in metadata.tables:
                    continue
                table = metadata.tables[name]
                columns = [c for c in table.c if c.name not in RUN_BOOKKEEPING]
                # the driver's own values (no result processing), normalised here the same way for both databases
                statement = select(*[type_coerce(c, NullType()).label(c.name) for c in columns])
                converters = [_converter(c) for c in columns]
                schema = {c.name: pl.String for c in columns}
                result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(statement)
                chunks = [
                    pl.DataFrame(
                        {
                            c.name: [None if row[i] is None else converters[i](row[i]) for row in rows]
                            for i, c in enumerate(columns)
                        },
                        schema=schema,
                    )
                    for rows in result.partitions()
                ]
                frame = pl.concat(chunks) if chunks else pl.DataFrame(schema=schema)
                del chunks
                if frame.height:
                    frame = frame.sort(frame.columns, nulls_last=False)
                frame.write_csv(out / f"{name}.csv", null_value="")
                counts[name] = frame.height
    finally:
        engine.dispose()
    return counts


# --- diff -------------------------------------------------------------------------------------------------


def _read_dump(path: Path) -> pl.DataFrame:
    frame = pl.read_csv(path, infer_schema=False)  # an empty cell is NULL, a quoted "" an empty text
    return frame.with_columns(pl.all().fill_null(NULL))


def _multiset(frame: pl.DataFrame) -> pl.DataFrame:
    if not frame.columns:
        return pl.DataFrame({"_n": [frame.height]}, schema={"_n": pl.Int64})
    return frame.group_by(frame.columns).agg(pl.len().cast(pl.Int64).alias("_n"))


def _surplus(a: pl.DataFrame, b: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Rows of ``a`` (with repetition) not matched by a row of ``b``."""
    counted_a, counted_b = _multiset(a), _multiset(b).rename({"_n": "_m"})
    if not columns:
        extra = max(counted_a["_n"][0] - counted_b["_m"][0], 0)
        return pl.DataFrame({"rows": [extra]}) if extra else pl.DataFrame()
    joined = counted_a.join(counted_b, on=columns, how="left").with_columns(pl.col("_m").fill_null(0))
    left = joined.filter(pl.col("_n") > pl.col("_m"))
    if left.height == 0:
        return left.select(columns)
    repeated = left.select(*columns, (pl.col("_n") - pl.col("_m")).alias("_k"))
    return (
        repeated.select(pl.all().exclude("_k").repeat_by(pl.col("_k")))
        .explode(columns)
        .sort(columns)
        .with_columns(pl.col(c).replace(NULL, None) for c in columns)
    )


def diff_dumps(folder_a: Path, folder_b: Path, full: bool = False, ignore: tuple[str, ...] = ()) -> bool:
    """Print per table whether the two dumps agree; True when every table in both is the same.
    ``ignore``: ``table.column`` left out on purpose (a change meant to alter that column)."""
    same_everywhere = True
    names_a = {p.stem for p in folder_a.glob("*.csv")}
    names_b = {p.stem for p in folder_b.glob("*.csv")}
    for name in sorted(names_a - names_b):
        print(f"{name}: only in {folder_a}")
    for name in sorted(names_b - names_a):
        print(f"{name}: only in {folder_b}")
    for name in [t for t in TABLES if t in names_a & names_b] + sorted((names_a & names_b) - set(TABLES)):
        a, b = _read_dump(folder_a / f"{name}.csv"), _read_dump(folder_b / f"{name}.csv")
        skipped = {i.split(".", 1)[1] for i in ignore if i.split(".", 1)[0] == name}
        columns = [c for c in a.columns if c in b.columns and c not in skipped]
        ignored = sorted((set(a.columns) ^ set(b.columns)) | (skipped & set(a.columns)))
        note = f" (compared {len(columns)} columns; left out: {', '.join(ignored)})" if ignored else ""
        a, b = a.select(columns), b.select(columns)
        if ignored and columns:  # a dump is sorted by all its columns: sort again by the shared ones
            a, b = a.sort(columns), b.sort(columns)
        if a.equals(b):  # the common case, and cheap
            print(f"{name}: same, {a.height} rows{note}")
            continue
        only_a, only_b = _surplus(a, b, columns), _surplus(b, a, columns)
        if only_a.height == 0 and only_b.height == 0:
            print(f"{name}: same, {a.height} rows{note}")
            continue
        same_everywhere = False
        print(f"{name}: DIFFERENT{note}: {only_a.height} rows only in A, {only_b.height} rows only in B")
        with pl.Config(tbl_rows=10, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=250):
            for label, rows in (("only in A", only_a), ("only in B", only_b)):
                if rows.height:
                    print(f"  first {min(rows.height, 10)} {label}:")
                    other = only_b if label == "only in A" else only_a
                    print(rows.head(10) if full else _differing_columns(rows.head(10), other))
    return same_everywhere


def _differing_columns(rows: pl.DataFrame, other: pl.DataFrame) -> pl.DataFrame:
    """Show every column when there are few, else the ones whose values differ from the other side
    (a changed value is easier to see without thirty equal columns around it)."""
    if rows.width <= 8 or other.height == 0:
        return rows
    varying = [
        c
        for c in rows.columns
        if rows[c].n_unique() > 1
        or other[c].n_unique() > 1
        or rows[c].cast(pl.String).fill_null(NULL)[0] != other[c].cast(pl.String).fill_null(NULL)[0]
    ]
    keep = list(dict.fromkeys(rows.columns[:2] + varying))
    return rows.select(keep)


# --- run-days ---------------------------------------------------------------------------------------------


def _recon() -> str:
    found = Path(sys.executable).parent / "recon"
    if not found.exists():
        raise SystemExit(f"no recon executable next to {sys.executable}")
    return str(found)


def _sample_data(given: Path | None) -> Path:
    if given is not None:
        return given.resolve()
    here = Path.cwd() / "sample_data"
    return (here if here.is_dir() else REPOSITORY / "sample_data").resolve()


def _call(
    args: list[str], env: dict[str, str], log: Path, allowed: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[str]:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(args[1:])}  # exit {done.returncode} in {time.perf_counter() - started:.1f}s\n")
        handle.write(done.stdout)
        handle.write(done.stderr)
        handle.write("\n")
    if done.returncode not in allowed:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"{' '.join(args[1:3])} exited {done.returncode} (log: {log})")
    return done


def _run_summary(done: subprocess.CompletedProcess[str]) -> str:
    try:
        summary = json.loads(done.stdout)
    except json.JSONDecodeError:
        return f"exit {done.returncode}"
    items = summary if isinstance(summary, list) else [summary]
    said = []
    for item in items:
        said.append(
            f"{item.get('business_date')} records={item.get('records')} balanced={item.get('balanced')}"
            f" timings={item.get('timings_s')}"
        )
    return "; ".join(said)


@contextmanager
def _fresh_database(kind: str, home: Path, admin_url: str, prefix: str, label: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{home / 'recon.db'}"
        return
    name = f"{prefix}{label}_{uuid.uuid4().hex[:8]}".lower()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _environment(home: Path, url: str, inbox: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    env.update(RECON_HOME=str(home), RECON_DATABASE_URL=url, RECON_INBOX=str(inbox))
    return env


def _one_day(
    args: argparse.Namespace, label: str, snapshot: Path, inbox: Path, dates: list[dt.date], out: Path,
    generate: Callable[[dict[str, str], Path], None] | None = None, rerun: tuple[dt.date, dt.date] | None = None,
) -> None:  # fmt: skip
    clock = time.perf_counter()
    recon = _recon()
    with tempfile.TemporaryDirectory(prefix=f"books_{label}_") as temp:
        home = Path(temp)
        log = out.parent / f"{label}.log"
        log.unlink(missing_ok=True)
        with _fresh_database(args.database, home, args.pg_admin_url, args.pg_prefix, label) as url:
            env = _environment(home, url, inbox)
            if generate is not None:
                generate(env, log)
            _call([recon, "init"], env, log)
            _call([recon, "import-expected", str(snapshot)], env, log)
            for day in dates:
                done = _call([recon, "run", "--date", day.isoformat(), "--json", "--no-workbook"], env, log, (0, 3))
                print(f"  {label}: run {_run_summary(done)}", flush=True)
            if rerun is not None:
                done = _call([recon, "rerun", "--from", rerun[0].isoformat(), "--to", rerun[1].isoformat(), "--json"],
                             env, log, (0, 3))  # fmt: skip
                print(f"  {label}: rerun {_run_summary(done)}", flush=True)
            counts = dump_books(url, out)
    print(f"{args.database}/{label}: dumped {counts} in {time.perf_counter() - clock:.1f}s", flush=True)


def _golden_days(sample_data: Path) -> Iterator[tuple[str, Path, Path, dt.date]]:
    for folder in sorted(p for p in (sample_data / "golden").iterdir() if p.is_dir()):
        dates = sorted(p.name for p in (folder / "inbox").iterdir() if p.is_dir())
        if not (folder / "snapshot").is_dir() or len(dates) != 1:
            raise SystemExit(f"{folder}: expected snapshot/ and exactly one inbox/<date>/")
        yield folder.name, folder / "snapshot", folder / "inbox", dt.date.fromisoformat(dates[0])


def run_days(args: argparse.Namespace) -> None:
    sample_data = _sample_data(args.sample_data)
    root = args.out.resolve() / args.database
    root.mkdir(parents=True, exist_ok=True)
    print(f"recon: {_recon()}  sample data: {sample_data}  → {root}", flush=True)
    if not (args.golden or args.demo or args.generated):
        raise SystemExit("say which days: --golden, --demo and/or --generated")
    if args.golden:
        for name, snapshot, inbox, day in _golden_days(sample_data):
            _one_day(args, name, snapshot, inbox, [day], root / name)
    if args.demo:
        demo = sample_data / "demo"
        day = dt.date.fromisoformat((demo / "business_date.txt").read_text().strip())
        _one_day(args, "demo", demo / "snapshot", demo / "inbox", [day], root / "demo")
    if args.generated:
        with tempfile.TemporaryDirectory(prefix="books_generated_inputs_") as temp:
            inputs = (args.generated_inputs or Path(temp) / "generated").resolve()

            def generate(env: dict[str, str], log: Path) -> None:
                if (inputs / "snapshot").is_dir():
                    print(f"  generated: reusing inputs in {inputs}", flush=True)
                    return
                _call(
                    [_recon(), "generate", "--from", GENERATED_FROM.isoformat(), "--to", GENERATED_TO.isoformat(),
                     "--loans", str(GENERATED_LOANS), "--seed", str(GENERATED_SEED), "--out", str(inputs)],
                    env, log,
                )  # fmt: skip
                print(f"  generated: inputs written to {inputs}", flush=True)

            days = [GENERATED_FROM + dt.timedelta(days=i) for i in range((GENERATED_TO - GENERATED_FROM).days + 1)]
            _one_day(args, "generated", inputs / "snapshot", inputs / "inbox", days, root / "generated",
                     generate=generate, rerun=(RERUN_FROM, RERUN_TO))  # fmt: skip


# --- command line -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    dump = commands.add_parser("dump", help="write DIR/<table>.csv for the books of a database")
    dump.add_argument("--url", required=True, help="SQLAlchemy URL of the database")
    dump.add_argument("--out", required=True, type=Path)
    diff = commands.add_parser("diff", help="compare two dump folders (columns present in both); exit 1 if any differ")
    diff.add_argument("folder_a", type=Path)
    diff.add_argument("folder_b", type=Path)
    diff.add_argument("--full", action="store_true", help="every column of differing rows (default: those that vary)")
    diff.add_argument("--ignore", action="append", default=[], metavar="TABLE.COLUMN",
                      help="leave a column out of the comparison (a change meant to alter it); repeatable")  # fmt: skip
    days = commands.add_parser("run-days", help="run sample days into fresh databases and dump each")
    days.add_argument("--out", required=True, type=Path)
    days.add_argument("--database", required=True, choices=("sqlite", "postgresql"))
    days.add_argument("--golden", action="store_true", help="every day under sample_data/golden/")
    days.add_argument("--demo", action="store_true", help="sample_data/demo")
    generated = (
        f"generate {GENERATED_FROM}..{GENERATED_TO} ({GENERATED_LOANS} loans, seed {GENERATED_SEED}), "
        f"run each date, then rerun {RERUN_FROM}..{RERUN_TO} (it cascades)"
    )
    days.add_argument("--generated", action="store_true", help=generated)
    days.add_argument(
        "--generated-inputs",
        type=Path,
        default=None,
        help="folder for the generated inputs: reused if it has them, else written there and kept",
    )
    days.add_argument(
        "--sample-data",
        type=Path,
        default=None,
        help="default: ./sample_data when present, else the one of this file's repository",
    )
    days.add_argument(
        "--pg-admin-url",
        default=os.environ.get("COMPARE_BOOKS_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL),
        help="PostgreSQL URL used to create and drop the per-day databases",
    )
    days.add_argument("--pg-prefix", default="books_", help="name prefix of the per-day PostgreSQL databases")
    args = parser.parse_args(argv)
    if args.command == "dump":
        counts = dump_books(args.url, args.out)
        print(" ".join(f"{name}={rows}" for name, rows in counts.items()))
        return 0
    if args.command == "diff":
        return 0 if diff_dumps(args.folder_a, args.folder_b, args.full, tuple(args.ignore)) else 1
    run_days(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
