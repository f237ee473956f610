"""The servicing snapshot: bad rows refuse the whole import; the same files twice change nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flows.db import DebitInstruction, Installment, Loan
from flows.importer import SnapshotRejected, import_snapshot
from flows.store import connect

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
