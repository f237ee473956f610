"""One writer per business date.

PostgreSQL: a session advisory lock per date, held on a dedicated connection for the whole run and
released by the server if the process dies. SQLite: an exclusive ``flock`` on a lock file beside the
database, released by the kernel if the process dies. A second run waits up to ``wait_seconds``,
then stops with a message naming the run that holds the date.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from flows.store import connect

LOCK_NAMESPACE = 0x5245_4330_0000_0000  # "REC0" in the high bytes, the date in the low ones
POLL_SECONDS = 0.2
#: Transaction locks (held to the commit): the funds stage ("REC1") and installment and loan state ("REC2").
FUNDS_LOCK = 0x5245_4331_0000_0000
STATE_LOCK = 0x5245_4332_0000_0000


def hold_until_commit(conn: Connection, key: int) -> None:
    """Wait for the transaction lock ``key`` and hold it until ``conn``'s transaction ends
    (PostgreSQL). SQLite needs none: a write transaction already holds the whole database."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


class DateLocked(RuntimeError):
    """Another run holds the business date."""


def _advisory_key(day: dt.date) -> int:
    return LOCK_NAMESPACE + int(day.strftime("%Y%m%d"))


@contextmanager
def business_date_lock(url: str, day: dt.date, run_id: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the write lock of ``day`` for the duration of the block."""
    if url.startswith("sqlite"):
        with _file_lock(url, day, run_id, wait_seconds):
            yield
        return
    engine = connect(url)
    try:
        with engine.connect() as conn:
            key = _advisory_key(day)
            deadline = time.monotonic() + wait_seconds
            while not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one():
                conn.rollback()
                if time.monotonic() >= deadline:
                    raise DateLocked(_holder_message(url, day, wait_seconds))
                time.sleep(POLL_SECONDS)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()
    finally:
        engine.dispose()


@contextmanager
def _file_lock(url: str, day: dt.date, run_id: str, wait_seconds: float) -> Iterator[None]:
    database = make_url(url).database or "recon.db"
    folder = Path(f"{database}.locks")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{day.isoformat()}.lock"
    handle = open(path, "a+", encoding="utf-8")
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "an unknown run"
                    raise DateLocked(
                        f"business date {day.isoformat()} is being reconciled by {holder}; "
                        f"waited {wait_seconds:g}s. Try again when it has finished, or pass --wait SECONDS."
                    ) from None
                time.sleep(POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        handle.write(f"run {run_id} (pid {os.getpid()}, since {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')})")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def _holder_message(url: str, day: dt.date, wait_seconds: float) -> str:
    engine = connect(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT run_id, started_at FROM runs WHERE business_date = :day AND status = 'RUNNING' "
                    "ORDER BY started_at DESC LIMIT 1"
                ),
                {"day": day},
            ).first()
    finally:
        engine.dispose()
    holder = f"run {row[0]} (started {row[1]})" if row else "another run"
    return (
        f"business date {day.isoformat()} is being reconciled by {holder}; waited {wait_seconds:g}s. "
        "Try again when it has finished, or pass --wait SECONDS."
    )
