"""A date that cannot be reconciled is left as it was, its run is never left RUNNING, and the dates
after it still run; a failure after the commit (archive, workbook) is said and the run still ends."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from flows import runner
from flows.config import load_config
from flows.db import Run
from tests.books import deliver, imported_book
from tests.dbdump import dump_books

pytestmark = pytest.mark.slow
D1, D2 = dt.date(2026, 11, 26), dt.date(2026, 11, 27)


def _book(recon_env: dict[str, str], tmp_path: Path) -> Any:
    days = imported_book(recon_env["RECON_DATABASE_URL"], tmp_path, D1, D2, 120, seed=45)
    for day in (D1, D2):
        deliver(Path(recon_env["RECON_HOME"]), day, days.files[day])
    return load_config({**os.environ, **recon_env})


def _statuses(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(Run.business_date, Run.status).order_by(Run.started_at)).all()
    engine.dispose()
    found: dict[str, list[str]] = {}
    for day, status in rows:
        found.setdefault(day.isoformat(), []).append(status)
    return found


def test_a_failing_date_is_left_as_it_was_and_later_dates_still_run(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    config = _book(recon_env, tmp_path)
    runner.reconcile_dates(config, [D1, D2], workbook=False)
    books = dump_books(url, open_exceptions_only=True)

    def broken_parse(config: Any, files: Any, day: dt.date) -> Any:
        if day == D1:
            raise OSError("the inbox could not be read")
        return runner.parse_and_validate(config, files, day)

    stages = replace(runner.PLAIN, parse=broken_parse)
    summaries = runner.reconcile_dates(config, [D1], workbook=False, stages=stages)
    assert [(s["business_date"], s["status"]) for s in summaries] == [(D1.isoformat(), "FAILED"),
                                                                       (D2.isoformat(), "SUCCEEDED")]  # fmt: skip
    assert "the inbox could not be read" in summaries[0]["error"]
    assert dump_books(url, open_exceptions_only=True) == books
    statuses = _statuses(url)
    assert statuses[D1.isoformat()][-1] == "FAILED" and "RUNNING" not in statuses[D1.isoformat()]
    with pytest.raises(runner.DatesFailed, match="2026-11-26"):
        runner.raise_if_any_failed(summaries)


def test_a_workbook_that_fails_after_the_commit_is_said(
    recon_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    config = _book(recon_env, tmp_path)

    def no_room(*args: Any, **kwargs: Any) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "write_workbook", no_room)
    summary = runner.reconcile_dates(config, [D2], workbook=True)[0]
    assert summary["status"] == "SUCCEEDED" and summary["balanced"]
    assert summary["errors"] == ["workbook: OSError: [Errno 28] No space left on device"]
    assert _statuses(url)[D2.isoformat()] == ["SUCCEEDED"]
