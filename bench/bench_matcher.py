"""The matcher against the same logic as a straightforward pandas script and as DuckDB SQL.

One generated day is prepared once (Parquet in a temporary folder); each engine then runs in a
child process of this script so its peak memory is its own, and writes one outcome per record and
per unanswered instruction. The script checks the three agree on every outcome and prints times
as ratios to the polars matcher. The compared logic is the exact-reference path with settlement
and the outcome rules (records that carry a reference; refunds left out), which all three
implement identically. Usage:

    python bench/bench_matcher.py --records 1000000 [--records 5000000] [--repeat 3]

Each engine runs ``--repeat`` times in its process; the first run pays each engine's warm-up
(thread pools, parsers) and is printed apart; the fastest of the others is compared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from peak import peak_mib  # bench/peak.py, beside this script

DAY = dt.date(2026, 11, 27)
LISTING_CHANNELS = ("icbc", "ccb", "abc")
PRECEDENCE = ("UNMATCHED_DEBIT", "DUPLICATE_DEBIT", "ACCOUNT_MISMATCH", "AMOUNT_MISMATCH", "STATUS_MISMATCH",
              "OVERPAYMENT", "PARTIAL_PAYMENT", "LATE_PAYMENT", "DEBIT_FAILED")  # fmt: skip


def prepare(records: int, folder: Path) -> None:
    from reconcile.synthetic import due_installments, loan_book, scenario_rows

    loans = records  # about one referenced debit line per loan in the scenario mix
    book = loan_book([DAY], loans, seed=7)
    due = due_installments(book)
    instructions, lines, _ = scenario_rows(due)
    lines = lines.filter((pl.col("kind") == "debit") & pl.col("reference").is_not_null() & ~pl.col("corrupt_time"))
    lines.select(
        pl.format("{}|debit|{}|", "channel", "txn_id").alias("record_key"),
        "channel", "status", pl.col("txn_id").alias("channel_txn_id"), "reference", "amount_fen", "settled_at",
        pl.col("account").alias("account_shown"),
    ).write_parquet(folder / "records.parquet")  # fmt: skip
    instructions.write_parquet(folder / "instructions.parquet")
    due.select(
        "contract_no", pl.col("_due_no").alias("installment_no"), "due_date", pl.lit(3).alias("grace_days"),
        "principal_due_fen", "interest_due_fen", "fee_due_fen", "penalty_due_fen", "bound_account",
    ).write_parquet(folder / "installments.parquet")  # fmt: skip


def run_polars(folder: Path) -> pl.DataFrame:
    from flows.config import load_channel_config
    from reconcile.matching import MatchInput, match_day
    from reconcile.settings import settings_from_mapping
    from schemas.frames import PRIOR_PAYMENT_DTYPES

    records = pl.read_parquet(folder / "records.parquet")
    installments = pl.read_parquet(folder / "installments.parquet")
    n = records.height
    full = records.with_columns(
        source_file=pl.lit("f"), file_sha256=pl.lit("0" * 64), line_no=pl.int_range(1, n + 1, dtype=pl.Int64),
        raw_line=pl.lit(""), record_kind=pl.lit("debit"), memo=pl.lit(None, pl.String),
        failure_code=pl.lit(None, pl.String), failure_text=pl.lit(None, pl.String),
        failure_reason=pl.when(pl.col("status") == "FAILED").then(pl.lit("OTHER")),
        refund_request_no=pl.lit(None, pl.String),
    )  # fmt: skip
    data = MatchInput(
        business_date=DAY,
        records=full,
        instructions=pl.read_parquet(folder / "instructions.parquet"),
        installments=installments.with_columns(  # the loan's bound account rides along, as for pandas and DuckDB
            [pl.lit(0, pl.Int64).alias(f"{p}_paid_fen") for p in ("penalty", "fee", "interest", "principal")]
        ),
        loans=installments.select("contract_no", pl.lit("x").alias("bound_channel"), "bound_account"),
        prior_payments=pl.DataFrame(schema=PRIOR_PAYMENT_DTYPES),
        answering_channels=frozenset({"alipay", *LISTING_CHANNELS}),
    )
    settings = settings_from_mapping(load_channel_config())
    clock = time.perf_counter()
    outcomes = match_day(data, settings).outcomes
    elapsed = time.perf_counter() - clock
    print(json.dumps({"seconds": elapsed}), file=sys.stderr)
    return outcomes.select(pl.col("subject_key").alias("key"), "outcome")


def run_pandas(folder: Path) -> pl.DataFrame:
    import numpy as np
    import pandas as pd

    records = pd.read_parquet(folder / "records.parquet")
    instructions = pd.read_parquet(folder / "instructions.parquet")
    installments = pd.read_parquet(folder / "installments.parquet")
    clock = time.perf_counter()
    parts = ["penalty", "fee", "interest", "principal"]
    installments["owed"] = installments[[f"{p}_due_fen" for p in parts]].sum(axis=1)
    m = records.merge(
        instructions[["instruction_id", "contract_no", "installment_no", "amount_fen", "platform_status"]].rename(
            columns={"amount_fen": "instr_amount_fen"}
        ),
        left_on="reference", right_on="instruction_id", how="left",
    )  # fmt: skip
    m = m.merge(installments, on=["contract_no", "installment_no"], how="left")
    m["success"] = m["status"] == "SUCCESS"
    m["matched"] = m["instruction_id"].notna()
    pay = m[m["success"] & m["matched"]].sort_values(
        ["contract_no", "installment_no", "settled_at", "channel", "channel_txn_id"]
    )
    pay["cum_after"] = pay.groupby(["contract_no", "installment_no"])["amount_fen"].cumsum()
    pay["cum_before"] = pay["cum_after"] - pay["amount_fen"]
    pay["applied_after"] = np.minimum(pay["owed"], pay["cum_after"])
    pay["applied_before"] = np.minimum(pay["owed"], pay["cum_before"])
    pay["applied"] = pay["applied_after"] - pay["applied_before"]
    pay["held"] = pay["amount_fen"] - pay["applied"]
    pay["paid_off"] = pay.groupby(["contract_no", "installment_no"])["applied_after"].transform("max") >= pay["owed"]
    pay["already_paid"] = pay["applied_before"] >= pay["owed"]
    m = m.merge(pay[["record_key", "applied", "held", "paid_off", "already_paid"]], on="record_key", how="left")
    shown, bound = m["account_shown"].tolist(), m["bound_account"].tolist()
    agree = []
    for s, b in zip(shown, bound, strict=True):
        if s is None or b is None or (isinstance(b, float)):
            agree.append(True)
        elif "*" in s:
            agree.append(b.startswith(s.split("*", 1)[0]) and b.endswith(s.rsplit("*", 1)[-1]))
        else:
            agree.append(s == b)
    settled_day = m["settled_at"].dt.tz_convert("Asia/Shanghai").dt.tz_localize(None).dt.normalize()
    late_after = pd.to_datetime(m["due_date"]) + pd.to_timedelta(m["grace_days"].fillna(0), unit="D")
    applied = m["applied"].fillna(0)
    flags = {
        "UNMATCHED_DEBIT": m["success"] & ~m["matched"],
        "DUPLICATE_DEBIT": m["success"] & m["already_paid"].fillna(False).astype(bool),
        "ACCOUNT_MISMATCH": m["success"] & m["bound_account"].notna() & ~pd.Series(agree, index=m.index),
        "AMOUNT_MISMATCH": m["instr_amount_fen"].notna() & (m["amount_fen"] != m["instr_amount_fen"]),
        "STATUS_MISMATCH": m["platform_status"].notna()
        & (
            (m["success"] & (m["platform_status"] != "success")) | (~m["success"] & (m["platform_status"] == "success"))
        ),
        "OVERPAYMENT": m["success"] & (applied > 0) & (m["held"].fillna(0) > 0),
        "PARTIAL_PAYMENT": m["success"] & (applied > 0) & ~m["paid_off"].fillna(True).astype(bool),
        "LATE_PAYMENT": m["success"] & (applied > 0) & (settled_day > late_after),
        "DEBIT_FAILED": ~m["success"],
    }
    m["outcome"] = np.select([flags[c].fillna(False).to_numpy(bool) for c in PRECEDENCE], list(PRECEDENCE), "MATCHED")
    requested_day = instructions["requested_at"].dt.tz_convert("Asia/Shanghai").dt.date
    answered = set(records["reference"].dropna())
    due = instructions[(requested_day == DAY) & ~instructions["instruction_id"].isin(answered)].copy()
    due["outcome"] = np.where(
        due["channel"].isin(LISTING_CHANNELS), "MISSING_RESULT",
        np.where(due["platform_status"] == "success", "STATUS_MISMATCH", None),
    )  # fmt: skip
    due = due[due["outcome"].notna()]
    due["key"] = "instruction|" + due["instruction_id"]
    result = pd.concat([m[["record_key", "outcome"]].rename(columns={"record_key": "key"}), due[["key", "outcome"]]])
    elapsed = time.perf_counter() - clock
    print(json.dumps({"seconds": elapsed}), file=sys.stderr)
    return pl.from_pandas(result.reset_index(drop=True))


DUCKDB_SQL = """
WITH inst AS (
  SELECT *, penalty_due_fen + fee_due_fen + interest_due_fen + principal_due_fen AS owed FROM installments
), m AS (
  SELECT r.*, i.instruction_id, i.contract_no, i.installment_no, i.amount_fen AS instr_amount_fen,
         i.platform_status, r.status = 'SUCCESS' AS success, i.instruction_id IS NOT NULL AS matched
  FROM records r LEFT JOIN instructions i ON r.reference = i.instruction_id
), pay AS (
  SELECT m.record_key, t.owed,
         SUM(m.amount_fen) OVER w AS cum_after, m.amount_fen
  FROM m JOIN inst t USING (contract_no, installment_no)
  WHERE m.success AND m.matched
  WINDOW w AS (PARTITION BY m.contract_no, m.installment_no
               ORDER BY m.settled_at, m.channel, m.channel_txn_id ROWS UNBOUNDED PRECEDING)
), alloc AS (
  SELECT record_key, owed,
         LEAST(owed, cum_after) AS applied_after, LEAST(owed, cum_after - amount_fen) AS applied_before,
         amount_fen
  FROM pay
), alloc2 AS (
  SELECT a.*, a.applied_after - a.applied_before AS applied,
         a.amount_fen - (a.applied_after - a.applied_before) AS held,
         MAX(a.applied_after) OVER (PARTITION BY m.contract_no, m.installment_no) >= a.owed AS paid_off,
         a.applied_before >= a.owed AS already_paid
  FROM alloc a JOIN m USING (record_key)
), f AS (
  SELECT m.record_key,
    m.success AND NOT m.matched AS unmatched,
    m.success AND COALESCE(a.already_paid, FALSE) AS duplicate,
    m.success AND t.bound_account IS NOT NULL AND m.account_shown IS NOT NULL AND NOT (
      CASE WHEN contains(m.account_shown, '*')
           THEN starts_with(t.bound_account, regexp_extract(m.account_shown, '^([^*]*)', 1))
                AND ends_with(t.bound_account, regexp_extract(m.account_shown, '([^*]*)$', 1))
           ELSE m.account_shown = t.bound_account END) AS account,
    m.instr_amount_fen IS NOT NULL AND m.amount_fen <> m.instr_amount_fen AS amount,
    m.platform_status IS NOT NULL AND ((m.success AND m.platform_status <> 'success')
      OR (NOT m.success AND m.platform_status = 'success')) AS status,
    m.success AND COALESCE(a.applied, 0) > 0 AND COALESCE(a.held, 0) > 0 AS over,
    m.success AND COALESCE(a.applied, 0) > 0 AND NOT COALESCE(a.paid_off, TRUE) AS partial,
    m.success AND COALESCE(a.applied, 0) > 0
      AND CAST(timezone('Asia/Shanghai', m.settled_at) AS DATE) > t.due_date + t.grace_days AS late,
    NOT m.success AS failed
  FROM m LEFT JOIN alloc2 a USING (record_key) LEFT JOIN inst t USING (contract_no, installment_no)
)
SELECT record_key AS key, CASE
  WHEN unmatched THEN 'UNMATCHED_DEBIT' WHEN duplicate THEN 'DUPLICATE_DEBIT'
  WHEN account THEN 'ACCOUNT_MISMATCH' WHEN amount THEN 'AMOUNT_MISMATCH' WHEN status THEN 'STATUS_MISMATCH'
  WHEN over THEN 'OVERPAYMENT' WHEN partial THEN 'PARTIAL_PAYMENT' WHEN late THEN 'LATE_PAYMENT'
  WHEN failed THEN 'DEBIT_FAILED' ELSE 'MATCHED' END AS outcome
FROM f
UNION ALL
SELECT 'instruction|' || instruction_id AS key,
  CASE WHEN channel IN ('icbc', 'ccb', 'abc') THEN 'MISSING_RESULT' ELSE 'STATUS_MISMATCH' END AS outcome
FROM instructions i
WHERE CAST(timezone('Asia/Shanghai', requested_at) AS DATE) = DATE '2026-11-27'
  AND NOT EXISTS (SELECT 1 FROM records r WHERE r.reference = i.instruction_id)
  AND (channel IN ('icbc', 'ccb', 'abc') OR platform_status = 'success')
"""


def run_duckdb(folder: Path) -> pl.DataFrame:
    import duckdb

    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    for name in ("records", "instructions", "installments"):
        conn.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{folder / (name + '.parquet')}')")
    clock = time.perf_counter()
    result = pl.from_arrow(conn.execute(DUCKDB_SQL).to_arrow_table())
    elapsed = time.perf_counter() - clock
    print(json.dumps({"seconds": elapsed}), file=sys.stderr)
    return result


def child(engine: str, folder: Path, repeat: int) -> None:
    """``repeat`` runs in this process (each prints its seconds); the first pays the engine's warm-up."""
    for _ in range(repeat):
        outcomes = {"polars": run_polars, "pandas": run_pandas, "duckdb": run_duckdb}[engine](folder)
    outcomes.write_parquet(folder / f"out_{engine}.parquet")
    peak = peak_mib()
    print(json.dumps({"peak_mib": peak}), file=sys.stderr)


def measure(engine: str, folder: Path, repeat: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", engine, "--folder", str(folder), "--repeat", str(repeat)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    facts: dict[str, float] = {}
    runs: list[float] = []
    for line in done.stderr.splitlines():
        if line.startswith("{"):
            fact = json.loads(line)
            if "seconds" in fact:
                runs.append(fact["seconds"])
            facts.update(fact)
    facts["first"], facts["seconds"] = runs[0], min(runs[1:] or runs)
    return facts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, action="append")
    parser.add_argument("--child")
    parser.add_argument("--folder")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine; the fastest after the first counts")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.folder), args.repeat)
        return
    for size in args.records or [1_000_000]:
        folder = Path(tempfile.mkdtemp(prefix="recon-match-"))
        prepare(size, folder)
        records = pl.scan_parquet(folder / "records.parquet").select(pl.len()).collect().item()
        results = {engine: measure(engine, folder, args.repeat) for engine in ("polars", "pandas", "duckdb")}
        outs = {e: pl.read_parquet(folder / f"out_{e}.parquet").sort("key") for e in results}
        agree = all(outs["polars"].equals(outs[e]) for e in ("pandas", "duckdb"))
        print(f"{records} records ({size} asked), outcomes agree across engines: {agree}")
        base = results["polars"]["seconds"]
        for engine, facts in results.items():
            print(
                f"  {engine:<7} {facts['seconds']:7.2f} s  {facts['seconds'] / base:5.1f}x polars  "
                f"(first run {facts['first']:6.2f} s)  peak {facts['peak_mib']:7.0f} MiB"
            )
        if not agree:
            for engine in ("pandas", "duckdb"):
                diff = (
                    outs["polars"]
                    .join(outs[engine], on="key", how="full", suffix="_other")
                    .filter(pl.col("outcome").ne_missing(pl.col("outcome_other")))
                )
                print(f"  polars vs {engine}: {diff.height} differ\n{diff.head(5)}")


if __name__ == "__main__":
    main()
