"""Runs that are atomic, single-writer and convergent, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select, text

from flows.config import load_config
from flows.db import ChannelRecord, LedgerEntry, Run
from flows.importer import import_snapshot, write_snapshot
from flows.runner import reconcile_dates
from flows.store import connect
from reconcile.synthetic import generate_days
from tests.dbdump import dump_books

pytestmark = pytest.mark.slow
FIRST = dt.date(2026, 11, 25)
LAST = dt.date(2026, 11, 27)
CHILD = Path(__file__).with_name("run_date_child.py")
ROOT = Path(__file__).resolve().parents[1]


def _book(root: Path, loans: int = 240, seed: int = 3) -> dict[dt.date, dict[str, bytes]]:
    days = generate_days(FIRST, LAST, loans, seed)
    write_snapshot(root / "snapshot", days.loans, days.installments, days.instructions)
    return days.files


def _deliver(home: Path, files: dict[dt.date, dict[str, bytes]], days: list[dt.date] | None = None) -> None:
    for day, named in files.items():
        if days is not None and day not in days:
            continue
        folder = home / "inbox" / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in named.items():
            (folder / name).write_bytes(data)


def _reset(url: str, root: Path) -> None:
    """An empty, migrated database with the snapshot imported and an empty home."""
    from flows.store import upgrade_database

    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    else:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    shutil.rmtree(root / "home", ignore_errors=True)
    upgrade_database(url)
    engine = connect(url)
    import_snapshot(engine, root / "snapshot")
    engine.dispose()


def _child(env: dict[str, str], days: str, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    child_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    if fault:
        child_env["RECON_FAULTPOINT"] = fault
    return subprocess.run(
        [sys.executable, str(CHILD), days, *extra], env=child_env, capture_output=True, text=True, timeout=300
    )


def test_a_run_killed_anywhere_in_the_write_stage_leaves_the_date_before_or_after(
    recon_env: dict[str, str], tmp_path: Path
) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    files = _book(tmp_path)
    home = Path(recon_env["RECON_HOME"])
    _reset(url, tmp_path)
    _deliver(home, files, [LAST])
    assert _child(recon_env, LAST.isoformat()).returncode == 0
    reference = dump_books(url)

    points = ["after_delete", "after_records", "after_ledger", "after_installments", "before_commit",
              "after_commit", "workbook_saved"]  # fmt: skip
    for point in points:
        _reset(url, tmp_path)
        _deliver(home, files, [LAST])
        killed = _child(recon_env, LAST.isoformat(), fault=point)
        assert killed.returncode == -9, f"{point}: the child was not killed: {killed.stdout}{killed.stderr}"
        engine = create_engine(url)
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(ChannelRecord)).scalar_one()
            ledger = conn.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
        engine.dispose()
        committed = point in ("after_commit", "workbook_saved")
        assert (stored > 0 and ledger > 0) if committed else (stored == 0 and ledger == 0), point
        reports = home / "reports"
        complete = list(reports.glob("*.xlsx")) if reports.exists() else []
        assert complete == [], f"{point}: a workbook looks complete after the kill: {complete}"

        assert _child(recon_env, LAST.isoformat()).returncode == 0
        assert dump_books(url) == reference, f"killed at {point}, the next run did not converge"
        engine = create_engine(url)
        with engine.connect() as conn:
            statuses = sorted(conn.execute(select(Run.status)).scalars())
        engine.dispose()
        assert statuses == ["ABANDONED", "SUCCEEDED"], point


def test_a_second_writer_on_the_same_date_refuses_and_names_the_holder(
    recon_env: dict[str, str], tmp_path: Path
) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    files = _book(tmp_path, loans=60)
    _reset(url, tmp_path)
    _deliver(Path(recon_env["RECON_HOME"]), files, [LAST])
    env = {**os.environ, **recon_env, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, str(CHILD), LAST.isoformat(), "--hold", "8"], env=env, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    refused = _child(recon_env, LAST.isoformat())
    assert refused.returncode == 4 and "is being reconciled by" in refused.stdout
    waited = _child(recon_env, LAST.isoformat(), "--wait", "60")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    holder.wait(timeout=60)


def test_two_processes_on_the_same_date_apply_each_payment_once(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    files = _book(tmp_path, loans=120)
    _reset(url, tmp_path)
    _deliver(Path(recon_env["RECON_HOME"]), files, [LAST])
    env = {**os.environ, **recon_env, "PYTHONPATH": str(ROOT)}
    both = [
        subprocess.Popen([sys.executable, str(CHILD), LAST.isoformat(), "--wait", "120"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    assert [p.wait(timeout=300) for p in both] == [0, 0]
    once = dump_books(url)
    assert _child(recon_env, LAST.isoformat()).returncode == 0
    assert dump_books(url) == once


def test_books_depend_only_on_the_files_not_on_run_order_or_grouping(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    files = _book(tmp_path, loans=150, seed=9)
    home = Path(recon_env["RECON_HOME"])
    days = sorted(files)

    _reset(url, tmp_path)
    _deliver(home, files)
    config = load_config()
    reconcile_dates(config, days, workbook=False)
    reference = dump_books(url, open_exceptions_only=True)

    @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    @given(st.randoms(use_true_random=False))
    def deliveries_in_any_order_converge(rng: random.Random) -> None:
        _reset(url, tmp_path)
        config = load_config()
        # files arrive in a random order; after each arrival a random grouping of dates is (re)run
        deliveries = [(day, name) for day in days for name in files[day]]
        rng.shuffle(deliveries)
        for day, name in deliveries:
            folder = home / "inbox" / day.isoformat()
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(files[day][name])
            group = sorted(rng.sample(days, rng.randint(1, len(days))))
            reconcile_dates(config, group, workbook=False)
        # once everything has arrived, each date is reconciled again, the dates in a random order
        for day in rng.sample(days, len(days)):
            reconcile_dates(config, [day], workbook=False)
        books = dump_books(url, open_exceptions_only=True)
        assert books == reference, "the books depend on the order of runs"

    deliveries_in_any_order_converge()


def test_different_dates_can_run_at_once_and_the_books_still_converge(
    recon_env: dict[str, str], tmp_path: Path
) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    files = _book(tmp_path, loans=150, seed=13)
    home = Path(recon_env["RECON_HOME"])
    first, second = sorted(files)[:2]
    _reset(url, tmp_path)
    _deliver(home, files, [first, second])
    reconcile_dates(load_config(), [first, second], workbook=False)
    reference = dump_books(url, open_exceptions_only=True)

    _reset(url, tmp_path)
    _deliver(home, files, [first, second])
    env = {**os.environ, **recon_env, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.Popen([sys.executable, str(CHILD), day.isoformat()], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for day in (second, first)
    ]  # fmt: skip
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert dump_books(url, open_exceptions_only=True) == reference
