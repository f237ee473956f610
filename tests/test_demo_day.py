"""The sample day shipped for ``make demo`` runs through the flow and gives its manifest's outcomes."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from flows.importer import import_snapshot
from tests.dbdump import stored_outcomes

DEMO = Path(__file__).resolve().parents[1] / "sample_data" / "demo"
pytestmark = pytest.mark.slow


def test_the_sample_day_runs_balanced_with_the_outcomes_its_manifest_expects(
    prefect_harness: None, recon_env: dict[str, str]
) -> None:
    from flows.nightly import reconcile_business_date
    from flows.store import connect

    day = dt.date.fromisoformat((DEMO / "business_date.txt").read_text().strip())
    shutil.copytree(DEMO / "inbox" / day.isoformat(), Path(recon_env["RECON_HOME"]) / "inbox" / day.isoformat())
    engine = connect(recon_env["RECON_DATABASE_URL"])
    import_snapshot(engine, DEMO / "snapshot")
    engine.dispose()

    summary = reconcile_business_date(day)
    assert summary["balanced"] is True
    expected = pl.read_csv(DEMO / "expected.csv").filter(pl.col("subject") == "record")
    records = expected.join(stored_outcomes(recon_env["RECON_DATABASE_URL"]), on="subject_key", how="left")
    wrong = records.filter(pl.col("expected_outcome").ne_missing(pl.col("outcome")))
    assert records.height > 100 and wrong.height == 0, f"records whose outcome differs from the manifest:\n{wrong}"
    assert summary["outcomes"]["INVALID_RECORD"] >= 2 and summary["outcomes"]["FILE_REJECTED"] >= 1
