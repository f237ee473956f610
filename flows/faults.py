"""Fault points for the crash tests: ``RECON_FAULTPOINT=name`` makes the process kill itself
(SIGKILL, no clean-up) when it reaches the checkpoint of that name; with
``RECON_FAULT=drop_connections`` it instead has PostgreSQL terminate every other connection to the
database there, as a server restart would. Unset, a checkpoint does nothing."""

from __future__ import annotations

import os
import signal


def checkpoint(name: str) -> None:
    if os.environ.get("RECON_FAULTPOINT") != name:
        return
    if os.environ.get("RECON_FAULT") == "drop_connections":
        _drop_connections(os.environ["RECON_DATABASE_URL"])
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _drop_connections(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    engine.dispose()
