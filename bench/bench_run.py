"""Time a whole generated day: generate, import the snapshot, read + match + write, workbook.

Reported as seconds per stage and as a ratio to a baseline measured in the same process: polars'
plain ``read_csv`` of the same channel files (decoded from GB18030 first). Usage:

    python bench/bench_run.py --loans 100000 [--database-url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import resource
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from flows import runs
from flows.config import load_config
from flows.importer import import_snapshot, write_snapshot
from flows.stages.discover import discover
from flows.stages.load import load_state
from flows.stages.write import write_day
from flows.store import connect, upgrade_database
from flows.workbook import write_workbook
from reconcile.intake import all_outcomes, parse_files
from reconcile.matching import match_day
from reconcile.summary import is_balanced, money_totals, outcome_counts
from reconcile.synthetic import generate_days

DAY = dt.date(2026, 11, 27)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="recon-bench-"))
    url = args.database_url or f"sqlite:///{root / 'recon.db'}"
    timings: dict[str, float] = {}

    class Progress(dict[str, float]):
        def __setitem__(self, key: str, value: float) -> None:
            super().__setitem__(key, value)
            print(f"  .. {key} {value:.2f} s", file=sys.stderr, flush=True)

    timings = Progress()

    clock = time.perf_counter()
    days = generate_days(DAY, DAY, args.loans, seed=1)
    write_snapshot(root / "snapshot", days.loans, days.installments, days.instructions)
    inbox = root / "inbox" / DAY.isoformat()
    inbox.mkdir(parents=True)
    for name, data in days.files[DAY].items():
        (inbox / name).write_bytes(data)
    timings["generate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    for data in days.files[DAY].values():
        pl.read_csv(
            io.BytesIO(data.decode("gb18030").encode()),
            infer_schema=False,
            has_header=False,
            separator="\x1f",
            quote_char=None,
        )
    timings["baseline_plain_read"] = time.perf_counter() - clock

    upgrade_database(url)
    engine = connect(url)
    clock = time.perf_counter()
    import_snapshot(engine, root / "snapshot")
    timings["import"] = time.perf_counter() - clock

    settings = load_config({"RECON_HOME": str(root)}).settings
    clock = time.perf_counter()
    files = discover(inbox, settings).files
    parsed = parse_files(files, settings, DAY)
    timings["read_validate"] = time.perf_counter() - clock
    clock = time.perf_counter()
    state = load_state(engine, DAY, parsed, settings)
    timings["load_state"] = time.perf_counter() - clock
    clock = time.perf_counter()
    result = match_day(state, settings)
    outcomes = all_outcomes(result, parsed, DAY, settings)
    timings["match"] = time.perf_counter() - clock
    clock = time.perf_counter()
    write_day(engine, DAY, "bench", outcomes, result.ledger, parsed, dt.datetime.now(dt.UTC))
    timings["write"] = time.perf_counter() - clock
    fen = money_totals(outcomes)
    summary = {
        "business_date": DAY.isoformat(),
        "run_id": "bench",
        "records": outcomes.height,
        "fen": fen,
        "balanced": is_balanced(fen),
        "outcomes": outcome_counts(outcomes),
        "files": [],
    }
    clock = time.perf_counter()
    write_workbook(root / "bench.xlsx", summary, runs.exceptions_for_workbook(engine, DAY))
    timings["workbook"] = time.perf_counter() - clock
    engine.dispose()

    records = outcomes.filter(pl.col("subject") == "record").height
    run_total = sum(timings[k] for k in ("read_validate", "load_state", "match", "write", "workbook"))
    print(f"records {records}  loans {args.loans}  database {url.split(':')[0]}  balanced {summary['balanced']}")
    for name, seconds in timings.items():
        print(f"  {name:<20} {seconds:8.2f} s")
    print(f"  run (read → workbook) {run_total:7.2f} s")
    print(f"  read+validate / plain read_csv = {timings['read_validate'] / timings['baseline_plain_read']:.1f}x")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
