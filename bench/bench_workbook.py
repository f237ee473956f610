"""The reviewer's workbook at scale: 100,000 exceptions a person must act on, written, then read back.

Each phase runs in a child process of its own so that its peak RSS is its own. Reported as seconds,
peak RSS and a ratio against a baseline in the same script: openpyxl's write-only mode dumping the
same values without any styling (for the write), and openpyxl's read-only mode iterating the same
file's cells (for the read-back). Usage:

    python bench/bench_workbook.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

DAY = dt.date(2026, 11, 27)
OUTCOMES = ("UNMATCHED_DEBIT", "OVERPAYMENT", "AMOUNT_MISMATCH", "DUPLICATE_DEBIT", "INVALID_RECORD")


def exceptions(rows: int) -> pl.DataFrame:
    """Actionable exceptions shaped as the exceptions table holds them."""
    n = pl.int_range(rows, eager=True)
    return pl.DataFrame(
        {
            "exception_key": ("UNMATCHED_DEBIT|alipay|debit|2026112722" + n.cast(pl.String).str.zfill(12) + "|"),
            "business_date": [DAY] * rows,
            "outcome": [OUTCOMES[i % len(OUTCOMES)] for i in range(rows)],
            "severity": ["HIGH"] * rows,
            "subject": ["record"] * rows,
            "status": ["OPEN"] * rows,
            "channel": ["alipay"] * rows,
            "contract_no": ("C2611270" + n.cast(pl.String).str.zfill(7)),
            "installment_no": (n % 12 + 1).cast(pl.Int64),
            "instruction_id": ("P2611270" + n.cast(pl.String).str.zfill(9)),
            "channel_txn_id": ("2026112722" + n.cast(pl.String).str.zfill(12)),
            "amount_fen": (n * 37 % 500_000 + 100).cast(pl.Int64),
            "held_fen": (n * 37 % 500_000 + 100).cast(pl.Int64),
            "flags": [""] * rows,
            "facts": ("held " + n.cast(pl.String)),
            "account_masked": ["622202******1234"] * rows,
            "explanation_zh": ["合同 C26112700001 第 3 期收到 933.33 元,但没有对应的代扣指令,已挂账"] * rows,
            "explanation_en": ["received 933.33 yuan for contract C26112700001 installment 3 without an instruction"]
            * rows,
            "suggested_action": ["核对后退款或手工入账 / refund or apply by hand"] * rows,
            "source_file": ["alipay_trade_20261127.csv"] * rows,
            "line_no": (n + 6).cast(pl.Int64),
            "occurrences": [1] * rows,
            "first_seen_run": ["r1"] * rows,
            "last_seen_run": ["r1"] * rows,
            "first_seen_at": [dt.datetime(2026, 11, 27, 22, tzinfo=dt.UTC)] * rows,
            "last_seen_at": [dt.datetime(2026, 11, 27, 22, tzinfo=dt.UTC)] * rows,
        }
    )


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(name: str, root: Path, rows: int) -> dict[str, float]:
    from flows import runs
    from flows.db import ExceptionItem, table_of
    from flows.review import apply_decisions, read_decisions
    from flows.store import connect, insert_frame, upgrade_database
    from flows.workbook import write_workbook

    url = f"sqlite:///{root / 'recon.db'}"
    book = root / "recon_20261127_r1.xlsx"
    clock = time.perf_counter()
    if name == "setup":
        upgrade_database(url)
        engine = connect(url)
        with engine.begin() as conn:
            insert_frame(conn, table_of(ExceptionItem), exceptions(rows))
        engine.dispose()
    elif name == "write":
        engine = connect(url)
        frame = runs.exceptions_for_workbook(engine, DAY)
        summary = {"business_date": DAY.isoformat(), "run_id": "r1", "records": rows, "balanced": True,
                   "fen": dict.fromkeys(("received", "applied", "held", "reversed", "unapplied", "released"), 0),
                   "outcomes": frame.group_by("outcome").len().rows(), "files": []}  # fmt: skip
        summary["outcomes"] = dict(summary["outcomes"])
        clock = time.perf_counter()
        write_workbook(book, summary, frame, "zh", {"alipay": "支付宝"}, database_id=runs.database_id(engine))
        engine.dispose()
    elif name == "write_plain":
        from openpyxl import Workbook

        frame = exceptions(rows)
        clock = time.perf_counter()
        plain = Workbook(write_only=True)
        sheet = plain.create_sheet("plain")
        for row in frame.select(pl.all().cast(pl.String)).iter_rows():
            sheet.append(row)
        plain.save(root / "plain.xlsx")
    elif name == "review":  # what a reviewer's Excel does: not the product's cost
        from openpyxl import load_workbook

        from flows.workbook import column_letter

        reviewed = load_workbook(book)
        column = column_letter("resolution")
        for sheet in reviewed.worksheets[1:-2]:
            for index in range(2, sheet.max_row):  # the last row is the total
                sheet[f"{column}{index}"] = "无需处理"
        reviewed.save(root / "reviewed.xlsx")
    elif name == "import":
        engine = connect(url)
        sha, day, decisions = read_decisions(root / "reviewed.xlsx", engine, {"zh": {"alipay": "支付宝"}})
        done = apply_decisions(engine, sha, day, decisions, "bench")
        engine.dispose()
        assert done.applied == rows, done
    elif name == "read_plain":
        from openpyxl import load_workbook

        cells = 0
        for sheet in load_workbook(root / "reviewed.xlsx", read_only=True).worksheets:
            for row in sheet.iter_rows(values_only=True):
                cells += len(row)
    return {"seconds": round(time.perf_counter() - clock, 2), "peak_rss_mib": round(_peak_mib(), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--phase", default=None)
    parser.add_argument("--root", default=None)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, Path(args.root), args.rows)))
        return
    root = Path(tempfile.mkdtemp(prefix="recon-bench-workbook-"))
    results = {}
    for name in ("setup", "write", "write_plain", "review", "import", "read_plain"):
        done = subprocess.run([sys.executable, __file__, "--phase", name, "--root", str(root), "--rows",
                               str(args.rows)], capture_output=True, text=True, check=True)  # fmt: skip
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name:12} {results[name]['seconds']:8.2f} s  peak {results[name]['peak_rss_mib']:8.1f} MiB", flush=True)
    size = (root / "recon_20261127_r1.xlsx").stat().st_size / 2**20
    print(f"workbook of {args.rows:,} exceptions: {size:.1f} MiB")
    print(f"write:  {results['write']['seconds'] / results['write_plain']['seconds']:.1f}× a plain write-only dump")
    print(f"import: {results['import']['seconds'] / results['read_plain']['seconds']:.1f}× a plain read-only iteration")


if __name__ == "__main__":
    main()
