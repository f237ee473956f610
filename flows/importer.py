"""``recon import-expected``: load a servicing snapshot, all or nothing, idempotently.

What an installment is due, and what the snapshot says it had paid before reconciliation began
(``opening_*``), are the snapshot's; what it has paid now and its status are the run's, once a run
has touched it. So an import sets the current state from the opening amounts only for an
installment it inserts, or whose opening amounts it changes; importing the same snapshot again
writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine, Table, exists, select, text

from flows.db import DebitInstruction, Installment, Loan, table_of
from flows.runs import latest_reconciled_date
from flows.store import stage_frame, upsert_frame
from reconcile.money import fen_expr_to_yuan_text
from reconcile.snapshot import LOAN_COLUMNS, PAID_PARTS, installments_as_imported, parse_snapshot

INSTALLMENT_KEY = ["contract_no", "installment_no"]
#: The snapshot's columns of an installment: an import updates them when they differ.
OPENING_COLUMNS = [*(f"opening_{part}_paid_fen" for part in PAID_PARTS), "opening_paid_at"]
#: The current state, the run's once it has run: an import sets it only with the opening amounts.
CURRENT_COLUMNS = [*(f"{part}_paid_fen" for part in PAID_PARTS), "paid_at", "status"]


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
    # open installments whose grace ended before the latest reconciled night come in OVERDUE, as
    # that night left every other one (flows/stages/write.py marks only what crosses since)
    with engine.connect() as conn:
        latest = latest_reconciled_date(conn)
    installments = installments_as_imported(snapshot.installments, snapshot.loans, latest)
    with engine.begin() as conn:
        loan_columns = [c for c in snapshot.loans.columns if c != "contract_no"]
        upsert_frame(conn, table_of(Loan), snapshot.loans, ["contract_no"], loan_columns)
        table = table_of(Installment)
        restart_state_where_opening_changed(conn, table, installments)
        snapshot_columns = [c for c in installments.columns if c not in (*INSTALLMENT_KEY, *CURRENT_COLUMNS)]
        # new rows get every column (current state = opening); known rows only the snapshot's
        upsert_frame(conn, table, installments, INSTALLMENT_KEY, snapshot_columns)
        instruction_columns = [c for c in snapshot.instructions.columns if c != "instruction_id"]
        upsert_frame(conn, table_of(DebitInstruction), snapshot.instructions, ["instruction_id"], instruction_columns)
    return ImportCounts(snapshot.loans.height, installments.height, snapshot.instructions.height)


def restart_state_where_opening_changed(conn: Connection, table: Table, installments: pl.DataFrame) -> None:
    """For each stored installment whose opening amounts or opening time the snapshot changes, set
    its current paid amounts, ``paid_at`` and status to what the new opening gives, as for a new one.

    That forgets what the ledger had added on top; the next run of any date re-derives every
    installment it touches as opening + ledger. Installments whose opening is unchanged keep the
    state the runs gave them. Runs before the upsert, while the stored opening is still the old one.
    """
    if not conn.execute(select(exists().select_from(table))).scalar():
        return  # a first import: every row is new, the upsert writes its current state
    staged = stage_frame(
        conn, "stage_opening", installments.select(*INSTALLMENT_KEY, *OPENING_COLUMNS, *CURRENT_COLUMNS), table
    )
    differs = "IS NOT" if conn.dialect.name == "sqlite" else "IS DISTINCT FROM"
    changed = " OR ".join(f'{table.name}."{c}" {differs} s."{c}"' for c in OPENING_COLUMNS)
    same_key = " AND ".join(f'{table.name}."{c}" = s."{c}"' for c in INSTALLMENT_KEY)
    assignments = ", ".join(f'"{c}" = s."{c}"' for c in CURRENT_COLUMNS)
    conn.execute(
        text(f"UPDATE {table.name} SET {assignments} FROM {staged.name} AS s WHERE {same_key} AND ({changed})")
    )
    conn.execute(text(f"DROP TABLE {staged.name}"))


def write_snapshot(folder: Path, loans: pl.DataFrame, installments: pl.DataFrame, instructions: pl.DataFrame) -> None:
    """Write a snapshot in the import format (amounts as yuan text, times ISO with offset).

    ``installments`` may carry what each has had paid (``<part>_paid_fen`` and ``paid_at``, as
    :attr:`reconcile.snapshot.Snapshot.installments` has them): then installments.csv has the paid
    columns too; without them it has only what is due.
    """
    folder.mkdir(parents=True, exist_ok=True)
    loans.select(
        *[fen_expr_to_yuan_text("principal_fen").alias(c) if c == "principal" else pl.col(c) for c in LOAN_COLUMNS]
    ).write_csv(folder / "loans.csv")
    paid = (
        [
            *[
                fen_expr_to_yuan_text(f"{p}_paid_fen").alias(f"{p}_paid")
                for p in ("principal", "interest", "fee", "penalty")
            ],
            _iso_shanghai("paid_at").fill_null("").alias("paid_at"),
        ]
        if "paid_at" in installments.columns
        else []
    )
    installments.select(
        "contract_no",
        "installment_no",
        "due_date",
        *[fen_expr_to_yuan_text(f"{p}_due_fen").alias(f"{p}_due") for p in ("principal", "interest", "fee", "penalty")],
        *paid,
    ).write_csv(folder / "installments.csv")
    instructions.select(
        "instruction_id",
        "contract_no",
        "installment_no",
        "channel",
        "account",
        fen_expr_to_yuan_text("amount_fen").alias("amount"),
        _iso_shanghai("requested_at").alias("requested_at"),
        "platform_status",
        pl.col("platform_code").fill_null(""),
    ).write_csv(folder / "instructions.csv")


def _iso_shanghai(column: str) -> pl.Expr:
    """A UTC time as ISO text in Shanghai time with its offset: ``2026-11-27T03:00:05+08:00``."""
    return pl.col(column).dt.convert_time_zone("Asia/Shanghai").dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
