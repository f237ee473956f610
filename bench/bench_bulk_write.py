"""Settlement-ledger bulk writes: the product's path against a plain SQLAlchemy executemany.

Both write the same generated ledger rows into an empty ``settlement_ledger`` in one transaction,
in the same process. The product's path is PostgreSQL COPY (CSV made by polars) or, on SQLite,
tuples straight to the driver. Usage:

    python bench/bench_bulk_write.py --rows 1000000 [--database-url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import polars as pl
from sqlalchemy import delete, func, insert, select

from flows.db import LedgerEntry, table_of
from flows.store import connect, insert_frame, upgrade_database


def ledger_rows(count: int) -> pl.DataFrame:
    index = pl.int_range(count, eager=True)
    start = dt.datetime(2026, 11, 26, 18, tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "channel": pl.Series(["icbc", "alipay"] * (count // 2) + ["icbc"] * (count % 2)),
            "channel_txn_id": index.cast(pl.String).str.pad_start(20, "0"),
            "kind": pl.repeat("payment", count, eager=True),
            "business_date": pl.repeat(dt.date(2026, 11, 27), count, eager=True),
            "reference": ("P" + index.cast(pl.String)),
            "contract_no": ("C" + (index // 3).cast(pl.String)),
            "installment_no": (index % 12 + 1),
            "amount_fen": (index % 50_000 + 100),
        }
    ).with_columns(
        penalty_fen=pl.lit(0, pl.Int64),
        fee_fen=pl.lit(0, pl.Int64),
        interest_fen=pl.col("amount_fen") // 10,
        principal_fen=pl.col("amount_fen") - pl.col("amount_fen") // 10,
        held_fen=pl.lit(0, pl.Int64),
        settled_at=pl.lit(start) + pl.duration(seconds=pl.int_range(pl.len()) % 86_400),
        outcome=pl.lit("MATCHED"),
        run_id=pl.lit("bench"),
    )


def timed_write(url: str, frame: pl.DataFrame, plain: bool) -> float:
    engine = connect(url)
    table = table_of(LedgerEntry)
    with engine.begin() as conn:
        conn.execute(delete(table))
    clock = time.perf_counter()
    with engine.begin() as conn:
        if plain:
            rows = frame.to_dicts()
            conn.execute(insert(table), rows)
        else:
            insert_frame(conn, table, frame)
    seconds = time.perf_counter() - clock
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == frame.height
    engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bulk.db'}"
    upgrade_database(url)
    frame = ledger_rows(args.rows)
    product = timed_write(url, frame, plain=False)
    baseline = timed_write(url, frame, plain=True)
    name = url.split(":")[0]
    print(f"{args.rows} ledger rows on {name}")
    print(f"  product path (COPY / driver tuples) {product:7.2f} s  {args.rows / product:10.0f} rows/s")
    print(f"  SQLAlchemy executemany of dicts     {baseline:7.2f} s  {args.rows / baseline:10.0f} rows/s")
    print(f"  speed-up {baseline / product:.1f}x")


if __name__ == "__main__":
    main()
