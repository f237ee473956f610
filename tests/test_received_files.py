"""Files received are never forgotten: a rerun reads the archive beside the inbox, so an inbox that
is missing or empty leaves the books as they were and says so; a newer version of a file under the
same name replaces the older one. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.config import load_config
from flows.runner import reconcile_dates
from tests.books import deliver, imported_book
from tests.dbdump import dump_books

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 11, 27)


def _day(tmp_path: Path, url: str) -> dict[str, bytes]:
    return imported_book(url, tmp_path, DAY, DAY, 200, seed=31).files[DAY]


def _config(env: dict[str, str], **paths: str):  # type: ignore[no-untyped-def]
    return load_config({**os.environ, **env, **paths})


def test_a_missing_or_empty_inbox_keeps_the_books_and_says_so(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    files = _day(tmp_path, url)
    inbox = deliver(Path(recon_env["RECON_HOME"]), DAY, files)
    first = reconcile_dates(_config(recon_env), [DAY], workbook=False)[0]
    assert first["inbox"]["state"] == "ok" and first["inbox"]["warning"] is None
    books = dump_books(url, open_exceptions_only=True)
    paid = [row for row in books["installments"] if "PAID" in row]
    assert paid, "the day paid installments"

    missing = reconcile_dates(_config(recon_env, RECON_INBOX=str(tmp_path / "no-such-inbox")), [DAY], workbook=False)[0]
    assert missing["inbox"]["state"] == "missing"
    assert missing["inbox"]["files_from_archive"] == len(files)
    assert "does not exist" in missing["inbox"]["warning"]
    assert dump_books(url, open_exceptions_only=True) == books

    shutil.rmtree(inbox)
    inbox.mkdir()
    empty = reconcile_dates(_config(recon_env), [DAY], workbook=False)[0]
    assert empty["inbox"]["state"] == "empty"
    assert empty["records"] == first["records"] and empty["fen"] == first["fen"]
    assert dump_books(url, open_exceptions_only=True) == books


def test_a_newer_version_replaces_the_older_one_even_after_the_inbox_is_cleared(
    recon_env: dict[str, str], tmp_path: Path
) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    files = _day(tmp_path, url)
    inbox = deliver(Path(recon_env["RECON_HOME"]), DAY, files)
    reconcile_dates(_config(recon_env), [DAY], workbook=False)
    # the bank re-sends its file under the same name: other bytes (one blank line more), same lines
    name = next(n for n in files if n.startswith("icbc_"))
    newer = files[name] + b"\n"
    (inbox / name).write_bytes(newer)
    resent = reconcile_dates(_config(recon_env), [DAY], workbook=False)[0]
    old_sha, new_sha = hashlib.sha256(files[name]).hexdigest(), hashlib.sha256(newer).hexdigest()
    assert [(f["sha256"], f["replaces_sha256"]) for f in resent["files"] if f["name"] == name] == [(new_sha, old_sha)]
    books = dump_books(url, open_exceptions_only=True)

    shutil.rmtree(inbox)
    cleared = reconcile_dates(_config(recon_env), [DAY], workbook=False)[0]
    assert cleared["inbox"]["state"] == "missing"
    assert [f["sha256"] for f in cleared["files"] if f["name"] == name] == [new_sha]
    assert dump_books(url, open_exceptions_only=True) == books


def test_the_command_line_exits_5_when_the_inbox_is_missing(
    prefect_harness: None, recon_env: dict[str, str], tmp_path: Path
) -> None:
    from flows.cli import INBOX_NOT_OK, app

    files = _day(tmp_path, recon_env["RECON_DATABASE_URL"])
    assert files
    done = CliRunner().invoke(app, ["run", "--date", DAY.isoformat(), "--no-workbook"], env={
        **recon_env, "RECON_INBOX": str(tmp_path / "absent")})  # fmt: skip
    assert done.exit_code == INBOX_NOT_OK, done.output
    assert "does not exist" in done.output
