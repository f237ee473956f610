"""What a night holds while it writes: the day once, in its outcomes, not also in the files read.

The memory itself is measured by ``bench/bench_night.py`` (peak RSS per size); these tests prove
the runner lets go of what it no longer needs and that the books come out as the manifest says.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl

from flows import runner
from flows.config import load_config
from tests.books import deliver, imported_book
from tests.dbdump import stored_outcomes

DAY = dt.date(2026, 11, 27)


def test_the_write_gets_the_day_once_and_the_books_are_the_manifests(
    recon_env: dict[str, str], tmp_path: Path
) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, DAY, DAY, 300, 17, history=True, attempts=2)
    deliver(Path(recon_env["RECON_HOME"]), DAY, days.files[DAY])

    seen: dict[str, Any] = {}
    read_bytes: list[int] = []

    def parse(config: Any, files: list[Any], day: dt.date) -> Any:
        read_bytes.extend(len(f.data) for f in files)
        return runner.parse_and_validate(config, files, day)

    def write(config: Any, day: dt.date, run_id: str, outcomes: pl.DataFrame, ledger: pl.DataFrame,
              parsed: list[Any]) -> dict[str, Any]:  # fmt: skip
        seen["records_held_by_files"] = sum(p.records.height for p in parsed)
        seen["records_in_outcomes"] = outcomes.filter(pl.col("subject") == "record").height
        return runner.write_results(config, day, run_id, outcomes, ledger, parsed)

    def archive(files: list[Any], parsed: list[Any], *args: Any) -> None:
        seen["bytes_held_by_files"] = sum(len(f.data) for f in files)
        original(files, parsed, *args)

    original = runner.file_away
    runner.file_away = archive  # type: ignore[assignment]
    try:
        stages = runner.Stages(parse=parse, write=write)
        summary = runner.reconcile_dates(load_config(), [DAY], workbook=False, cascade=False, stages=stages)[0]
    finally:
        runner.file_away = original  # type: ignore[assignment]

    assert summary["status"] == "SUCCEEDED" and summary["balanced"] is True
    assert sum(read_bytes) > 0 and seen["bytes_held_by_files"] == 0
    assert seen["records_held_by_files"] == 0
    assert seen["records_in_outcomes"] == summary["records"] > 200
    # the files' own lines were let go, not lost: every record is stored with the outcome it should have
    records = days.expected.filter(pl.col("subject") == "record").join(
        stored_outcomes(url), on="subject_key", how="full", coalesce=True
    )
    wrong = records.filter(pl.col("expected_outcome").ne_missing(pl.col("outcome")))
    assert wrong.height == 0, f"records whose outcome differs from the manifest:\n{wrong}"
    assert (Path(recon_env["RECON_HOME"]) / "archive" / DAY.isoformat()).is_dir()
