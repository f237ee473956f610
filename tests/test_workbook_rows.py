"""The workbook holds what a person acts on: the date's exceptions and older open ones of MEDIUM or
HIGH severity; older LOW ones stay in their own date's detail file, so the workbook does not grow
with the history. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select

from flows.config import load_config
from flows.db import ExceptionItem
from flows.runner import reconcile_dates
from flows.runs import exceptions_for_workbook
from flows.store import connect
from tests.books import deliver, imported_book

pytestmark = pytest.mark.slow
D1, D2 = dt.date(2026, 11, 26), dt.date(2026, 11, 27)


def test_older_low_exceptions_stay_out_of_the_workbook(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, D1, D2, 200, seed=49)
    for day in (D1, D2):
        deliver(Path(recon_env["RECON_HOME"]), day, days.files[day])
    reconcile_dates(load_config({**os.environ, **recon_env}), [D1, D2], workbook=False)
    engine = connect(url)
    with engine.connect() as conn:
        older_open = dict(
            conn.execute(
                select(ExceptionItem.severity, func.count())
                .where(ExceptionItem.business_date == D1, ExceptionItem.status == "OPEN")
                .group_by(ExceptionItem.severity)
            ).all()
        )
    rows = exceptions_for_workbook(engine, D2)
    engine.dispose()
    assert older_open.get("LOW", 0) > 0 and older_open.get("MEDIUM", 0) + older_open.get("HIGH", 0) > 0
    older = rows.filter(pl.col("business_date") == D1)
    assert older.height == older_open.get("MEDIUM", 0) + older_open.get("HIGH", 0)
    assert "LOW" not in older["severity"].to_list()
    assert "LOW" in rows.filter(pl.col("business_date") == D2)["severity"].to_list()  # the date's own, all
