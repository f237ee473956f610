"""Shared fixtures: one Prefect test harness per session, databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Prefect reads its settings on import: point it at a private home first.
_PREFECT_HOME = tempfile.mkdtemp(prefix="recon-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

PG_ADMIN_URL = os.environ.get("RECON_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REAL_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "real_samples"
SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for the whole session."""
    name = f"recon_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # pragma: no cover - the environment, not the code
        pytest.fail(f"PostgreSQL is needed for the database tests and is not reachable at {PG_ADMIN_URL}: {error}")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database on each engine: a new SQLite file, or a wiped PostgreSQL schema."""
    from flows.store import upgrade_database

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'recon.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    upgrade_database(url)
    yield url


@pytest.fixture
def recon_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for a run: its own home, inbox and database."""
    env = {"RECON_HOME": str(tmp_path / "home"), "RECON_DATABASE_URL": db_url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
