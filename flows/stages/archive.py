"""Archive: after the commit, accepted files are copied to the archive and rejected ones to
quarantine with their reason beside them. The inbox is never touched."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from reconcile.ingest import ParsedFile
from reconcile.intake import DiscoveredFile, archive_name


def file_away(
    files: list[DiscoveredFile], parsed: list[ParsedFile], archive: Path, quarantine: Path, day: dt.date
) -> None:
    """Copy accepted files to the archive, rejected ones to quarantine with a reason beside them;
    a copy never overwrites a different version (the name starts with the bytes' SHA-256). Each
    folder's manifest lists its copies in the order they were filed, so the newest version of a
    name is known when the date is reconciled again (``flows/stages/discover.py``)."""
    for found, result in zip(files, parsed, strict=True):
        target_root = quarantine if result.rejected_reason else archive
        folder = target_root / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        # a zip member is archived as the zip it came in (once per zip and fate)
        delivered = found.delivered_as or found.path.name
        if found.path.is_symlink():  # never followed: only its reason is filed
            _note_reason(
                folder / f"{archive_name(hashlib.sha256(os.fsencode(delivered)).hexdigest(), delivered)}.reason.txt",
                found.name,
                result.rejected_reason or "",
            )
            continue
        data = found.path.read_bytes()
        target = folder / archive_name(hashlib.sha256(data).hexdigest(), delivered)
        if not target.exists():
            partial = folder / f".{target.name}.partial"
            shutil.copyfile(found.path, partial)
            os.replace(partial, target)
        _note_in_manifest(folder, delivered, target.name)
        if result.rejected_reason:
            _note_reason(folder / f"{target.name}.reason.txt", found.name, result.rejected_reason)


def _note_in_manifest(folder: Path, name: str, stored_as: str) -> None:
    """Append (name, copy) to the folder's manifest unless it is already its newest line for the name."""
    manifest = folder / ".manifest.jsonl"
    lines = manifest.read_text(encoding="utf-8").splitlines() if manifest.exists() else []
    latest = {entry["name"]: entry["stored_as"] for entry in map(json.loads, lines)}
    if latest.get(name) == stored_as:
        return
    with open(manifest, "a", encoding="utf-8") as handle:
        handle.write(
            json.dumps({"name": name, "stored_as": stored_as, "filed_at": time.time()}, ensure_ascii=False) + "\n"
        )


def _note_reason(path: Path, name: str, reason: str) -> None:
    """One line per file and reason beside a quarantined copy (names are already printable text)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    line = f"{name}: {' '.join(reason.splitlines())}"
    if line not in lines:
        path.write_text("\n".join([*lines, line]) + "\n", encoding="utf-8")
