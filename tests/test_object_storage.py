"""The inbox, archive, quarantine and reports on object storage (fsspec, ``s3://`` by s3fs),
against an S3-compatible server started on 127.0.0.1 for the test (moto's server mode): the same
books as from local folders, the files filed away and the workbook written there, and a rerun that
finds the date's files in the remote archive once the inbox is cleared. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.config import load_config
from flows.runner import reconcile_dates
from tests.books import deliver, imported_book
from tests.dbdump import dump_books

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 11, 27)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3-compatible server on loopback with a new bucket; the bucket's name."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in (("AWS_ACCESS_KEY_ID", "recon-test"), ("AWS_SECRET_ACCESS_KEY", "recon-test"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", endpoint)):  # fmt: skip
        monkeypatch.setenv(name, value)
    import fsspec

    bucket = f"recon-{uuid.uuid4().hex[:10]}"  # moto keeps its buckets for the whole process
    fsspec.filesystem("s3", skip_instance_cache=True).mkdir(bucket)
    try:
        yield bucket
    finally:
        server.stop()


def test_folders_on_object_storage_give_the_same_books(recon_env: dict[str, str], tmp_path: Path, s3: str) -> None:
    import fsspec

    bucket = s3
    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, DAY, DAY, 150, seed=81)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    for name, data in days.files[DAY].items():
        fs.pipe_file(f"{bucket}/inbox/{DAY}/{name}", data)
    remote = {f"RECON_{n.upper()}": f"s3://{bucket}/{n}" for n in ("inbox", "archive", "quarantine", "reports")}
    config = load_config({**os.environ, **recon_env, **remote})
    assert set(config.paths.remotes) == {"inbox", "archive", "quarantine", "reports"}
    summary = reconcile_dates(config, [DAY])[0]
    assert summary["balanced"] and summary["inbox"]["state"] == "ok" and summary["errors"] == []
    books = dump_books(url)

    # the same day from local folders, in a database of its own, gives the same books
    local_home = tmp_path / "local"
    local_url = f"sqlite:///{tmp_path / 'local.db'}"
    from flows.store import upgrade_database

    upgrade_database(local_url)
    imported_book(local_url, tmp_path / "local-book", DAY, DAY, 150, seed=81)
    deliver(local_home, DAY, days.files[DAY])
    local = reconcile_dates(load_config({**os.environ, "RECON_HOME": str(local_home), "RECON_DATABASE_URL": local_url}),
                            [DAY])[0]  # fmt: skip
    assert {k: local[k] for k in ("outcomes", "fen", "records")} == {
        k: summary[k] for k in ("outcomes", "fen", "records")
    }
    assert dump_books(local_url) == books

    # what the run filed and wrote is on the object store; the inbox was only read
    archived = fs.find(f"{bucket}/archive/{DAY}")
    accepted = [f["name"] for f in summary["files"] if f["status"] == "ACCEPTED"]
    assert accepted and all(any(path.endswith(name) for path in archived) for name in accepted)
    assert any(path.endswith(".manifest.jsonl") for path in archived)
    rejected = [f["name"] for f in summary["files"] if f["status"] == "REJECTED"]
    quarantined = fs.find(f"{bucket}/quarantine/{DAY}") if rejected else []
    assert all(any(path.endswith(name) for path in quarantined) for name in rejected)
    assert fs.exists(f"{bucket}/reports/recon_{DAY:%Y%m%d}.xlsx")
    assert summary["workbook_url"].startswith(f"s3://{bucket}/reports/recon_")
    assert sorted(p.rsplit("/", 1)[1] for p in fs.find(f"{bucket}/inbox/{DAY}")) == sorted(days.files[DAY])

    # the inbox emptied remotely and the local mirror gone: the rerun reconciles from the remote archive
    fs.rm(f"{bucket}/inbox/{DAY}", recursive=True)
    import shutil

    shutil.rmtree(config.paths.home / ".remote")
    again = reconcile_dates(config, [DAY])[0]
    assert again["inbox"]["state"] == "missing" and again["inbox"]["files_from_archive"] >= len(accepted)
    assert dump_books(url) == books
