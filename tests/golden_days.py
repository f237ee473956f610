"""Golden days: whole days under ``sample_data/golden/<name>/`` with the outcomes and installment
states the product must reproduce.

Regeneration is an explicit opt-in and never overwrites silently::

    python -m tests.golden_days write-inputs      # inputs of days that have none yet
    python -m tests.golden_days write-expected    # expected files of days that have none yet
    RECON_GOLDEN_OVERWRITE=1 python -m tests.golden_days write-expected   # replace them, knowingly
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

GOLDEN = Path(__file__).resolve().parents[1] / "sample_data" / "golden"


@dataclass(frozen=True)
class GoldenDay:
    name: str
    day: dt.date
    loans: int
    seed: int
    why: str


DAYS = (
    GoldenDay("ordinary_day", dt.date(2026, 11, 27), 80, 101, "an ordinary weekday"),
    GoldenDay("month_end_31st", dt.date(2026, 1, 31), 80, 102, "due dates clamp to shorter months"),
    GoldenDay("year_end", dt.date(2026, 12, 31), 80, 103, "December to January"),
    GoldenDay("february_28th", dt.date(2027, 2, 28), 80, 104, "the last day of February"),
    GoldenDay("leap_day", dt.date(2028, 2, 29), 80, 105, "a leap day"),
    GoldenDay("tiny_day", dt.date(2026, 11, 1), 12, 106, "a handful of loans"),
    GoldenDay("busier_day", dt.date(2026, 11, 30), 200, 107, "more of everything"),
    GoldenDay("new_year_day", dt.date(2027, 1, 1), 60, 108, "a holiday is a business date too"),
    GoldenDay("mid_month", dt.date(2026, 6, 15), 90, 109, "another seed, another mix"),
    GoldenDay("first_of_month", dt.date(2026, 3, 1), 70, 110, "after a short month"),
)


def write_inputs(day: GoldenDay) -> None:
    from flows.importer import write_snapshot
    from reconcile.synthetic import generate_days

    folder = GOLDEN / day.name
    if folder.exists():
        print(f"{day.name}: inputs exist, left as they are")
        return
    generated = generate_days(day.day, day.day, day.loans, day.seed)
    write_snapshot(folder / "snapshot", generated.loans, generated.installments, generated.instructions)
    inbox = folder / "inbox" / day.day.isoformat()
    inbox.mkdir(parents=True)
    for name, data in generated.files[day.day].items():
        (inbox / name).write_bytes(data)
    generated.expected.write_csv(folder / "manifest.csv")
    (folder / "README.txt").write_text(f"{day.day.isoformat()}: {day.why}\n", encoding="utf-8")
    print(f"{day.name}: inputs written")


def run_day(day: GoldenDay) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Run the day on a fresh SQLite database; return (outcomes, installments) as compared."""
    from sqlalchemy import select

    from flows.config import load_config
    from flows.db import ChannelRecord, ExceptionItem, Installment, table_of
    from flows.importer import import_snapshot
    from flows.runner import reconcile_dates
    from flows.store import connect, read_frame, upgrade_database

    folder = GOLDEN / day.name
    with tempfile.TemporaryDirectory() as home:
        env = {"RECON_HOME": home, "RECON_INBOX": str(folder / "inbox")}
        config = load_config({**os.environ, **env})
        config = type(config)(database_url=f"sqlite:///{home}/recon.db", paths=config.paths, settings=config.settings)
        upgrade_database(config.database_url)
        engine = connect(config.database_url)
        import_snapshot(engine, folder / "snapshot")
        reconcile_dates(config, [day.day], workbook=False)
        with engine.connect() as conn:
            records = table_of(ChannelRecord)
            outcomes = read_frame(
                conn,
                select(records.c.record_key, records.c.outcome, records.c.flags, records.c.applied_fen,
                       records.c.held_fen),
                {"record_key": pl.String, "outcome": pl.String, "flags": pl.String, "applied_fen": pl.Int64,
                 "held_fen": pl.Int64},
            )  # fmt: skip
            others = read_frame(
                conn,
                select(table_of(ExceptionItem).c.exception_key, table_of(ExceptionItem).c.outcome).where(
                    table_of(ExceptionItem).c.subject != "record"
                ),
                {"exception_key": pl.String, "outcome": pl.String},
            )
            installments = read_frame(
                conn,
                select(Installment.contract_no, Installment.installment_no, Installment.status,
                       Installment.principal_paid_fen, Installment.interest_paid_fen)
                .where(Installment.status != "DUE"),
                {"contract_no": pl.String, "installment_no": pl.Int64, "status": pl.String,
                 "principal_paid_fen": pl.Int64, "interest_paid_fen": pl.Int64},
            )  # fmt: skip
        engine.dispose()
    return _as_compared(outcomes, others), installments.sort("contract_no", "installment_no")


def _as_compared(records: pl.DataFrame, others: pl.DataFrame) -> pl.DataFrame:
    """Record outcomes and the other exceptions (by key) in one frame, as the expected files hold them."""
    others = others.select(
        pl.col("exception_key").str.splitn("|", 2).struct.field("field_1").alias("record_key"),
        "outcome",
        pl.lit("").alias("flags"),
        pl.lit(0, pl.Int64).alias("applied_fen"),
        pl.lit(0, pl.Int64).alias("held_fen"),
    )
    return pl.concat([records, others]).sort("record_key")


def day_outcomes_in_memory(day: GoldenDay) -> pl.DataFrame:
    """Every explained outcome of the day, from the core alone."""
    return _in_memory(day).outcomes


def run_day_in_memory(day: GoldenDay) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The same day with no database: the core alone (``reconcile.day``); the same shapes as
    :func:`run_day`."""
    from reconcile.lifecycle import exception_rows

    result = _in_memory(day)
    records = result.outcomes.filter(pl.col("subject") == "record").select(
        pl.col("subject_key").alias("record_key"), "outcome", "flags", "applied_fen", "held_fen"
    )
    others = exception_rows(result.outcomes, day.day).filter(pl.col("subject") != "record")
    outcomes = _as_compared(records, others)
    states = result.installments.filter(pl.col("status") != "DUE").select(
        "contract_no", "installment_no", "status", "principal_paid_fen", "interest_paid_fen"
    )
    return outcomes, states.sort("contract_no", "installment_no")


def _in_memory(day: GoldenDay) -> Any:
    """The day through ``reconcile.day``: the snapshot and inbox read as the run reads them."""
    from flows.config import load_config
    from flows.importer import read_text_csv
    from reconcile.day import reconcile_in_memory
    from reconcile.intake import DiscoveredFile, claim, parse_files
    from reconcile.snapshot import installments_as_imported, parse_snapshot

    folder = GOLDEN / day.name
    settings = load_config({**os.environ, "RECON_HOME": tempfile.gettempdir()}).settings
    snapshot_dir = folder / "snapshot"
    snapshot = parse_snapshot(
        read_text_csv(snapshot_dir / "loans.csv"),
        read_text_csv(snapshot_dir / "installments.csv"),
        read_text_csv(snapshot_dir / "instructions.csv"),
    )
    assert snapshot.errors.height == 0, snapshot.errors
    files = []
    for path in sorted((folder / "inbox" / day.day.isoformat()).iterdir()):
        data = path.read_bytes()
        channel, layout = claim(path.name, data, settings)
        digest = hashlib.sha256(data).hexdigest()
        files.append(DiscoveredFile(path.name, path, digest, len(data), channel, data, layout=layout))
    parsed = parse_files(files, settings, day.day)
    installments = installments_as_imported(snapshot.installments, snapshot.loans)
    return reconcile_in_memory(snapshot.loans, installments, snapshot.instructions, parsed, day.day, settings)


def write_expected(day: GoldenDay) -> None:
    folder = GOLDEN / day.name
    targets = [folder / "expected_outcomes.csv", folder / "expected_installments.csv"]
    if any(t.exists() for t in targets) and os.environ.get("RECON_GOLDEN_OVERWRITE") != "1":
        print(f"{day.name}: expected files exist; set RECON_GOLDEN_OVERWRITE=1 to replace them")
        return
    outcomes, installments = run_day(day)
    outcomes.write_csv(targets[0])
    installments.write_csv(targets[1])
    print(f"{day.name}: expected files written")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("write-inputs", "write-expected"):
        print(__doc__)
        return 2
    for day in DAYS:
        (write_inputs if argv[0] == "write-inputs" else write_expected)(day)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
