"""Folders on object storage (``s3://…`` and any other fsspec URL): the inbox, archive, quarantine
and reports may each be a URL instead of a local folder.

A run works on local folders, so a remote one is mirrored under ``$RECON_HOME/.remote/<name>/``:
before a date is read, its folders are fetched (the inbox's date folder, and the archive's and
quarantine's, which hold what earlier runs filed); after the files are filed away and after the
workbook is written, what the run added is put back. The inbox is only ever read. Credentials and
endpoints are fsspec's and the storage library's own (for S3: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` for an S3-compatible server).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import fsspec

REMOTE_FOLDER = ".remote"


def is_url(location: str | Path) -> bool:
    return "://" in str(location)


@dataclass(frozen=True)
class Remote:
    """One folder kept on object storage: its URL and the local mirror a run works in."""

    url: str
    local: Path

    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        # a fresh instance: the storage settings (endpoint, keys) are read from the environment now
        fs, root = fsspec.core.url_to_fs(self.url, skip_instance_cache=True)
        return fs, root.rstrip("/")

    def fetch(self, day: dt.date) -> None:
        """The date's folder as it is remotely (nothing remotely: no local folder either)."""
        fs, root = self._fs()
        target = self.local / day.isoformat()
        if target.exists():
            shutil.rmtree(target)
        source = f"{root}/{day.isoformat()}"
        fs.invalidate_cache(source)  # another writer (a channel, another worker) may have changed it
        if not fs.isdir(source):
            return
        target.mkdir(parents=True)
        for found in fs.find(source, withdirs=False):
            relative = found[len(source) + 1 :]
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(found, str(target / relative))

    def put_day(self, day: dt.date) -> None:
        """What the date's local folder holds, written remotely (same names: replaced)."""
        folder = self.local / day.isoformat()
        if folder.is_dir():
            self.put_files([p for p in folder.rglob("*") if p.is_file()])

    def put_files(self, paths: list[Path]) -> None:
        fs, root = self._fs()
        for path in paths:
            relative = path.relative_to(self.local).as_posix()
            fs.makedirs(f"{root}/{Path(relative).parent.as_posix()}".rstrip("/."), exist_ok=True)
            fs.put_file(str(path), f"{root}/{relative}")


def mirror(home: Path, name: str, location: str | Path | None, default: Path) -> tuple[Path, Remote | None]:
    """The local folder a run uses for ``name`` and, when it is a URL, the remote it mirrors."""
    if location is None:
        return default, None
    if is_url(location):
        local = home / REMOTE_FOLDER / name
        return local, Remote(str(location).rstrip("/"), local)
    return Path(location), None
