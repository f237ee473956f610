"""OVERDUE depends only on the calendar: each night marks the installments whose grace ended since
the latest night reconciled, an import brings its late ones in as of that night, and reconciling
an older date again never sets them back. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import create_engine, select

from flows.config import load_config
from flows.db import Installment
from flows.importer import import_snapshot, write_snapshot
from flows.runner import reconcile_dates
from flows.store import connect
from reconcile.synthetic import generate_days

pytestmark = pytest.mark.slow
D1, D2 = dt.date(2026, 11, 26), dt.date(2026, 11, 27)


def _status(url: str, contract: str, number: int) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        status = conn.execute(
            select(Installment.status).where(Installment.contract_no == contract, Installment.installment_no == number)
        ).scalar_one()
    engine.dispose()
    return str(status)


def test_overdue_by_the_calendar(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = generate_days(D1, D2, 60, seed=47)
    # one more loan with an installment whose grace ends on D1 and one long past, neither paid
    extra = days.loans.head(1).with_columns(contract_no=pl.lit("CX0000000000001"), grace_days=pl.lit(3))
    rows = [(1, D1 - dt.timedelta(days=3)), (2, D1 - dt.timedelta(days=40)), (3, D2 + dt.timedelta(days=30))]
    extra_installments = pl.DataFrame(
        {"contract_no": ["CX0000000000001"] * 3, "installment_no": [n for n, _ in rows],
         "due_date": [d for _, d in rows], "principal_due_fen": [10_000] * 3, "interest_due_fen": [500] * 3,
         "fee_due_fen": [0] * 3, "penalty_due_fen": [0] * 3},
    )  # fmt: skip
    extra_installments = extra_installments.select(days.installments.columns).cast(days.installments.schema)
    extra = extra.cast(days.loans.schema)
    write_snapshot(tmp_path / "snap", days.loans, days.installments, days.instructions)
    engine = connect(url)
    import_snapshot(engine, tmp_path / "snap")
    engine.dispose()
    home = Path(recon_env["RECON_HOME"])
    for day in (D1, D2):
        inbox = home / "inbox" / day.isoformat()
        inbox.mkdir(parents=True)
        for name, data in days.files[day].items():
            (inbox / name).write_bytes(data)
    config = load_config({**os.environ, **recon_env})
    reconcile_dates(config, [D1], workbook=False)

    # imported after D1 was reconciled: the one whose grace ended 40 days ago comes in OVERDUE
    write_snapshot(
        tmp_path / "snap2",
        pl.concat([days.loans, extra]),
        pl.concat([days.installments, extra_installments]),
        days.instructions,
    )
    engine = connect(url)
    import_snapshot(engine, tmp_path / "snap2")
    engine.dispose()
    assert _status(url, "CX0000000000001", 2) == "OVERDUE"
    assert _status(url, "CX0000000000001", 1) == "DUE"  # its grace ends on D1: not over on D1
    assert _status(url, "CX0000000000001", 3) == "DUE"

    reconcile_dates(config, [D2], workbook=False)
    assert _status(url, "CX0000000000001", 1) == "OVERDUE"  # crossed its last day of grace that night
    assert _status(url, "CX0000000000001", 3) == "DUE"

    reconcile_dates(config, [D1], workbook=False, cascade=False)  # an older night again, alone
    assert _status(url, "CX0000000000001", 1) == "OVERDUE"  # never set back
