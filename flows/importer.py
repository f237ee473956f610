"""``recon import-expected``: load a servicing snapshot, all or nothing, idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from flows.db import DebitInstruction, Installment, Loan, table_of
from flows.store import upsert_frame
from reconcile.money import fen_expr_to_yuan_text
from reconcile.snapshot import LOAN_COLUMNS, parse_snapshot


class SnapshotRejected(Exception):
    """The snapshot has bad rows; ``errors`` lists each with file, line and reason."""

    def __init__(self, errors: pl.DataFrame) -> None:
        self.errors = errors
        lines = [
            f"{r['file']}:{r['line_no']} {r['column']}: {r['reason']}" for r in errors.head(20).iter_rows(named=True)
        ]
        more = f"\n… and {errors.height - 20} more" if errors.height > 20 else ""
        super().__init__(f"{errors.height} bad rows, nothing imported:\n" + "\n".join(lines) + more)


@dataclass(frozen=True)
class ImportCounts:
    loans: int
    installments: int
    instructions: int


def read_text_csv(path: Path) -> pl.DataFrame:
    """Every column as text, line numbers as in the file (header = 1), cells stripped."""
    frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    frame = frame.rename({c: c.strip().lstrip("\ufeff") for c in frame.columns})
    return (
        frame.with_columns(pl.all().str.strip_chars())
        .with_row_index("line_no", offset=2)
        .with_columns(pl.col("line_no").cast(pl.Int64))
    )


def import_snapshot(engine: Engine, folder: Path) -> ImportCounts:
    """Validate the three CSVs in ``folder`` and upsert them in one transaction."""
    for required in ("loans.csv", "instructions.csv"):
        if not (folder / required).is_file():
            raise FileNotFoundError(f"{folder / required} is missing: a snapshot needs loans.csv and instructions.csv")
    installments_path = folder / "installments.csv"
    snapshot = parse_snapshot(
        read_text_csv(folder / "loans.csv"),
        read_text_csv(installments_path) if installments_path.is_file() else None,
        read_text_csv(folder / "instructions.csv"),
    )
    if snapshot.errors.height:
        raise SnapshotRejected(snapshot.errors)
    grace = snapshot.loans.select("contract_no", "grace_days")
    installments = (
        snapshot.installments.join(grace, on="contract_no")
        .with_columns(overdue_after=pl.col("due_date") + pl.duration(days=pl.col("grace_days")))
        .drop("grace_days")
    )
    with engine.begin() as conn:
        loan_columns = [c for c in snapshot.loans.columns if c != "contract_no"]
        upsert_frame(conn, table_of(Loan), snapshot.loans, ["contract_no"], loan_columns)
        due_columns = [c for c in installments.columns if c not in ("contract_no", "installment_no")]
        upsert_frame(conn, table_of(Installment), installments, ["contract_no", "installment_no"], due_columns)
        instruction_columns = [c for c in snapshot.instructions.columns if c != "instruction_id"]
        upsert_frame(conn, table_of(DebitInstruction), snapshot.instructions, ["instruction_id"], instruction_columns)
    return ImportCounts(snapshot.loans.height, installments.height, snapshot.instructions.height)


def write_snapshot(folder: Path, loans: pl.DataFrame, installments: pl.DataFrame, instructions: pl.DataFrame) -> None:
    """Write a snapshot in the import format (amounts as yuan text, times ISO with offset)."""
    folder.mkdir(parents=True, exist_ok=True)
    loans.select(
        *[fen_expr_to_yuan_text("principal_fen").alias(c) if c == "principal" else pl.col(c) for c in LOAN_COLUMNS]
    ).write_csv(folder / "loans.csv")
    installments.select(
        "contract_no",
        "installment_no",
        "due_date",
        *[fen_expr_to_yuan_text(f"{p}_due_fen").alias(f"{p}_due") for p in ("principal", "interest", "fee", "penalty")],
    ).write_csv(folder / "installments.csv")
    instructions.select(
        "instruction_id",
        "contract_no",
        "installment_no",
        "channel",
        "account",
        fen_expr_to_yuan_text("amount_fen").alias("amount"),
        pl.col("requested_at")
        .dt.convert_time_zone("Asia/Shanghai")
        .dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
        .alias("requested_at"),
        "platform_status",
        pl.col("platform_code").fill_null(""),
    ).write_csv(folder / "instructions.csv")
