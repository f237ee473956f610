"""The database going away in the middle of a run (a PostgreSQL restart, a failover): one clear
line naming host and database, never the password, never a traceback; a non-zero exit; nothing
partial applied; and the next run recovers."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from flows.db import Run
from tests.books import deliver, imported_book
from tests.dbdump import dump_books

pytestmark = pytest.mark.slow
RECON = Path(sys.executable).with_name("recon")
DAY = dt.date(2026, 11, 27)


def _recon(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RECON), *args], env={**env, **extra}, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip


@pytest.mark.parametrize("where", ["after_records"])
def test_the_database_going_away_mid_run(db_url: str, tmp_path: Path, where: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("an embedded database is a file the run holds open: it does not go away mid-run")
    url = db_url.replace("postgres@", "postgres:s3cret@")  # trust authentication: the password is only shown
    days = imported_book(url, tmp_path, DAY, DAY, 150, seed=47)
    home = tmp_path / "home"
    deliver(home, DAY, days.files[DAY])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RECON_HOME": str(home), "RECON_DATABASE_URL": url,
           "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip
    before = dump_books(url)

    gone = _recon(env, "run", "--date", DAY.isoformat(), RECON_FAULTPOINT=where, RECON_FAULT="drop_connections")
    assert gone.returncode == 6, gone.stderr[-3000:]
    said = gone.stderr.strip().splitlines()
    assert "Traceback" not in gone.stderr and "s3cret" not in gone.stderr + gone.stdout
    assert said and said[-1].startswith(f"{DAY}: NOT reconciled (left as it was): the database ")
    assert "went away during the run" in said[-1] and url.rsplit("/", 1)[1] in said[-1] and "127.0.0.1" in said[-1]
    assert "[SQL:" not in gone.stderr and "parameters" not in gone.stderr
    assert dump_books(url) == before, "something of the failed run was applied"

    again = _recon(env, "run", "--date", DAY.isoformat(), "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert summary["status"] == "SUCCEEDED" and summary["balanced"]
    engine = create_engine(url)
    with engine.connect() as conn:
        statuses = [s for (s,) in conn.execute(select(Run.status).order_by(Run.started_at))]
    engine.dispose()
    assert statuses == ["FAILED", "SUCCEEDED"]
