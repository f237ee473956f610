"""`recon report` writes a date's workbook again from the database, in either language, on SQLite
and PostgreSQL: the same exceptions as the run's own workbook."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from flows.cli import app
from flows.config import load_config
from flows.runner import reconcile_dates
from flows.workbook import COLUMNS
from tests.books import deliver, imported_book

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 11, 27)


def _keys(path: Path) -> set[str]:
    book = load_workbook(path, read_only=True)
    column = COLUMNS.index("exception_key")
    return {row[column] for sheet in book.worksheets[1:-2] for row in sheet.iter_rows(min_row=2, values_only=True)
            if len(row) > column and row[column]}  # fmt: skip


def test_a_dates_workbook_is_written_again_from_the_books(recon_env: dict[str, str], tmp_path: Path) -> None:
    days = imported_book(recon_env["RECON_DATABASE_URL"], tmp_path, DAY, DAY, 200, seed=51)
    home = Path(recon_env["RECON_HOME"])
    deliver(home, DAY, days.files[DAY])
    summary = reconcile_dates(load_config({**os.environ, **recon_env}), [DAY])[0]
    out = tmp_path / "again" / "en.xlsx"
    done = CliRunner().invoke(app, ["report", "--date", DAY.isoformat(), "--lang", "en", "--out", str(out)])
    assert done.exit_code == 0, done.output
    book = load_workbook(out, read_only=True)
    assert book.sheetnames[0] == "Summary" and book.sheetnames[-2:] == ["Instructions", "_recon"]
    assert _keys(out) == _keys(Path(summary["workbook"])) and _keys(out)
    assert not (out.parent / "recon_20261127.xlsx").exists()  # written where asked, the current one untouched
    assert (home / "reports" / "recon_20261127.xlsx").read_bytes() == Path(summary["workbook"]).read_bytes()
    missing = CliRunner().invoke(app, ["report", "--date", "2026-11-26"])
    assert missing.exit_code == 2 and "not reconciled yet" in missing.output
