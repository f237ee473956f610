"""What the load stage reads follows the fallback window the matcher uses (one setting, both places)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import polars as pl

from flows.config import load_config
from flows.importer import import_snapshot, write_snapshot
from flows.stages.load import load_state
from flows.store import connect
from reconcile.synthetic import generate_days

DAY = dt.date(2026, 11, 27)


def test_the_fallback_window_widens_what_is_loaded(db_url: str, tmp_path: Path) -> None:
    days = generate_days(DAY, DAY, 40, seed=3)
    # one instruction requested five days before the date; nothing names it
    early = days.instructions.head(1).with_columns(
        instruction_id=pl.lit("PEARLY0001"), requested_at=pl.col("requested_at") - pl.duration(days=5)
    )
    write_snapshot(tmp_path / "snap", days.loans, days.installments, pl.concat([days.instructions, early]))
    engine = connect(db_url)
    import_snapshot(engine, tmp_path / "snap")
    settings = load_config({"RECON_HOME": str(tmp_path)}).settings
    loaded = {
        window: load_state(engine, DAY, [], replace(settings, fallback_window_days=window)).instructions
        for window in (3, 6)
    }
    engine.dispose()
    assert "PEARLY0001" not in loaded[3]["instruction_id"].to_list()
    assert "PEARLY0001" in loaded[6]["instruction_id"].to_list()
    assert loaded[6].height == loaded[3].height + 1
