"""The whole night, discover → workbook, on each database, written up as docs/PERFORMANCE.md.

One command generates the days, builds a database per size and database (``recon init`` and the
snapshot import: "onboarding", timed apart), runs the night in a child process of this script (so
the peak memory is the night's), measures the baselines in the same script and writes
``docs/PERFORMANCE.md`` (the section "Notes from the engineers" of an existing file is kept as it
is). Usage:

    .venv/bin/python bench/bench_night.py                    # 1m on sqlite and postgresql + baselines
    .venv/bin/python bench/bench_night.py --sizes 1m,5m --databases sqlite,postgresql
    .venv/bin/python bench/bench_night.py --quick            # 100k, both databases, 10 days of 20k: minutes
    .venv/bin/python bench/bench_night.py --render a.json --render b.json   # the report again, merged

Needs the ``bench`` extra: ``.venv/bin/pip install -e '.[bench]'`` (ADBC and pyarrow are the product's own).

Every measured night starts from its own copy of the imported database (``CREATE DATABASE …
TEMPLATE`` on PostgreSQL, a file copy on SQLite) and runs ``--repeat`` times (default 2); the fastest
counts, because the machine is shared. What is measured:

- the night: ``flows.runner.reconcile_dates(config, [day], workbook=True)`` in a child process; its
  wall time, the run's own ``timings_s`` per stage, validation (time inside pandera's
  ``_validate``, measured by wrapping it) split from parsing, the rows the load stage returned, the
  child's peak RSS (``VmHWM``);
- the fixed cost of an empty day (the day before, no files) the same way, and through ``recon run``
  (the Prefect flow with its temporary server) — the difference is the Prefect cost;
- settlement writes against a plain ``COPY … FROM STDIN`` of the same rows (the date's
  ``channel_records`` and ``settlement_ledger``, copied out after the night) into fresh tables of the
  same definition (PostgreSQL);
- the load stage against a plain ADBC read (``adbc-driver-postgresql`` + pyarrow) of the rows it
  needs (PostgreSQL);
- parsing against polars' plain ``read_csv`` of the same files, already decoded to UTF-8;
- the matcher: ``bench/bench_matcher.py`` as a subprocess, its ratios parsed;
- a rerun of many days (default 31 of about 100k records, on PostgreSQL): each day run once in
  order, then all of them again in one ``reconcile_dates`` call against 31× a rerun of the last day.

Record counts come from ``recon generate``: at 1 attempt a steady book yields about 0.734 records
per loan, each extra attempt about 0.382 more (measured at 20k loans); sizes up to 1.5M records are
a book of that many records at 1 attempt, larger ones are the 2,000,000-loan book with more
attempts (month-end is more attempts from the same book, not more loans).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "PERFORMANCE.md"
BIN = Path(sys.executable).parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_HOST = "postgresql+psycopg://postgres@127.0.0.1:5432/"
DAY = dt.date(2026, 11, 27)
EMPTY_DAY = DAY - dt.timedelta(days=1)
RERUN_FIRST = dt.date(2026, 11, 1)
RECORDS_PER_LOAN = 0.734  # recon generate, 1 attempt, paid history
RECORDS_PER_EXTRA_ATTEMPT = 0.382
BIG_BOOK_LOANS = 2_000_000
RERUN_ATTEMPTS = 5  # 100k-record days from a book of about 1.4M loans, not 4.2M
NOTES_HEADING = "## Notes from the engineers"
READ_ROWS = "load: read rows (ADBC on PostgreSQL, driver tuples on SQLite)"
STAGES = ("discover", "parse", "validate", "load", "match", "write", "archive", "summarise", "workbook")
GIB = 1024.0


# ------------------------------------------------------------------------------------------ child


WRITE_MARKS = ("start", "after_delete", "after_records", "after_ledger", "after_installments", "before_commit",
               "after_commit")  # fmt: skip
WRITE_PHASES = ("read ledger before + delete the date", "COPY channel records", "COPY ledger",
                "register files + installment state", "loan status + exceptions", "commit")  # fmt: skip


def child(mode: str, days: list[dt.date]) -> None:
    """Run the days in this process (environment: RECON_*) and print one JSON line of facts.

    Inner costs are measured by wrapping the product's functions (nothing else changes): pandera's
    ``_validate``; in load, staging keys and reading rows; in write, the time between the write
    stage's fault checkpoints and the helpers it calls; in the workbook, the query and the xlsx.
    """
    sys.path.insert(0, str(REPO))
    from peak import peak_mib  # bench/peak.py, beside this script

    import flows.runner as runner
    import flows.runs as runs_module
    import flows.stages.write as write_module
    import flows.store as store_module
    import reconcile.ingest as ingest
    from flows.config import load_config
    from flows.runner import Stages, discover_files, load_expected_state, reconcile_dates

    current: dict[str, str] = {"day": "?"}
    detail: dict[str, dict[str, float]] = {}

    def bucket() -> dict[str, float]:
        return detail.setdefault(current["day"], {})

    def instrument(module: Any, name: str, key: str, rows: Callable[..., int] | None = None) -> None:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            clock = time.perf_counter()
            try:
                result = original(*args, **kwargs)
                if rows is not None:
                    bucket()[f"{key} rows"] = bucket().get(f"{key} rows", 0) + rows(args, result)
                return result
            finally:
                bucket()[key] = bucket().get(key, 0.0) + time.perf_counter() - clock

        setattr(module, name, wrapper)

    def mark(name: str) -> None:
        bucket()[f"mark {name}"] = time.perf_counter()

    instrument(ingest, "_validate", "parse: pandera validation")
    # the load stage's reads (flows.store.reading: ADBC on PostgreSQL, the driver's tuples on SQLite)
    for reads_class in (store_module._AdbcReads, store_module._ConnectionReads):
        instrument(reads_class, "stage", "load: stage keys (temporary tables)", lambda a, r: a[2].height)
        instrument(reads_class, "read", READ_ROWS, lambda a, r: r.height)
    instrument(runner, "match_day", "match: match_day (passes, settlement, rules)")
    instrument(runner, "all_outcomes", "match: all_outcomes (explain, invalid lines, files)")
    for name in ("write_installment_state", "write_crossed_grace", "write_loan_status", "write_exceptions"):
        instrument(write_module, name, f"write: {name}")
    instrument(write_module, "insert_frame", "write: insert_frame (COPY in)", lambda a, r: a[2].height)
    instrument(write_module, "update_from_frame", "write: update_from_frame (stage + UPDATE)", lambda a, r: r)
    instrument(write_module, "read_frame", "write: read_frame (COPY TO)", lambda a, r: r.height)
    instrument(runs_module, "exceptions_for_workbook", "workbook: exceptions query", lambda a, r: r.height)
    instrument(runner, "write_workbook", "workbook: xlsx + detail csv")
    write_module.checkpoint = mark  # type: ignore[assignment]
    runner.checkpoint = mark  # type: ignore[assignment]
    original_write_day = runner.write_day

    def write_day(*args: Any, **kwargs: Any) -> Any:
        mark("start")
        return original_write_day(*args, **kwargs)

    runner.write_day = write_day  # type: ignore[assignment]
    per_day: dict[str, dict[str, Any]] = {}

    def discover(config: Any, day: dt.date) -> Any:
        current["day"] = day.isoformat()
        detail[current["day"]] = {}
        return discover_files(config, day)

    def load(config: Any, day: dt.date, parsed: Any) -> Any:
        state = load_expected_state(config, day, parsed)
        per_day.setdefault(day.isoformat(), {})["load_rows"] = {
            "instructions": state.instructions.height,
            "installments": state.installments.height,
            "loans": state.loans.height,
            "prior_payments": state.prior_payments.height,
        }
        return state

    def finish(day: str) -> dict[str, Any]:
        spent = detail.get(day, {})
        marks = [float(spent[f"mark {m}"]) for m in WRITE_MARKS if f"mark {m}" in spent]
        phases: dict[str, float] = {}
        if len(marks) == len(WRITE_MARKS):
            phases = {p: b - a for p, a, b in zip(WRITE_PHASES, marks, marks[1:], strict=False)}
        inner = {k: v for k, v in spent.items() if not k.startswith("mark ")}
        return {"validate_s": spent.get("parse: pandera validation", 0.0), "detail": inner, "write_phases": phases,
                **per_day.get(day, {})}  # fmt: skip

    config = load_config(dict(os.environ))
    stages = Stages(discover=discover, load=load)
    out: list[dict[str, Any]] = []
    started = time.perf_counter()
    groups = [[d] for d in days] if mode in ("each", "single") else [days]
    for group in groups:
        clock = time.perf_counter()
        summaries = reconcile_dates(config, group, workbook=True, cascade=mode != "single", stages=stages)
        wall = time.perf_counter() - clock
        for summary in summaries:
            extra = finish(summary["business_date"])
            out.append(
                {
                    "day": summary["business_date"],
                    "wall_s": wall if len(group) == 1 else None,
                    "timings_s": summary["timings_s"],
                    "records": summary["records"],
                    "balanced": summary["balanced"],
                    "rows": summary["rows"],
                    "exceptions_open": summary.get("exceptions_open"),
                    **extra,
                }
            )
    print(json.dumps({"wall_s": time.perf_counter() - started, "days": out, "peak_mib": peak_mib()}))


# ------------------------------------------------------------------------------------------ helpers


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def count(label: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", label.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {label} (like 100k, 1m, 5m)")
    return int(float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)])


@dataclass(frozen=True)
class Shape:
    label: str
    target: int
    loans: int
    attempts: int


def shape_for(label: str) -> Shape:
    target = count(label)
    if target <= 1_500_000:
        return Shape(label, target, max(1, round(target / RECORDS_PER_LOAN)), 1)
    extra = (target / BIG_BOOK_LOANS - RECORDS_PER_LOAN) / RECORDS_PER_EXTRA_ATTEMPT
    return Shape(label, target, BIG_BOOK_LOANS, max(1, round(1 + extra)))


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> tuple[float, str, str, int]:
    clock = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - clock
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-4000:]}\n{done.stdout[-2000:]}")
    return wall, done.stdout, done.stderr, done.returncode


def no_paths(text: str) -> str:
    """``text`` with every absolute path (a work folder, a results file) said as ``WORK``: the
    report speaks of the project, not of the machine it ran on."""
    return re.sub(r"(?<![\w.])/[^\s`'\")]+", "WORK", text)


def last_json(text: str) -> dict[str, Any]:
    """The last JSON object printed (one line, or pretty-printed over several)."""
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return dict(json.loads(line))
            except json.JSONDecodeError:
                break
    decoder = json.JSONDecoder()
    for found in reversed([m.start() for m in re.finditer(r"^\{", text, re.M)]):
        try:
            return dict(decoder.raw_decode(text[found:])[0])
        except json.JSONDecodeError:
            continue
    return {}


@contextmanager
def pg(dbname: str = "postgres", autocommit: bool = True) -> Iterator[Any]:
    import psycopg

    conn = psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{dbname}", autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


@dataclass
class Database:
    kind: str  # sqlite | postgresql
    name: str  # database name (postgresql) or tag
    home: Path

    @property
    def url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.home / 'recon.db'}"
        return PG_HOST + self.name


class Bench:
    def __init__(self, work: Path, repeat: int) -> None:
        self.work = work
        self.repeat = repeat
        self.created: list[str] = []
        self.prefect_home = work / "prefect-home"

    # databases -----------------------------------------------------------------------------------

    def _fresh(self, kind: str, tag: str) -> Database:
        """A database's name and an empty home folder for it (an old one of the same tag removed)."""
        home = self.work / "homes" / f"{kind}-{tag}"
        if home.exists():
            shutil.rmtree(home)
        home.mkdir(parents=True)
        return Database(kind, f"bench_night_{tag}".replace("-", "_").lower(), home)

    def database(self, kind: str, tag: str) -> Database:
        db = self._fresh(kind, tag)
        name = db.name
        if kind == "postgresql":
            self.drop(db)
            with pg() as conn:
                conn.execute(f"CREATE DATABASE {name}")
            self.created.append(name)
        return db

    def clone(self, base: Database, tag: str) -> Database:
        db = self._fresh(base.kind, tag)
        name, home = db.name, db.home
        if base.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                source = base.home / f"recon.db{suffix}"
                if source.exists():
                    shutil.copyfile(source, home / f"recon.db{suffix}")
        else:
            self.drop(db)
            with pg() as conn:
                conn.execute(f"CREATE DATABASE {name} TEMPLATE {base.name}")
            self.created.append(name)
        return db

    def drop(self, db: Database) -> None:
        if db.kind == "postgresql":
            with pg() as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")
            if db.name in self.created:
                self.created.remove(db.name)
        if db.home.exists():
            shutil.rmtree(db.home, ignore_errors=True)

    def drop_all(self) -> None:
        for name in list(self.created):
            with pg() as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self.created.remove(name)

    def env(self, db: Database, inbox: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and not k.startswith("RECON_")}
        env.update(
            RECON_HOME=str(db.home),
            RECON_DATABASE_URL=db.url,
            RECON_INBOX=str(inbox),
            PREFECT_HOME=str(self.prefect_home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90",
            PYTHONPATH=str(REPO),
        )
        return env

    # steps ---------------------------------------------------------------------------------------

    def generate(self, out: Path, loans: int, attempts: int, first: dt.date, last: dt.date) -> dict[str, Any]:
        if out.exists():
            shutil.rmtree(out)
        span = ["--from", first.isoformat(), "--to", last.isoformat()]
        days = ["--date", first.isoformat()] if first == last else span
        cmd = [str(BIN / "recon"), "generate", *days, "--loans", str(loans), "--seed", "1",
               "--attempts", str(attempts), "--out", str(out)]  # fmt: skip
        wall, stdout, _, _ = run(cmd)
        found = re.search(r"(\d+) loans, (\d+) instructions, (\d+) records", stdout)
        facts = {"wall_s": wall, "loans": loans, "attempts": attempts, "printed": stdout.strip()}
        if found:
            facts.update(instructions=int(found.group(2)), records=int(found.group(3)))
        log(f"generate: {stdout.strip()} ({wall:.1f} s)")
        return facts

    def onboard(self, db: Database, snapshot: Path, inbox: Path) -> dict[str, Any]:
        env = self.env(db, inbox)
        init_s, _, _, _ = run([str(BIN / "recon"), "init"], env)
        import_s, stdout, _, _ = run([str(BIN / "recon"), "import-expected", str(snapshot)], env)
        facts: dict[str, Any] = {"init_s": init_s, "import_s": import_s, "printed": stdout.strip()}
        if db.kind == "postgresql":
            clock = time.perf_counter()
            with pg(db.name) as conn:
                conn.execute("VACUUM (ANALYZE)")
            facts["vacuum_analyze_s"] = time.perf_counter() - clock
            with pg(db.name) as conn:
                facts["size_bytes"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        else:
            facts["size_bytes"] = (db.home / "recon.db").stat().st_size
        log(f"onboard {db.kind} {db.name}: {stdout.strip()} import {import_s:.1f} s")
        return facts

    def night(self, db: Database, inbox: Path, days: list[dt.date], mode: str = "each") -> dict[str, Any]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode,
               "--days", ",".join(d.isoformat() for d in days)]  # fmt: skip
        wall, stdout, _, _ = run(cmd, self.env(db, inbox))
        facts = last_json(stdout)
        facts["process_wall_s"] = wall
        return facts

    def recon_run(self, db: Database, inbox: Path, day: dt.date) -> dict[str, Any]:
        cmd = [str(BIN / "recon"), "run", "--date", day.isoformat(), "--json"]
        wall, stdout, stderr, code = run(cmd, self.env(db, inbox), check=False)
        if code not in (0, 3, 5):  # 5: the inbox folder of the date is missing (an empty day)
            raise RuntimeError(f"recon run failed ({code}): {stderr[-3000:]}")
        summary = last_json(stdout) if stdout.strip() else {}
        return {"process_wall_s": wall, "exit": code, "timings_s": summary.get("timings_s", {})}


# ------------------------------------------------------------------------------------------ baselines


def copy_baseline(dbname: str, day: dt.date) -> dict[str, Any]:
    """The date's channel records and ledger copied out, then a plain COPY FROM STDIN of the same
    bytes into fresh tables of the same definition (indexes included), each in its own transaction."""
    facts: dict[str, Any] = {"tables": {}}
    total = 0.0
    with pg(dbname) as conn:
        for table in ("channel_records", "settlement_ledger"):
            buffer = bytearray()
            with conn.cursor() as cursor:
                query = f"COPY (SELECT * FROM {table} WHERE business_date = '{day.isoformat()}') TO STDOUT"
                with cursor.copy(query) as copy:
                    for block in copy:
                        buffer += block
            rows = buffer.count(b"\n")
            fresh = f"bench_copy_{table}"
            conn.execute(f"DROP TABLE IF EXISTS {fresh}")
            conn.execute(f"CREATE TABLE {fresh} (LIKE {table} INCLUDING ALL)")
            conn.autocommit = False
            clock = time.perf_counter()
            with conn.cursor() as cursor:
                with cursor.copy(f"COPY {fresh} FROM STDIN") as copy:
                    copy.write(bytes(buffer))
            conn.commit()
            seconds = time.perf_counter() - clock
            conn.autocommit = True
            conn.execute(f"DROP TABLE {fresh}")
            facts["tables"][table] = {"rows": rows, "bytes": len(buffer), "seconds": seconds}
            total += seconds
    facts["seconds"] = total
    facts["rows"] = sum(t["rows"] for t in facts["tables"].values())
    return facts


def adbc_baseline(dbname: str, day: dt.date, window_days: int = 3) -> dict[str, Any]:
    """A plain ADBC read of what the date needs: instructions requested in its window (or named by
    its records), their installments and every installment of a contract a memo paid, what the
    ledger paid on them before the date, their loans.

    The keys (installments, contracts) are first put in temporary tables on the server, untimed and
    reported apart: what is timed is reading the rows, as the product's load must, not finding the
    keys (which the product gets from the day's files)."""
    import adbc_driver_postgresql.dbapi as adbc
    import polars as pl

    from reconcile.settings import business_date_bounds_utc

    start, end = business_date_bounds_utc(day)
    window = start - dt.timedelta(days=window_days)
    d = day.isoformat()
    instructions = f"""
        SELECT instruction_id, contract_no, installment_no, channel, account, amount_fen, requested_at,
               platform_status, platform_code
        FROM debit_instructions
        WHERE (requested_at >= '{window.isoformat()}' AND requested_at < '{end.isoformat()}')
           OR instruction_id IN (SELECT reference FROM channel_records WHERE business_date = '{d}'
                                  AND reference IS NOT NULL)"""
    keys = f"""
        SELECT contract_no, installment_no FROM ({instructions}) i
        UNION SELECT contract_no, installment_no FROM installments WHERE contract_no IN
          (SELECT contract_no FROM channel_records WHERE business_date = '{d}' AND match_pass = 'borrower_memo')"""
    parts = ("principal", "interest", "fee", "penalty")
    queries = {
        "instructions": instructions,
        "installments": f"""
            SELECT t.contract_no, t.installment_no, t.due_date,
                   {", ".join(f"t.{p}_due_fen" for p in parts)}, {", ".join(f"t.opening_{p}_paid_fen" for p in parts)}
            FROM installments t JOIN bench_keys k USING (contract_no, installment_no)""",
        "paid": f"""
            SELECT l.contract_no, l.installment_no, {", ".join(f"sum(l.{p}_fen) AS {p}_paid_fen" for p in parts)}
            FROM settlement_ledger l JOIN bench_keys k USING (contract_no, installment_no)
            WHERE l.business_date < '{d}' GROUP BY l.contract_no, l.installment_no""",
        "loans": """
            SELECT l.contract_no, l.bound_channel, l.bound_account, l.grace_days
            FROM loans l JOIN bench_contracts c USING (contract_no)""",
    }
    facts: dict[str, Any] = {"rows": {}, "query_s": {}}
    with adbc.connect(f"postgresql://postgres@127.0.0.1:5432/{dbname}") as conn:
        clock = time.perf_counter()
        with conn.cursor() as cursor:
            for statement in (
                f"CREATE TEMPORARY TABLE bench_keys AS {keys}",
                "CREATE TEMPORARY TABLE bench_contracts AS SELECT DISTINCT contract_no FROM bench_keys",
                "ANALYZE bench_keys",
                "ANALYZE bench_contracts",
            ):
                cursor.execute(statement)
        facts["keys_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        for name, sql in queries.items():
            part = time.perf_counter()
            with conn.cursor() as cursor:
                cursor.execute(sql)
                frame = pl.DataFrame(pl.from_arrow(cursor.fetch_arrow_table()))
            facts["query_s"][name] = time.perf_counter() - part
            facts["rows"][name] = frame.height
    facts["seconds"] = time.perf_counter() - clock
    return facts


def parse_baseline(inbox_day: Path) -> dict[str, Any]:
    """polars' plain ``read_csv`` of the day's files, decoded to UTF-8 beforehand (decode timed apart,
    through the product's decoder)."""
    import io

    import polars as pl

    from reconcile.gb18030 import gb18030_to_utf8

    decoded: list[bytes] = []
    clock = time.perf_counter()
    for path in sorted(inbox_day.iterdir()):
        decoded.append(gb18030_to_utf8(path.read_bytes()))
    decode_s = time.perf_counter() - clock
    clock = time.perf_counter()
    lines = 0
    for data in decoded:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False, has_header=False, separator="\x1f", quote_char=None)
        lines += frame.height
    return {"read_s": time.perf_counter() - clock, "decode_s": decode_s, "lines": lines,
            "bytes": sum(len(d) for d in decoded)}  # fmt: skip


def best(runs: list[dict[str, Any]], key: str = "seconds") -> dict[str, Any]:
    chosen = dict(min(runs, key=lambda r: r[key]))
    chosen["all"] = [r[key] for r in runs]
    return chosen


MATCHER_LINE = re.compile(
    r"^\s+(\w+)\s+([\d.]+) s\s+([\d.]+)x polars\s+\(first run\s+([\d.]+) s\)\s+peak\s+([\d.]+) MiB"
)


def matcher(records: int, repeat: int) -> dict[str, Any]:
    cmd = [sys.executable, str(REPO / "bench" / "bench_matcher.py"), "--records", str(records), "--repeat", str(repeat)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    wall, stdout, _, _ = run(cmd, env)
    facts: dict[str, Any] = {"asked": records, "wall_s": wall, "engines": {}, "output": stdout.strip()}
    head = re.search(r"^(\d+) records .* agree across engines: (\w+)", stdout, re.M)
    if head:
        facts["records"], facts["agree"] = int(head.group(1)), head.group(2) == "True"
    for line in stdout.splitlines():
        found = MATCHER_LINE.match(line)
        if found:
            facts["engines"][found.group(1)] = {
                "seconds": float(found.group(2)), "ratio": float(found.group(3)),
                "first_s": float(found.group(4)), "peak_mib": float(found.group(5)),
            }  # fmt: skip
    return facts


# ------------------------------------------------------------------------------------------ plan


def night_facts(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of the attempts, by the wall time of ``reconcile_dates`` in the child."""
    chosen = min(attempts, key=lambda a: a["days"][0]["wall_s"])
    day = chosen["days"][0]
    t = day["timings_s"]
    stages = {
        "discover": t.get("discover", 0.0),
        "parse": t.get("parse_validate", 0.0) - day.get("validate_s", 0.0),
        "validate": day.get("validate_s", 0.0),
        "load": t.get("load", 0.0),
        "match": t.get("match", 0.0),
        "write": t.get("write", 0.0),
        "archive": t.get("archive", 0.0),
        "summarise": t.get("summarise", 0.0),
        "workbook": t.get("workbook", 0.0),
    }
    wall = day["wall_s"]
    return {
        "wall_s": wall,
        "walls": [a["days"][0]["wall_s"] for a in attempts],
        "process_wall_s": chosen["process_wall_s"],
        "stages": stages,
        "other_s": wall - sum(stages.values()),
        "records": day["records"],
        "balanced": day["balanced"],
        "rows": day["rows"],
        "load_rows": day.get("load_rows", {}),
        "peak_mib": chosen["peak_mib"],
        "peaks": [a["peak_mib"] for a in attempts],
        "detail": day.get("detail", {}),
        "write_phases": day.get("write_phases", {}),
    }


def measure_size(bench: Bench, shape: Shape, databases: list[str], results: dict[str, Any], save: Callable[[], None],
                 prefect: bool) -> None:  # fmt: skip
    gen = bench.work / f"gen-{shape.label}"
    entry: dict[str, Any] = {"shape": shape.__dict__}
    results["sizes"][shape.label] = entry
    entry["generate"] = bench.generate(gen, shape.loans, shape.attempts, DAY, DAY)
    entry["parse_baseline"] = best([parse_baseline(gen / "inbox" / DAY.isoformat()) for _ in range(2)], "read_s")
    entry["databases"] = {}
    save()
    for kind in databases:
        facts: dict[str, Any] = {}
        entry["databases"][kind] = facts
        base = bench.database(kind, f"{shape.label}_base")
        try:
            facts["onboarding"] = bench.onboard(base, gen / "snapshot", gen / "inbox")
            # the book's first night (the day before, no files) turns what its history left open past
            # its grace OVERDUE: onboarding, not a night; every measured night after it is a steady one
            first = bench.night(base, gen / "inbox", [EMPTY_DAY])
            facts["onboarding"]["first_night_s"] = first["days"][0]["wall_s"]
            facts["onboarding"]["first_night_timings_s"] = first["days"][0]["timings_s"]
            log(f"first night {shape.label} {kind} (empty, the history's grace): {first['days'][0]['wall_s']:.2f} s")
            save()
            attempts = []
            kept: Database | None = None
            for i in range(bench.repeat):
                copy = bench.clone(base, f"{shape.label}_night{i}")
                attempt = bench.night(copy, gen / "inbox", [DAY])
                attempts.append(attempt)
                log(f"night {shape.label} {kind} #{i + 1}: {attempt['days'][0]['wall_s']:.2f} s "
                    f"{attempt['days'][0]['timings_s']} peak {attempt['peak_mib']:.0f} MiB")  # fmt: skip
                if kept is None or attempt["days"][0]["wall_s"] <= min(a["days"][0]["wall_s"] for a in attempts):
                    if kept is not None:
                        bench.drop(kept)
                    kept = copy
                else:
                    bench.drop(copy)
            facts["night"] = night_facts(attempts)
            save()
            if kind == "postgresql" and kept is not None:
                facts["copy_baseline"] = best([copy_baseline(kept.name, DAY) for _ in range(2)])
                facts["adbc_baseline"] = best([adbc_baseline(kept.name, DAY) for _ in range(2)])
                log(f"baselines: COPY {facts['copy_baseline']['seconds']:.2f} s, "
                    f"ADBC {facts['adbc_baseline']['seconds']:.2f} s")  # fmt: skip
            if kept is not None:
                bench.drop(kept)
            empty = bench.clone(base, f"{shape.label}_empty")
            runs = [bench.night(empty, gen / "inbox", [EMPTY_DAY]) for _ in range(bench.repeat)]
            facts["empty"] = {
                "wall_s": min(r["days"][0]["wall_s"] for r in runs),
                "walls": [r["days"][0]["wall_s"] for r in runs],
                "process_wall_s": min(r["process_wall_s"] for r in runs),
                "timings_s": min(runs, key=lambda r: r["days"][0]["wall_s"])["days"][0]["timings_s"],
            }
            if prefect:
                flows = [bench.recon_run(empty, gen / "inbox", EMPTY_DAY) for _ in range(bench.repeat)]
                facts["prefect"] = {
                    "process_wall_s": min(f["process_wall_s"] for f in flows),
                    "walls": [f["process_wall_s"] for f in flows],
                    "timings_s": min(flows, key=lambda f: f["process_wall_s"])["timings_s"],
                }
            log(f"empty day {kind}: {facts['empty']}; prefect {facts.get('prefect')}")
            bench.drop(empty)
            save()
        finally:
            bench.drop(base)
    shutil.rmtree(gen, ignore_errors=True)


def measure_rerun(bench: Bench, days: int, per_day: int, kind: str, results: dict[str, Any],
                  save: Callable[[], None]) -> None:  # fmt: skip
    first, last = RERUN_FIRST, RERUN_FIRST + dt.timedelta(days=days - 1)
    per_loan = RECORDS_PER_LOAN + (RERUN_ATTEMPTS - 1) * RECORDS_PER_EXTRA_ATTEMPT
    loans = round(days * per_day / per_loan)
    gen = bench.work / "gen-rerun"
    facts: dict[str, Any] = {"days": days, "per_day_target": per_day, "database": kind}
    results["rerun"] = facts
    facts["generate"] = bench.generate(gen, loans, RERUN_ATTEMPTS, first, last)
    base = bench.database(kind, "rerun")
    try:
        facts["onboarding"] = bench.onboard(base, gen / "snapshot", gen / "inbox")
        dates = [first + dt.timedelta(days=i) for i in range(days)]
        firsts = bench.night(base, gen / "inbox", dates, "each")
        facts["first_pass"] = [
            {"day": d["day"], "wall_s": d["wall_s"], "records": d["records"]} for d in firsts["days"]
        ]
        log(f"rerun: first pass {sum(d['wall_s'] for d in firsts['days']):.1f} s")
        save()
        together = bench.night(base, gen / "inbox", dates, "together")
        facts["all"] = {
            "wall_s": together["wall_s"],
            "process_wall_s": together["process_wall_s"],
            "peak_mib": together["peak_mib"],
            "per_day_stage_sum_s": [sum(d["timings_s"].values()) for d in together["days"]],
            "records": [d["records"] for d in together["days"]],
            "days": [{"timings_s": d["timings_s"], "detail": d.get("detail", {})} for d in together["days"]],
        }
        # one day rerun alone: the first (least history; without the cascade to the later days, which
        # is the whole range again) and the last (all the history), each --repeat times, fastest kept
        for key, day in (("one_first", first), ("one", last)):
            ones = [bench.night(base, gen / "inbox", [day], "single") for _ in range(bench.repeat)]
            facts[key] = {"day": day.isoformat(), "wall_s": min(o["days"][0]["wall_s"] for o in ones),
                          "walls": [o["days"][0]["wall_s"] for o in ones]}  # fmt: skip
        log(f"rerun: all {together['wall_s']:.1f} s, first day {facts['one_first']['wall_s']:.2f} s, "
            f"last day {facts['one']['wall_s']:.2f} s")  # fmt: skip
        save()
    finally:
        bench.drop(base)
        shutil.rmtree(gen, ignore_errors=True)


# ------------------------------------------------------------------------------------------ machine


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": len(os.sched_getaffinity(0)), "platform": platform.platform()}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            info["memory_gib"] = int(line.split()[1]) / 1024 / 1024
    info["loadavg_start"] = os.getloadavg()
    versions = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for package in ("polars", "pandera", "SQLAlchemy", "psycopg", "prefect", "openpyxl", "pyarrow",
                    "adbc-driver-postgresql", "adbc-driver-manager", "duckdb", "pandas"):  # fmt: skip
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    try:
        with pg() as conn:
            versions["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as error:  # the report still says what is missing
        versions["postgresql"] = f"unreachable ({error})"
    info["versions"] = versions
    info["code"] = code_version()
    return info


def code_version() -> str:
    """The commit measured, and how many files of the work tree differed from it (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = [line[3:] for line in dirty]
    return head + (f" with {len(changed)} modified file(s): {', '.join(changed)}" if changed else "")


# ------------------------------------------------------------------------------------------ report


def f2(x: float | None, unit: str = "") -> str:
    return "–" if x is None else f"{x:.2f}{unit}"


def mib(x: float | None) -> str:
    return "–" if x is None else (f"{x / GIB:.2f} GiB" if x >= GIB else f"{x:.0f} MiB")


def n(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}"


def existing_notes() -> str:
    if not DOC.exists():
        return ""
    text = DOC.read_text()
    start = text.find(NOTES_HEADING)
    if start < 0:
        return ""
    rest = text[start + len(NOTES_HEADING) :]
    following = re.search(r"^## ", rest, re.M)
    return text[start : start + len(NOTES_HEADING) + (following.start() if following else len(rest))].rstrip() + "\n"


def net(size: dict[str, Any], kind: str) -> float | None:
    facts = size.get("databases", {}).get(kind, {})
    if "night" not in facts:
        return None
    return float(facts["night"]["wall_s"] - facts.get("empty", {}).get("wall_s", 0.0))


def bounds(size: dict[str, Any], kind: str, target_s: float) -> list[str]:
    """What the night is made of, measured: the stages by share, each against its baseline, and what
    the night would take if the stages with a baseline ran at it."""
    facts = size["databases"][kind]
    night = facts["night"]
    stages = dict(night["stages"])
    wall = night["wall_s"]
    empty = facts.get("empty", {}).get("wall_s", 0.0)
    ranked = sorted(stages.items(), key=lambda kv: -kv[1])
    top = ", ".join(f"{k} {v:.2f} s ({v / wall:.0%})" for k, v in ranked[:4])
    lines = [f"largest stages: {top}; outside the stages (lock, run record): {night['other_s']:.2f} s"]
    lines += inside(night, kind)
    floor = dict(stages)
    replaced = []
    copy_s = facts.get("copy_baseline", {}).get("seconds")
    if copy_s:
        lines.append(f"write {stages['write']:.2f} s = {stages['write'] / copy_s:.1f}× a plain COPY of its "
                     f"{n(facts['copy_baseline']['rows'])} rows ({copy_s:.2f} s)")  # fmt: skip
        floor["write"] = copy_s
        replaced.append("write")
    adbc_s = facts.get("adbc_baseline", {}).get("seconds")
    if adbc_s:
        lines.append(f"load {stages['load']:.2f} s = {stages['load'] / adbc_s:.1f}× a plain ADBC read of the same "
                     f"rows ({adbc_s:.2f} s)")  # fmt: skip
        floor["load"] = adbc_s
        replaced.append("load")
    plain = size.get("parse_baseline", {})
    if plain.get("read_s"):
        floor["parse"] = min(floor["parse"], plain["read_s"] + plain["decode_s"])
        floor["validate"] = 0.0
        replaced.append("parse + validate")
        lines.append(f"parse + validate {stages['parse'] + stages['validate']:.2f} s against decode "
                     f"{plain['decode_s']:.2f} s + plain read_csv {plain['read_s']:.2f} s of the same "
                     "files")  # fmt: skip
    floor_net = sum(floor.values()) + night["other_s"] - empty
    over = (wall - empty) - target_s
    rest = sorted(((k, v) for k, v in floor.items()), key=lambda kv: -kv[1])
    lines.append(
        f"with {' and '.join(replaced)} at {'their baselines' if len(replaced) > 1 else 'its baseline'} (no baseline "
        f"for the others on {kind}) the night would be {floor_net:.2f} s net "
        + ("(within the target: the gap is in those stages' overhead over the plain path)" if floor_net <= target_s
           else f"(still over: the rest is bounded by {rest[0][0]} {rest[0][1]:.2f} s and {rest[1][0]} "
                f"{rest[1][1]:.2f} s)")
        + f"; {over:.2f} s must go"
    )  # fmt: skip
    return lines


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    v = m["versions"]
    out: list[str] = []
    w = out.append
    w("# Performance\n")
    w("Written by `bench/bench_night.py` (do not edit by hand, except the section \"Notes from the engineers\", "
      "which the script keeps as it is).\n")  # fmt: skip
    w(f"Measured {results.get('finished', '(unfinished run)')}, command line: `{no_paths(results['command'])}`"
      + (" (**quick smoke run**: small sizes, not the targets' sizes)" if results.get("quick") else "")
      + ".\n")  # fmt: skip
    w("## How to reproduce\n")
    w("```bash\n.venv/bin/pip install -e '.[bench]'   # pandas, DuckDB (ADBC and pyarrow come with the product)\n"
      ".venv/bin/python bench/bench_night.py          # 1m on SQLite and PostgreSQL + baselines + 31-day rerun\n"
      ".venv/bin/python bench/bench_night.py --sizes 1m,5m --pg-only-sizes 5m   # month-end on PostgreSQL too\n"
      ".venv/bin/python bench/bench_night.py --quick          # a smoke check in a few minutes\n```\n")  # fmt: skip
    w("PostgreSQL at 127.0.0.1:5432 (user `postgres`, trust auth): the script creates databases named "
      "`bench_night_*` and drops them. Each measured night starts from its own copy of the imported database "
      "and ran `--repeat` times (2 unless the command line says otherwise); **the fastest counts** (the machine is "
      "shared and noisy) and every attempt is listed"
      + (f" (this report merges {results['invocations']} invocations: each night's attempts from all of them, the "
         "other measurements from the last)" if results.get("invocations", 1) > 1 else "")
      + ". Times are reported against the targets and as ratios to plain baselines measured in "
      "the same run; no test asserts them.\n")  # fmt: skip
    w("## Machine and versions\n")
    w(f"- {m['nproc']} cores ({m.get('cpu', '?')}), {m['memory_gib']:.1f} GiB memory, {m['platform']}; load "
      f"average {', '.join(f'{x:.1f}' for x in m['loadavg_start'])} at the start, "
      f"{', '.join(f'{x:.1f}' for x in results.get('loadavg_end', m['loadavg_start']))} at the end "
      "(shared machine)")  # fmt: skip
    w("- " + ", ".join(f"{k} {val}" for k, val in v.items()))
    codes = results.get("codes") or [m.get("code", "not recorded")]
    if any(code != "not recorded" for code in codes):
        w(
            "- code measured (at the start of each invocation, in the order of the command lines above): "
            + "; ".join(codes)
        )
    w("")

    w("## The night, per database and size\n")
    w("Wall = `reconcile_dates(config, [day], workbook=True)` in a child process (discover → workbook, run "
      "record and lock included); stages are the run's own `timings_s`, with validation (time in pandera's "
      "`_validate`) split from parsing; *other* is the wall outside the stages. **Net** = wall − the fixed "
      "cost of an empty day on the same book (the day before, no files). Peak RSS is the child's "
      "`VmHWM`.\n")  # fmt: skip
    head = "| size | database | records | " + " | ".join(STAGES)
    head += " | other | wall | net | records/s (net) | peak RSS |"
    w(head)
    w("|" + "---|" * (head.count("|") - 1))
    for label, size in results["sizes"].items():
        for kind, facts in size.get("databases", {}).items():
            if "night" not in facts:
                continue
            night = facts["night"]
            net_s = net(size, kind) or night["wall_s"]
            w(f"| {label} | {kind} | {n(night['records'])} | "
              + " | ".join(f2(night["stages"][s]) for s in STAGES)
              + f" | {f2(night['other_s'])} | **{f2(night['wall_s'])}** | **{f2(net_s)}** | "
              f"{n(night['records'] / net_s)} | {mib(night['peak_mib'])} |")  # fmt: skip
    w("")
    w("Every attempt (wall s; peak): "
      + "; ".join(f"{label} {kind}: " + ", ".join(f"{x:.2f}" for x in facts["night"]["walls"])
                  + " (" + ", ".join(mib(p) for p in facts["night"]["peaks"]) + ")"
                  for label, size in results["sizes"].items() for kind, facts in size.get("databases", {}).items()
                  if "night" in facts) + ".\n")  # fmt: skip
    w("Rows: " + "; ".join(
        f"{label} {kind}: {n(facts['night']['rows'].get('records'))} records, "
        f"{n(facts['night']['rows'].get('ledger'))} ledger rows, passes {facts['night']['rows'].get('passes')}, "
        f"load returned {facts['night']['load_rows']}"
        for label, size in results["sizes"].items() for kind, facts in size.get("databases", {}).items()
        if "night" in facts) + ".\n")  # fmt: skip

    w("### Where the time goes inside the stages\n")
    w("Measured in the same child by wrapping the product's functions (the write stage also by the time between "
      "its fault checkpoints); calls nest (e.g. `write_crossed_grace` inside `write_installment_state`, "
      "`update_from_frame` inside both), so the lines of a stage do not add up.\n")  # fmt: skip
    for label, size in results["sizes"].items():
        for kind, facts in size.get("databases", {}).items():
            if "night" in facts:
                w(f"- **{label} {kind}**")
                for line in inside(facts["night"], kind):
                    w(f"  - {line}")
    w("")
    w("### Fixed cost of an empty day, and Prefect\n")
    w("| size | database | empty day in-process | child process (python + imports + run) | `recon run --json` "
      "(Prefect flow, temporary server) | Prefect cost |")  # fmt: skip
    w("|---|---|---|---|---|---|")
    for label, size in results["sizes"].items():
        for kind, facts in size.get("databases", {}).items():
            if "empty" not in facts:
                continue
            e = facts["empty"]
            p = facts.get("prefect")
            cost = p["process_wall_s"] - e["process_wall_s"] if p else None
            w(f"| {label} | {kind} | {f2(e['wall_s'], ' s')} ({', '.join(f'{x:.2f}' for x in e['walls'])}) | "
              f"{f2(e['process_wall_s'], ' s')} | "
              + (f"{f2(p['process_wall_s'], ' s')} ({', '.join(f'{x:.2f}' for x in p['walls'])})" if p else "not run")
              + f" | {f2(cost, ' s')} |")  # fmt: skip
    w(
        "\nThe empty day is the book's first night again, on a copy taken after it (see Onboarding): a date "
        "with no files whose grace crossings are already written, so every run of it, in-process or through "
        "`recon run`, costs the same fixed work."
    )
    w("\nThe Prefect cost is the `recon run` process against the plain child process for the same empty day: "
      "starting the temporary server, the flow and task engine, artifacts; a deployment on a running server "
      "pays no server start. `PREFECT_HOME` is the script's own, so the first `recon run` pays the server's "
      "migrations; the fastest is kept.\n")  # fmt: skip

    w("### Onboarding (not the night)\n")
    w("| size | database | generate (loans, attempts) | recon init | import of the book | VACUUM ANALYZE | "
      "the book's first night | database size |")  # fmt: skip
    w("|---|---|---|---|---|---|---|---|")
    for label, size in results["sizes"].items():
        g = size.get("generate", {})
        for kind, facts in size.get("databases", {}).items():
            o = facts.get("onboarding", {})
            w(f"| {label} | {kind} | {f2(g.get('wall_s'), ' s')} ({n(g.get('loans'))}, {g.get('attempts')}) | "
              f"{f2(o.get('init_s'), ' s')} | {f2(o.get('import_s'), ' s')} ({no_paths(o.get('printed', ''))}) | "
              f"{f2(o.get('vacuum_analyze_s'), ' s') if kind == 'postgresql' else 'not run (SQLite)'} | "
              f"{f2(o.get('first_night_s'), ' s')} | {mib(o.get('size_bytes', 0) / 1024 / 1024)} |")  # fmt: skip
    imports = [f"{kind} {facts['onboarding']['import_s']:.0f} s + a night of {facts['night']['wall_s']:.0f} s"
               for size in results["sizes"].values() for kind, facts in size.get("databases", {}).items()
               if "onboarding" in facts and "night" in facts]  # fmt: skip
    w("\nThe first run of a `--no-history` book (everything unpaid: an onboarding night) was not run: it is "
      "not cheap here: it needs a generation, an import and a night of its own (what those took for the steady "
      f"book: {'; '.join(imports) or 'see above'}). VACUUM ANALYZE after the import stands for what "
      "autovacuum does on a live database before the first night. *The book's first night* is the day before "
      "the measured one, with no files, run on the imported book: it turns `OVERDUE` the installments its "
      "history left open past their grace (a real platform's first night does that once); every measured "
      "night runs on a copy taken after it, so each is a steady night whose write marks only the installments "
      "whose grace ended since.\n")  # fmt: skip

    w("## Baselines\n")
    for label, size in results["sizes"].items():
        pg_facts = size.get("databases", {}).get("postgresql", {})
        c, a = pg_facts.get("copy_baseline"), pg_facts.get("adbc_baseline")
        night = pg_facts.get("night")
        if c and night:
            parts = ", ".join(f"{t} {n(x['rows'])} rows {x['seconds']:.2f} s" for t, x in c["tables"].items())
            w(f"- **{label} settlement writes vs plain COPY** (PostgreSQL): the run's write stage "
              f"{night['stages']['write']:.2f} s; a plain `COPY … FROM STDIN` of the same rows into fresh tables "
              f"`(LIKE … INCLUDING ALL)` {c['seconds']:.2f} s ({parts}; "
              f"runs {', '.join(f'{x:.2f}' for x in c['all'])}) "
              f"→ **{night['stages']['write'] / c['seconds']:.2f}×**.")  # fmt: skip
        if a and night:
            w(f"- **{label} loading vs plain ADBC read** (PostgreSQL): the run's load stage "
              f"{night['stages']['load']:.2f} s (returned {night['load_rows']}); plain ADBC "
              f"(`adbc-driver-postgresql` {v.get('adbc-driver-postgresql')}, pyarrow {v.get('pyarrow')}) of "
              f"{a['rows']} in {a['seconds']:.2f} s (per query "
              f"{', '.join(f'{k} {x:.2f}' for k, x in a['query_s'].items())}; "
              f"runs {', '.join(f'{x:.2f}' for x in a['all'])}) → "
              f"**{night['stages']['load'] / a['seconds']:.2f}×**"
              + (f"; the keys were put in temporary tables on the server first, untimed ({a['keys_s']:.2f} s): the "
                 "baseline reads the rows, it does not look for them" if "keys_s" in a else "")
              + ".")  # fmt: skip
        p = size.get("parse_baseline")
        if p:
            for kind, facts in size.get("databases", {}).items():
                if "night" in facts:
                    s = facts["night"]["stages"]
                    w(f"- **{label} parse + validate** ({kind}): {s['parse']:.2f} s + {s['validate']:.2f} s against "
                      f"the product's GB18030 decode {p['decode_s']:.2f} s + polars' plain `read_csv` "
                      f"{p['read_s']:.2f} s of the same {n(p['lines'])} lines ({mib(p['bytes'] / 1024 / 1024)}) → "
                      f"**{(s['parse'] + s['validate']) / (p['decode_s'] + p['read_s']):.2f}×**.")  # fmt: skip
    mt = results.get("matcher")
    if mt:
        w(f"- **Matcher** (`bench/bench_matcher.py --records {mt['asked']}`, each engine in its own process, "
          f"outcomes agree: {mt.get('agree')}):\n")  # fmt: skip
        w("  | engine | seconds (fastest after warm-up) | × polars | first run | peak |")
        w("  |---|---|---|---|---|")
        for engine, e in mt["engines"].items():
            w(f"  | {engine} | {e['seconds']:.2f} | {e['ratio']:.1f} | {e['first_s']:.2f} | {mib(e['peak_mib'])} |")
    w("")

    rr = results.get("rerun")
    if rr and "all" in rr:
        first_pass = [d["wall_s"] for d in rr["first_pass"]]
        per_day = rr["all"]["per_day_stage_sum_s"]
        k = max(1, len(per_day) // 5)
        needed = rr["days"] * rr["per_day_target"] / RECORDS_PER_LOAN
        rate = rr["generate"]["loans"] / rr["onboarding"]["import_s"]
        w(f"## Rerun of {rr['days']} days ({rr['database']})\n")
        w(f"{rr['days']} days generated with `--from … --to …`: {no_paths(rr['generate'].get('printed', ''))} "
          f"(`--attempts {RERUN_ATTEMPTS}` keeps the book at the 1M night's size; {n(rr['per_day_target'])}-record "
          f"days at 1 attempt would need a book of {n(needed)} loans, about {needed / rr['generate']['loans']:.1f}× "
          f"the database, its import about {needed / rate / 60:.0f} min at this run's measured {n(rate)} loans/s, "
          "and a longer run of days). "
          f"Import {f2(rr['onboarding'].get('import_s'), ' s')}.\n")  # fmt: skip
        w(f"- first pass, each day in order: {sum(first_pass):.1f} s; first {k} days "
          f"{statistics.mean(first_pass[:k]):.2f} s "
          f"each, last {k} {statistics.mean(first_pass[-k:]):.2f} s each")  # fmt: skip
        w(f"- rerun of all days in one `reconcile_dates` call: **{rr['all']['wall_s']:.1f} s** (peak "
          f"{mib(rr['all']['peak_mib'])}); per day (sum of stages) first {k} {statistics.mean(per_day[:k]):.2f} s, "
          f"last {k} {statistics.mean(per_day[-k:]):.2f} s, slope {slope(per_day) * 1000:.1f} ms per day of "
          "history")  # fmt: skip
        one, last_one = rr.get("one_first", rr["one"]), rr["one"]
        w(f"- rerun of one day alone (`cascade=False`): the first, {one['day']}: {one['wall_s']:.2f} s (runs "
          f"{', '.join(f'{x:.2f}' for x in one['walls'])}); the last, {last_one['day']}: {last_one['wall_s']:.2f} s "
          f"(runs {', '.join(f'{x:.2f}' for x in last_one['walls'])})")  # fmt: skip
        w(f"- all days = **{rr['all']['wall_s'] / one['wall_s']:.1f}×** the first day alone, "
          f"{rr['all']['wall_s'] / last_one['wall_s']:.1f}× the last (target ≤ {rr['days']}×)")  # fmt: skip
        w(
            "- what grows from the first days to the last (mean of the last "
            f"{k} minus the first {k}, in the rerun of all days): " + "; ".join(growth(rr, k)) + "\n"
        )

    w("## Targets\n")
    w("| target | measured | met? |")
    w("|---|---|---|")
    misses: list[tuple[str, list[str]]] = []

    def night_target(label: str, kind: str, limit: float, rss_gib: float | None, name: str) -> None:
        size = results["sizes"].get(label)
        if not size or "night" not in size.get("databases", {}).get(kind, {}):
            why = "interrupted before its night" if size else "not run"
            measured = [
                (lb, sz) for lb, sz in results["sizes"].items() if "night" in sz.get("databases", {}).get(kind, {})
            ]
            if measured:  # what the largest measured night says this one would take, at the same rate
                lb, sz = max(measured, key=lambda item: item[1]["databases"][kind]["night"]["records"])
                rate = sz["databases"][kind]["night"]["records"] / (net(sz, kind) or 1.0)
                why += (f"; at the {lb} night's measured {n(rate)} records/s it would take about "
                        f"{count(label) / rate:.0f} s (a linear estimate, not a measurement)")  # fmt: skip
            w(f"| {name} | {why} | – |")
            return
        facts = size["databases"][kind]
        net_s = net(size, kind) or 0.0
        peak = facts["night"]["peak_mib"] / GIB
        ok_t = net_s <= limit
        ok_m = rss_gib is None or peak <= rss_gib
        w(f"| {name} | net {net_s:.2f} s (wall {facts['night']['wall_s']:.2f} s − empty day "
          f"{facts.get('empty', {}).get('wall_s', 0.0):.2f} s), {n(facts['night']['records'])} records, "
          f"peak {peak:.2f} GiB | {'met' if ok_t else 'MISSED'}"
          f"{'' if rss_gib is None else (', RSS met' if ok_m else ', RSS MISSED')} |")  # fmt: skip
        if not ok_t or not ok_m:
            lines = bounds(size, kind, limit)
            if not ok_m:
                lines.append(f"peak RSS {peak:.2f} GiB against {rss_gib} GiB")
            misses.append((name, lines))

    night_target("1m", "postgresql", 4.0, 1.5, "1M records, PostgreSQL: ≤ 4 s, peak RSS ≤ 1.5 GiB")
    night_target("1m", "sqlite", 6.0, None, "1M records, SQLite: ≤ 6 s")
    night_target("5m", "postgresql", 22.0, None, "5M records, PostgreSQL: ≤ 22 s")
    night_target("10m", "postgresql", 45.0, 8.0, "10M records, PostgreSQL: ≤ 45 s, peak RSS ≤ 8 GiB")
    if rr and "all" in rr:
        one = rr.get("one_first", rr["one"])
        ratio = rr["all"]["wall_s"] / one["wall_s"]
        per_day = rr["all"]["per_day_stage_sum_s"]
        k = max(1, len(per_day) // 5)
        grown = statistics.mean(per_day[-k:]) / statistics.mean(per_day[:k])
        ok = ratio <= rr["days"]
        w(f"| {rr['days']}-day rerun ≤ {rr['days']}× one day (nothing grows with history) | {ratio:.1f}× the first "
          f"day alone ({rr['all']['wall_s']:.1f} s vs {one['wall_s']:.2f} s); the last days take {grown:.2f}× the "
          f"first | {'met' if ok else 'MISSED'}"
          f"{'' if grown <= 1.2 else '; per-day time grows with history'} |")  # fmt: skip
        if not ok or grown > 1.2:
            misses.append((f"{rr['days']}-day rerun", [
                f"per-day time grows {slope(per_day) * 1000:.0f} ms per day of history "
                f"({statistics.mean(per_day[:k]):.2f} s → {statistics.mean(per_day[-k:]):.2f} s)",
                "what grows: " + "; ".join(growth(rr, k))]))  # fmt: skip
    else:
        w("| 31-day rerun ≤ 31× one day | not run | – |")
    for label, size in results["sizes"].items():
        facts = size.get("databases", {}).get("postgresql", {})
        if "night" not in facts:
            continue
        s = facts["night"]["stages"]
        for key, stage, what in (("copy_baseline", "write", "settlement writes ≤ 1.5× plain COPY"),
                                 ("adbc_baseline", "load", "loading ≤ 1.5× plain ADBC read")):  # fmt: skip
            if key in facts:
                ratio = s[stage] / facts[key]["seconds"]
                w(f"| {label}: {what} | {ratio:.2f}× ({s[stage]:.2f} s vs {facts[key]['seconds']:.2f} s) | "
                  f"{'met' if ratio <= 1.5 else 'MISSED'} |")  # fmt: skip
                if ratio > 1.5:
                    misses.append((f"{label} {what}", stage_bound(stage, facts, s)))
    if mt and mt["engines"]:
        for engine, need in (("duckdb", 1.5), ("pandas", 15.0)):
            e = mt["engines"].get(engine)
            if e:
                w(f"| matcher ≥ {need}× faster than {engine} ({n(mt.get('records'))} records) | {e['ratio']:.1f}× | "
                  f"{'met' if e['ratio'] >= need else 'MISSED'} |")  # fmt: skip
                if e["ratio"] < need:
                    misses.append((f"matcher vs {engine}", [
                        f"polars {mt['engines']['polars']['seconds']:.2f} s against {engine} {e['seconds']:.2f} s; "
                        f"the polars matcher would have to take ≤ {e['seconds'] / need:.2f} s"]))  # fmt: skip
    w("")
    if misses:
        w("### What bounds each miss (from the measurements above)\n")
        for name, lines in misses:
            w(f"- **{name}**")
            for line in lines:
                w(f"  - {line}")
        w("")
    notes = results.get("notes") or (
        f"{NOTES_HEADING}\n\n(Kept verbatim by the script: write what the numbers do not say here.)\n"
    )
    w(notes.rstrip() + "\n")
    return "\n".join(out)


def stage_bound(stage: str, facts: dict[str, Any], s: dict[str, float]) -> list[str]:
    night = facts["night"]
    detail = night.get("detail", {})
    if stage == "write":
        c = facts["copy_baseline"]
        phases = sorted(night.get("write_phases", {}).items(), key=lambda kv: -kv[1])
        return [f"the write stage is {s['write']:.2f} s against {c['seconds']:.2f} s for a plain COPY of the same "
                f"{n(c['rows'])} rows; to meet 1.5× it must take ≤ {1.5 * c['seconds']:.2f} s",
                "measured between its checkpoints: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases),
                *[line for line in inside(night) if line.startswith("write:")]]  # fmt: skip
    a = facts["adbc_baseline"]
    return [f"the load stage is {s['load']:.2f} s against {a['seconds']:.2f} s for ADBC (rows {a['rows']} vs the "
            f"stage's {night['load_rows']}); to meet 1.5× it must take ≤ {1.5 * a['seconds']:.2f} s",
            "inside it: staging keys in temporary tables "
            f"{detail.get('load: stage keys (temporary tables)', 0):.2f} s, "
            f"reading rows (ADBC) {detail.get(READ_ROWS, 0):.2f} s "
            f"(the ADBC queries: {', '.join(f'{k} {x:.2f} s' for k, x in a['query_s'].items())})"]  # fmt: skip


def growth(rr: dict[str, Any], k: int) -> list[str]:
    """The stages and inner costs whose time grows most from the first ``k`` days to the last ``k``."""
    days = rr["all"].get("days", [])
    if len(days) < 2 * k:
        return ["(not measured)"]
    keys = {key for d in days for key in d["timings_s"]} | {
        key for d in days for key, v in d["detail"].items() if isinstance(v, float) and not key.endswith(" rows")
    }

    def value(d: dict[str, Any], key: str) -> float:
        return float(d["timings_s"].get(key, d["detail"].get(key, 0.0)))

    change = {key: statistics.mean(value(d, key) for d in days[-k:]) - statistics.mean(value(d, key) for d in days[:k])
              for key in keys}  # fmt: skip
    top = sorted(change.items(), key=lambda kv: -kv[1])[:5]
    return [f"{key} {statistics.mean(value(d, key) for d in days[:k]):.2f} → "
            f"{statistics.mean(value(d, key) for d in days[-k:]):.2f} s" for key, _ in top]  # fmt: skip


SQLITE_WORDS = {"COPY channel records": "insert channel records", "COPY ledger": "insert ledger",
                "(COPY in)": "(executemany)", "(COPY TO, CSV)": "(driver tuples)", "(COPY TO)": "(driver tuples)",
                "through COPY TO as CSV": "through the driver's tuples"}  # fmt: skip


def worded(text: str, kind: str) -> str:
    """The bulk paths by their names on SQLite (``flows.store``: executemany in, driver tuples out)."""
    if kind == "sqlite":
        for old, new in SQLITE_WORDS.items():
            text = text.replace(old, new)
    return text


def inside(night: dict[str, Any], kind: str = "postgresql") -> list[str]:
    """The measured inner costs of the night: write phases, then the wrapped functions by stage."""
    return [worded(line, kind) for line in _inside(night)]


def _inside(night: dict[str, Any]) -> list[str]:
    lines = []
    phases = night.get("write_phases", {})
    if phases:
        lines.append("write, between its checkpoints: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    detail = night.get("detail", {})
    for stage in ("parse", "load", "match", "write", "workbook"):
        parts = [(k, v) for k, v in detail.items() if k.startswith(stage + ":") and not k.endswith(" rows")]
        if parts:
            lines.append(f"{stage}: " + ", ".join(
                f"{k.split(': ', 1)[1]} {v:.2f} s"
                + (f" ({n(detail[k + ' rows'])} rows)" if k + " rows" in detail else "")
                for k, v in parts))  # fmt: skip
    return lines


def slope(ys: list[float]) -> float:
    if len(ys) < 2:
        return 0.0
    xs = list(range(len(ys)))
    mx, my = statistics.mean(xs), statistics.mean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


# ------------------------------------------------------------------------------------------ main


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several invocations as one report: every night attempt is listed and the fastest kept; the
    other measurements (baselines, empty day, onboarding) come from the last invocation that has them."""
    merged = json.loads(json.dumps(runs[0]))
    for later in runs[1:]:
        merged["command"] = f"{merged['command']}` then `{later['command']}"
        merged.setdefault("codes", [merged["machine"].get("code", "not recorded")])
        merged["codes"].append(later["machine"].get("code", "not recorded"))
        merged["finished"] = later.get("finished", merged.get("finished"))
        merged["loadavg_end"] = later.get("loadavg_end", merged.get("loadavg_end"))
        for key in ("matcher", "rerun"):
            if key in later:
                merged[key] = later[key]
        for label, size in later.get("sizes", {}).items():
            into = merged["sizes"].setdefault(label, {})
            for key, value in size.items():
                if key != "databases":
                    into[key] = value
            for kind, facts in size.get("databases", {}).items():
                target = into.setdefault("databases", {}).setdefault(kind, {})
                for key, value in facts.items():
                    if key == "night" and "night" in target:
                        walls = target["night"]["walls"] + value["walls"]
                        peaks = target["night"]["peaks"] + value["peaks"]
                        target["night"] = min((target["night"], value), key=lambda x: x["wall_s"])
                        target["night"]["walls"], target["night"]["peaks"] = walls, peaks
                    else:
                        target[key] = value
    merged["invocations"] = len(runs)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1m", help="record targets, comma separated: 100k, 1m, 5m, 10m")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--pg-only-sizes", default="5m,10m", help="sizes measured on PostgreSQL only")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measured night; the fastest counts")
    parser.add_argument("--rerun-days", type=int, default=31, help="days of the rerun test (0: skip)")
    parser.add_argument("--rerun-records", default="100k", help="records per day of the rerun test")
    parser.add_argument("--rerun-database", default="postgresql")
    parser.add_argument("--matcher-records", default="1m", help="bench_matcher.py --records (0: skip)")
    parser.add_argument("--quick", action="store_true", help="100k on both databases, 10 days of 20k, matcher 100k")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--results", default=None, help="also write the raw measurements as JSON here")
    parser.add_argument(
        "--render",
        action="append",
        default=None,
        help="only write docs/PERFORMANCE.md from --results files (repeat it to merge invocations: "
        "the fastest night of each size and database is kept, the rest comes from the last file)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--days", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, [dt.date.fromisoformat(d) for d in args.days.split(",")])
        return
    if args.render:
        saved = merge([json.loads(Path(path).read_text()) for path in args.render])
        saved["notes"] = existing_notes()
        DOC.write_text(render(saved))
        log(f"wrote {DOC}")
        return
    if args.quick:
        args.sizes, args.rerun_days, args.rerun_records, args.matcher_records = "100k", 10, "20k", "100k"
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    pg_only = {s.strip() for s in args.pg_only_sizes.split(",")}
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="recon-night-"))
    work.mkdir(parents=True, exist_ok=True)
    results_path = Path(args.results) if args.results else work / "results.json"
    results: dict[str, Any] = {
        "command": " ".join(["bench/bench_night.py", *sys.argv[1:]]),
        "quick": args.quick,
        "repeat": args.repeat,
        "machine": machine(),
        "sizes": {},
    }

    def save() -> None:
        results_path.write_text(json.dumps(results, indent=1, default=str))

    bench = Bench(work, args.repeat)
    try:
        # the first size, then the matcher and the rerun, then the larger sizes (the longest last)
        for i, label in enumerate(sizes):
            shape = shape_for(label)
            kinds = [d for d in databases if d == "postgresql" or label not in pg_only]
            log(f"size {label}: {shape}")
            measure_size(bench, shape, kinds, results, save, prefect=i == 0)
            if i > 0:
                continue
            if args.matcher_records not in ("0", ""):
                log("matcher")
                results["matcher"] = matcher(count(args.matcher_records), 3)
                save()
            if args.rerun_days > 0:
                log(f"rerun of {args.rerun_days} days")
                measure_rerun(bench, args.rerun_days, count(args.rerun_records), args.rerun_database, results, save)
    finally:
        bench.drop_all()
        results["loadavg_end"] = os.getloadavg()
        results["finished"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        save()
        if not args.work:
            shutil.rmtree(work / "homes", ignore_errors=True)
    results["notes"] = existing_notes()
    DOC.write_text(render(results))
    log(f"wrote {DOC} (raw measurements: {results_path})")


if __name__ == "__main__":
    main()
