"""What an operator does, end to end: a Prefect server on loopback backed by PostgreSQL, `recon
deploy` (the work pool, then prefect.yaml), a process worker with no RECON_* environment of its own,
a rerun of two generated days triggered with parameters, and a bad one refused; then the database,
the workbooks and the artifacts are checked and everything started is stopped."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from flows.db import Run
from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
D1, D2 = dt.date(2026, 11, 26), dt.date(2026, 11, 27)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database(name: str) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A Prefect server on 127.0.0.1 whose own database is PostgreSQL; its environment."""
    name = f"recon_prefect_{uuid.uuid4().hex[:8]}"
    url = _database(name).replace("postgresql+psycopg://", "postgresql+asyncpg://")
    port = _free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_DATABASE_CONNECTION_URL": url,
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}  # fmt: skip
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the Prefect server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
        yield env
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        _drop(name)


def _api(env: dict[str, str], method: str, path: str, **body: Any) -> Any:
    response = httpx.request(method, f"{env['PREFECT_API_URL']}{path}", json=body or None, timeout=30)
    response.raise_for_status()
    return response.json()


def _wait(env: dict[str, str], run_id: str, seconds: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = _api(env, "GET", f"/flow_runs/{run_id}")
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return dict(run)
        time.sleep(1)
    pytest.fail(f"flow run {run_id} did not finish in {seconds} s")


def test_deploy_once_then_trigger_a_rerun_from_a_worker(prefect_server: dict[str, str], tmp_path: Path) -> None:
    env = prefect_server
    name = f"recon_deploy_{uuid.uuid4().hex[:8]}"
    recon_url = _database(name)
    try:
        home = tmp_path / "home"
        settings = tmp_path / "recon.env"
        settings.write_text(f"RECON_HOME={home}\nRECON_DATABASE_URL={recon_url}\nRECON_NIGHTLY_AT=07:45\n")
        operator = {**env, "RECON_SETTINGS_FILE": str(settings)}

        def recon(*args: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run([str(BIN / "recon"), *args], env=operator, cwd=tmp_path, capture_output=True,
                                  text=True, timeout=300)  # fmt: skip
            assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
            return done

        recon("init")
        recon("generate", "--from", D1.isoformat(), "--to", D2.isoformat(), "--loans", "150", "--seed", "17",
              "--out", str(tmp_path / "gen"))  # fmt: skip
        recon("import-expected", str(tmp_path / "gen" / "snapshot"))
        for day in (D1, D2):
            target = home / "inbox" / day.isoformat()
            target.mkdir(parents=True)
            for source in (tmp_path / "gen" / "inbox" / day.isoformat()).iterdir():
                (target / source.name).write_bytes(source.read_bytes())
        deployed = recon("deploy")
        assert "work pool 'recon' created" in deployed.stdout and "07:45" in deployed.stdout

        deployments = {d["name"]: d for d in _api(env, "POST", "/deployments/filter")}
        assert set(deployments) == {"reconcile-nightly", "reconcile-rerun"}
        nightly = deployments["reconcile-nightly"]
        assert nightly["schedules"][0]["schedule"]["cron"] == "45 7 * * *"
        assert nightly["schedules"][0]["schedule"]["timezone"] == "Asia/Shanghai"
        assert deployments["reconcile-rerun"]["parameter_openapi_schema"]["required"] == ["dates"]

        # two workers on the pool: PREFECT_API_URL only; the settings reach them through the deployment
        worker_env = {k: v for k, v in env.items() if not k.startswith("RECON_")}
        worker_log = open(tmp_path / "worker.log", "w")
        workers = [
            subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "recon", "--name", f"w{n}"],
                             env=worker_env, cwd="/", stdout=worker_log, stderr=subprocess.STDOUT)
            for n in (1, 2)
        ]  # fmt: skip
        try:
            rerun = deployments["reconcile-rerun"]["id"]
            dates = {"first": D1.isoformat(), "last": D2.isoformat()}
            good = _api(env, "POST", f"/deployments/{rerun}/create_flow_run",
                        parameters={"dates": dates, "wait_seconds": 240})  # fmt: skip
            # the nightly deployment for the second date at the same time: the date's lock keeps them apart
            same_date = _api(env, "POST", f"/deployments/{nightly['id']}/create_flow_run",
                             parameters={"business_date": D2.isoformat(), "wait_seconds": 240})  # fmt: skip
            finished = _wait(env, good["id"])
            assert finished["state_type"] == "COMPLETED", (tmp_path / "worker.log").read_text()[-3000:]
            assert finished["name"] == f"rerun-{D1}-to-{D2}"
            assert _wait(env, same_date["id"])["state_type"] == "COMPLETED", (tmp_path / "worker.log").read_text()[
                -3000:
            ]
            bad = _api(env, "POST", f"/deployments/{rerun}/create_flow_run",
                       parameters={"dates": {"first": D2.isoformat(), "last": D1.isoformat()}})  # fmt: skip
            refused = _wait(env, bad["id"])
            assert refused["state_type"] == "FAILED" and "before it starts" in refused["state"]["message"]
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(30)
            worker_log.close()

        engine = create_engine(recon_url)
        with engine.connect() as conn:
            runs = conn.execute(select(Run.business_date, Run.status)).all()
        engine.dispose()
        assert {(day, status) for day, status in runs} == {(D1, "SUCCEEDED"), (D2, "SUCCEEDED")}
        assert len(runs) >= 3  # the second date twice, one run after the other
        assert {p.name for p in (home / "reports").glob("recon_????????.xlsx")} == {"recon_20261126.xlsx",
                                                                                    "recon_20261127.xlsx"}  # fmt: skip
        keys = {a["key"] for a in _api(env, "POST", "/artifacts/filter")}
        for day in ("20261126", "20261127"):
            assert {f"recon-summary-{day}", f"recon-open-exceptions-{day}", f"recon-workbook-{day}"} <= keys
    finally:
        _drop(name)
