"""The servicing snapshot: bad rows refuse the whole import; the same files twice change nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select, update

from flows.db import DebitInstruction, Installment, Loan, table_of
from flows.importer import SnapshotRejected, import_snapshot, read_text_csv, write_snapshot
from flows.store import connect
from reconcile.snapshot import parse_snapshot

LOANS = (
    "contract_no,borrower_name,id_number,phone,principal,annual_rate,term_months,repayment_method,start_date,"
    "grace_days,bound_channel,bound_account\n"
    'C001,张三,110101199001011234,13800005678,"12,000.00",0.24,12,equal_installment,2026-01-15,3,alipay,13800005678\n'
    "C002,李四,110101199202021235,13900001234,5000.00,0.18,6,bullet,2026-06-01,0,icbc,6222021234561234\n"
)
INSTRUCTIONS = (
    "instruction_id,contract_no,installment_no,channel,account,amount,requested_at,platform_status,platform_code\n"
    "P1,C001,1,alipay,13800005678,1134.72,2026-02-15T03:00:00,success,\n"
    "P2,C002,1,icbc,6222021234561234,5450.00,2026-12-01T02:00:00+08:00,failed,3001\n"
)


def write(folder: Path, loans: str = LOANS, instructions: str = INSTRUCTIONS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loans.csv").write_text(loans, encoding="utf-8")
    (folder / "instructions.csv").write_text(instructions, encoding="utf-8")
    return folder


def counts(url: str) -> tuple[int, int, int]:
    engine = connect(url)
    with engine.connect() as conn:
        result = tuple(
            int(conn.execute(select(func.count()).select_from(model)).scalar_one())
            for model in (Loan, Installment, DebitInstruction)
        )
    engine.dispose()
    return result  # type: ignore[return-value]


def test_snapshot_imports_with_schedules_built_and_twice_changes_nothing(db_url: str, tmp_path: Path) -> None:
    engine = connect(db_url)
    folder = write(tmp_path / "snap")
    first = import_snapshot(engine, folder)
    assert (first.loans, first.installments, first.instructions) == (2, 13, 2)
    with engine.connect() as conn:
        requested = conn.execute(select(DebitInstruction.requested_at).where(DebitInstruction.instruction_id == "P1"))
        assert requested.scalar_one() == dt.datetime(2026, 2, 14, 19, 0, tzinfo=dt.UTC)  # 03:00 Shanghai
        amount = conn.execute(select(Loan.principal_fen).where(Loan.contract_no == "C001")).scalar_one()
        assert amount == 1_200_000
    import_snapshot(engine, folder)
    assert counts(db_url) == (2, 13, 2)
    engine.dispose()


def test_a_newer_snapshot_updates_what_changed(db_url: str, tmp_path: Path) -> None:
    engine = connect(db_url)
    import_snapshot(engine, write(tmp_path / "v1"))
    import_snapshot(engine, write(tmp_path / "v2", instructions=INSTRUCTIONS.replace("failed,3001", "success,")))
    with engine.connect() as conn:
        status = conn.execute(select(DebitInstruction.platform_status).where(DebitInstruction.instruction_id == "P2"))
        assert status.scalar_one() == "success"
    engine.dispose()


@pytest.mark.parametrize(
    ("broken", "where"),
    [
        (LOANS.replace("5000.00", "5000.005"), "loans.csv:3 principal"),
        (LOANS.replace("2026-06-01", "2026-13-01"), "loans.csv:3 start_date"),
        (LOANS.replace(",bullet,", ",balloon,"), "loans.csv:3 repayment_method"),
        (LOANS.replace("110101199202021235", "11010119920202"), "loans.csv:3 id_number"),
    ],
)
def test_a_bad_row_names_file_line_and_reason_and_nothing_is_imported(
    db_url: str, tmp_path: Path, broken: str, where: str
) -> None:
    engine = connect(db_url)
    with pytest.raises(SnapshotRejected) as rejected:
        import_snapshot(engine, write(tmp_path / "bad", loans=broken))
    assert where in str(rejected.value)
    assert counts(db_url) == (0, 0, 0)
    engine.dispose()


def test_an_instruction_for_an_unknown_installment_is_refused(db_url: str, tmp_path: Path) -> None:
    engine = connect(db_url)
    bad = INSTRUCTIONS.replace("P2,C002,1,", "P2,C002,9,")
    with pytest.raises(SnapshotRejected, match=r"instructions.csv:3 installment_no: installment 9 of C002"):
        import_snapshot(engine, write(tmp_path / "bad", instructions=bad))
    assert counts(db_url) == (0, 0, 0)
    engine.dispose()


# --- what the servicing system says was paid before reconciliation began ----------------------

INSTALLMENTS = (
    "contract_no,installment_no,due_date,principal_due,interest_due,fee_due,penalty_due,"
    "principal_paid,interest_paid,fee_paid,penalty_paid,paid_at\n"
    "C001,1,2026-02-15,934.72,200.00,0.00,0.00,934.72,200.00,,,2026-02-15T03:00:05+08:00\n"
    'C001,2,2026-03-15,953.41,181.31,0.00,0.00,953.41,"¥181.31",0.00,0.00,2026-03-19T10:00:00\n'
    "C001,3,2026-04-15,972.48,162.24,0.00,0.00,,100.00,,,2026-04-16T09:12:00\n"
    "C001,4,2026-05-15,991.93,142.79,0.00,0.00,,,,,\n"
    "C002,1,2026-12-01,5000.00,450.00,0.00,0.00,,,,,\n"
)
HEADER = INSTALLMENTS.splitlines()[0]


def write_with_installments(folder: Path, installments: str = INSTALLMENTS) -> Path:
    write(folder)
    (folder / "installments.csv").write_text(installments, encoding="utf-8")
    return folder


def installment_rows(url: str) -> dict[int, dict[str, object]]:
    """C001's installments by number: opening, current paid amounts, paid_at and status."""
    engine = connect(url)
    parts = ("principal", "interest", "fee", "penalty")
    with engine.connect() as conn:
        rows = conn.execute(select(table_of(Installment)).where(Installment.contract_no == "C001")).mappings().all()
        result = {
            row["installment_no"]: {
                "opening": tuple(row[f"opening_{part}_paid_fen"] for part in parts),
                "opening_paid_at": row["opening_paid_at"],
                "paid": tuple(row[f"{part}_paid_fen"] for part in parts),
                "paid_at": row["paid_at"],
                "status": row["status"],
            }
            for row in rows
        }
    engine.dispose()
    return result


def test_the_paid_history_imports_as_opening_and_as_the_current_state(db_url: str, tmp_path: Path) -> None:
    engine = connect(db_url)
    import_snapshot(engine, write_with_installments(tmp_path / "snap"))
    engine.dispose()
    rows = installment_rows(db_url)
    on_time, late, partly, nothing = rows[1], rows[2], rows[3], rows[4]
    assert on_time["opening"] == on_time["paid"] == (93_472, 20_000, 0, 0)
    assert on_time["paid_at"] == on_time["opening_paid_at"] == dt.datetime(2026, 2, 14, 19, 0, 5, tzinfo=dt.UTC)
    assert on_time["status"] == "PAID"
    assert late["status"] == "PAID_LATE"  # paid on the 19th, grace ended on the 18th
    assert late["paid_at"] == dt.datetime(2026, 3, 19, 2, 0, tzinfo=dt.UTC)  # 10:00 Shanghai
    assert partly["opening"] == partly["paid"] == (0, 10_000, 0, 0)
    assert partly["opening_paid_at"] == dt.datetime(2026, 4, 16, 1, 12, tzinfo=dt.UTC)
    assert partly["paid_at"] is None  # not paid in full: no paid time yet
    assert partly["status"] == "PARTIALLY_PAID"
    assert nothing["opening"] == nothing["paid"] == (0, 0, 0, 0) and nothing["status"] == "DUE"
    assert nothing["paid_at"] is None and nothing["opening_paid_at"] is None


def test_without_paid_columns_nothing_is_paid(db_url: str, tmp_path: Path) -> None:
    due_only = "\n".join(",".join(line.split(",")[:7]) for line in INSTALLMENTS.splitlines()) + "\n"
    engine = connect(db_url)
    import_snapshot(engine, write_with_installments(tmp_path / "snap", due_only))
    engine.dispose()
    rows = installment_rows(db_url)
    assert {row["status"] for row in rows.values()} == {"DUE"}
    assert all(row["opening"] == row["paid"] == (0, 0, 0, 0) for row in rows.values())


def test_reimport_keeps_what_the_runs_derived_unless_the_opening_changes(db_url: str, tmp_path: Path) -> None:
    engine = connect(db_url)
    folder = write_with_installments(tmp_path / "v1")
    import_snapshot(engine, folder)
    # a run has since settled installment 4 in full and installment 3's interest
    with engine.begin() as conn:
        conn.execute(
            update(Installment)
            .where(Installment.contract_no == "C001", Installment.installment_no == 4)
            .values(principal_paid_fen=99_193, interest_paid_fen=14_279, status="PAID",
                    paid_at=dt.datetime(2026, 5, 14, 20, 0, tzinfo=dt.UTC))
        )  # fmt: skip
        conn.execute(
            update(Installment)
            .where(Installment.contract_no == "C001", Installment.installment_no == 3)
            .values(interest_paid_fen=16_224)
        )
    after_run = installment_rows(db_url)
    import_snapshot(engine, folder)
    assert installment_rows(db_url) == after_run  # the same snapshot again changes nothing

    # a newer snapshot says installment 3 had 120.00 of interest paid, and brings installment 5 with
    # it (a new row: its current state is its opening)
    newer = INSTALLMENTS.replace(",,100.00,,,2026-04-16T09:12:00", ",,120.00,,,2026-04-16T09:12:00")
    newer += "C001,5,2026-06-15,1011.77,122.95,0.00,0.00,1011.77,122.95,0,0,2026-06-15T02:00:00\n"
    import_snapshot(engine, write_with_installments(tmp_path / "v2", newer))
    engine.dispose()
    rows = installment_rows(db_url)
    # installment 3's current state restarts from its new opening (the next run adds the ledger on
    # top); the others keep the state the run gave them
    assert rows[3]["opening"] == rows[3]["paid"] == (0, 12_000, 0, 0)
    assert rows[3]["status"] == "PARTIALLY_PAID"
    assert rows[4] == after_run[4] and rows[1] == after_run[1] and rows[2] == after_run[2]
    assert rows[5]["paid"] == (101_177, 12_295, 0, 0) and rows[5]["status"] == "PAID"


def _with_cells(line: int, **cells: str) -> str:
    """INSTALLMENTS with some cells of data line ``line`` (2 = the first) replaced."""
    lines = INSTALLMENTS.splitlines()
    columns = HEADER.split(",")
    values = lines[line - 1].replace('"¥181.31"', "181.31").split(",")
    for name, value in cells.items():
        values[columns.index(name)] = value
    lines[line - 1] = ",".join(values)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("line", "cell", "where"),
    [
        (2, {"interest_paid": "twenty"}, "2 interest_paid: twenty is not an amount in yuan"),
        (2, {"interest_paid": "200.005"}, "2 interest_paid: 200.005 is not an amount in yuan"),
        (4, {"fee_paid": "-1.00"}, "4 fee_paid: -1.00 is negative"),
        (2, {"principal_paid": "934.73"}, "2 principal_paid: 934.73 is more than principal_due 934.72"),
        (3, {"paid_at": "2026-03-32T10:00:00"}, "3 paid_at: 2026-03-32T10:00:00 is not an ISO time"),
        (5, {"paid_at": "2026-05-15T10:00:00"}, "5 paid_at: 2026-05-15T10:00:00 is given while nothing is paid"),
        (4, {"interest_paid": "0.00"}, "4 paid_at: 2026-04-16T09:12:00 is given while nothing is paid"),
    ],
)
def test_a_bad_paid_cell_names_file_line_and_reason(
    db_url: str, tmp_path: Path, line: int, cell: dict[str, str], where: str
) -> None:
    engine = connect(db_url)
    with pytest.raises(SnapshotRejected) as rejected:
        import_snapshot(engine, write_with_installments(tmp_path / "bad", _with_cells(line, **cell)))
    assert f"installments.csv:{where}" in str(rejected.value)
    assert counts(db_url) == (0, 0, 0)
    engine.dispose()


def test_snapshot_written_with_paid_columns_only_when_the_frame_has_them(tmp_path: Path) -> None:
    snapshot = parse_snapshot(
        read_text_csv(write(tmp_path / "in") / "loans.csv"),
        None,
        read_text_csv(tmp_path / "in" / "instructions.csv"),
    )
    due_only = snapshot.installments.drop("principal_paid_fen", "interest_paid_fen", "fee_paid_fen",
                                          "penalty_paid_fen", "paid_at")  # fmt: skip
    write_snapshot(tmp_path / "due", snapshot.loans, due_only, snapshot.instructions)
    header = (tmp_path / "due" / "installments.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "contract_no,installment_no,due_date,principal_due,interest_due,fee_due,penalty_due"

    paid = snapshot.installments.with_columns(
        interest_paid_fen=pl.when(pl.col("installment_no") == 1).then(pl.col("interest_due_fen")).otherwise(0),
        paid_at=pl.when(pl.col("installment_no") == 1).then(pl.lit(dt.datetime(2026, 2, 15, 1, 0, tzinfo=dt.UTC))),
    )
    write_snapshot(tmp_path / "paid", snapshot.loans, paid, snapshot.instructions)
    text = (tmp_path / "paid" / "installments.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER
    assert ",2026-02-15T09:00:00+08:00\n" in text
    again = parse_snapshot(
        read_text_csv(tmp_path / "paid" / "loans.csv"),
        read_text_csv(tmp_path / "paid" / "installments.csv"),
        read_text_csv(tmp_path / "paid" / "instructions.csv"),
    )
    assert again.errors.height == 0
    assert again.installments.equals(paid.select(again.installments.columns))


def test_a_bad_personal_value_is_quoted_masked(db_url: str, tmp_path: Path) -> None:
    """``import-expected`` names the line and the check, never the phone or ID number in full."""
    broken = LOANS.replace("13900001234", "1390000123").replace("110101199202021235", "11010119920202123")
    engine = connect(db_url)
    with pytest.raises(SnapshotRejected) as rejected:
        import_snapshot(engine, write(tmp_path / "bad", loans=broken))
    engine.dispose()
    said = str(rejected.value)
    assert "loans.csv" in said and "phone" in said and "id_number" in said
    assert "1390000123" not in said and "11010119920202123" not in said
    assert "139***0123" in said and "1101*********2123" in said
