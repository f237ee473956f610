"""A reviewed workbook comes back: resolutions applied with an audit, all or nothing, each refusal
naming its sheet and cell; the same workbook twice changes nothing; a resolved exception leaves the
next workbook. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, select, update
from typer.testing import CliRunner

from flows.cli import app
from flows.config import load_config
from flows.db import ExceptionItem, ExceptionReview
from flows.runner import reconcile_dates
from flows.workbook import COLUMNS, META_SHEET, column_letter
from tests.books import deliver, imported_book

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 11, 27)
RESOLUTION, NOTE, KEY = (column_letter(c) for c in ("resolution", "note", "exception_key"))


def _fill(source: Path, target: Path, edits: dict[str, Any], sheet_index: int = 1) -> Path:
    book = load_workbook(source)
    sheet = book.worksheets[sheet_index]
    for where, value in edits.items():
        if "!" in where:
            name, cell = where.split("!")
            book[name][cell] = value
        else:
            sheet[where] = value
    book.save(target)
    return target


def _exceptions(url: str) -> dict[str, tuple[str, str | None, str | None]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(ExceptionItem.exception_key, ExceptionItem.status, ExceptionItem.resolution_code,
                                   ExceptionItem.resolution_note)).all()  # fmt: skip
    engine.dispose()
    return {key: (status, code, note) for key, status, code, note in rows}


def _reviews(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(ExceptionReview.exception_key, ExceptionReview.resolution_code,
                                   ExceptionReview.reviewer, ExceptionReview.imported_by,
                                   ExceptionReview.workbook_sha256, ExceptionReview.status_before)).all()  # fmt: skip
    engine.dispose()
    return [tuple(r) for r in rows]


def _import(path: Path) -> Any:
    return CliRunner().invoke(app, ["review-import", str(path), "--reviewer", "王会计"])


def test_a_reviewed_workbook_round_trip_and_every_refusal(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, DAY, DAY, 200, seed=53)
    deliver(Path(recon_env["RECON_HOME"]), DAY, days.files[DAY])
    config = load_config({**os.environ, **recon_env})
    summary = reconcile_dates(config, [DAY])[0]
    written = Path(summary["workbook"])
    sheet = load_workbook(written, read_only=True).worksheets[1]
    rows = list(sheet.iter_rows(min_row=2, max_row=3, values_only=True))
    first, second = (str(r[COLUMNS.index("exception_key")]) for r in rows)
    before = _exceptions(url)

    # every refusal: nothing applied, each problem named by sheet and cell
    name = sheet.title
    cases = {
        "unknown": ({f"{KEY}2": "UNMATCHED_DEBIT|nowhere|x", f"{RESOLUTION}2": "无需处理"},
                    f"{name}!A2: exception "),
        "not allowed": ({f"{RESOLUTION}2": "退款了"}, f"{name}!{RESOLUTION}2: '退款了' is not an allowed resolution"),
        "note missing": ({f"{RESOLUTION}2": "无需处理"}, f"{name}!{NOTE}2: a note is required"),
        "protected": ({f"{column_letter('amount_yuan')}2": 1.23, f"{RESOLUTION}3": "无需处理"},
                      f"{name}!{column_letter('amount_yuan')}2: a protected cell was changed"),
        "other database": ({f"{META_SHEET}!B2": "another-db", f"{RESOLUTION}2": "无需处理"},
                           "belongs to another database"),
    }  # fmt: skip
    for case, (edits, said) in cases.items():
        done = _import(_fill(written, tmp_path / f"{case}.xlsx", edits))
        assert done.exit_code == 2, (case, done.output)
        assert said in done.output, (case, done.output)
        assert "refused" in done.output and _exceptions(url) == before, case

    # a good review: two resolutions, each with its note
    decided = {f"{RESOLUTION}2": "无需处理", f"{NOTE}2": "重复提醒,已核实", f"{RESOLUTION}3": "已核销",
               f"{NOTE}3": "金额过小,经主管批准核销"}  # fmt: skip
    reviewed = _fill(written, tmp_path / "reviewed.xlsx", decided)
    done = _import(reviewed)
    assert done.exit_code == 0, done.output
    assert "2 resolution(s) applied, 0 already so" in done.output
    after = _exceptions(url)
    assert after[first] == ("RESOLVED", "NO_ACTION", "重复提醒,已核实")
    assert after[second] == ("RESOLVED", "WRITTEN_OFF", "金额过小,经主管批准核销")
    assert {k: v for k, v in after.items() if k not in (first, second)} == {
        k: v for k, v in before.items() if k not in (first, second)
    }
    audit = _reviews(url)
    assert sorted(r[:4] for r in audit) == sorted([(first, "NO_ACTION", "王会计", "王会计"),
                                                    (second, "WRITTEN_OFF", "王会计", "王会计")])  # fmt: skip
    assert {r[5] for r in audit} == {"OPEN"} and len({r[4] for r in audit}) == 1

    # the same workbook again changes nothing
    again = _import(reviewed)
    assert again.exit_code == 0 and "0 resolution(s) applied, 2 already so" in again.output
    assert _exceptions(url) == after and len(_reviews(url)) == 2

    # a rerun of the date keeps the resolutions (same facts), and the next workbook leaves them out
    rerun = reconcile_dates(config, [DAY])[0]
    assert _exceptions(url)[first][:2] == ("RESOLVED", "NO_ACTION")
    keys = {str(r[COLUMNS.index("exception_key")]) for s in load_workbook(rerun["workbook"], read_only=True).worksheets
            for r in s.iter_rows(min_row=2, values_only=True) if len(r) > COLUMNS.index("exception_key")}  # fmt: skip
    assert first not in keys and second not in keys

    # an exception whose facts changed in the books since the workbook was written
    latest = Path(rerun["workbook"])
    target = str(next(r for r in load_workbook(latest, read_only=True).worksheets[1].iter_rows(
        min_row=2, max_row=2, values_only=True))[COLUMNS.index("exception_key")])  # fmt: skip
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(ExceptionItem).where(ExceptionItem.exception_key == target).values(facts="held 9.99"))
    engine.dispose()
    changed = _import(_fill(latest, tmp_path / "changed.xlsx", {f"{RESOLUTION}2": "无需处理"}))
    assert changed.exit_code == 2 and "the exception changed since the workbook was written" in changed.output
    assert "→ held 9.99" in changed.output

    # one that reopens (its facts changed after a reviewer resolved it) comes back, marked, with the
    # earlier resolution
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            update(ExceptionItem)
            .where(ExceptionItem.exception_key == second)
            .values(status="OPEN", resolution_code=None, resolution_note="reopened by run r9: facts changed")
        )
    engine.dispose()
    report = CliRunner().invoke(app, ["report", "--date", DAY.isoformat(), "--out", str(tmp_path / "again.xlsx")])
    assert report.exit_code == 0, report.output
    rows = [r for s in load_workbook(tmp_path / "again.xlsx", read_only=True).worksheets[1:-2]
            for r in s.iter_rows(min_row=2, values_only=True) if len(r) > COLUMNS.index("exception_key")]  # fmt: skip
    marked = next(r for r in rows if r[COLUMNS.index("exception_key")] == second)
    assert marked[COLUMNS.index("status")] == "重新打开 (原处理: 已核销)"
