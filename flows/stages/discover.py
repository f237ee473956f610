"""Discover: every file received for a business date, hashed, each claimed by a channel.

A date's books depend on every file ever received for it, not on what the inbox holds tonight:
the files of earlier runs are in the archive (accepted) and in quarantine (rejected), and a rerun
reads them beside the inbox. For each delivered name one version counts — the inbox's if it holds
that name, else the newest one filed away (``reconcile.intake.current_versions``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from reconcile.delivery import DeliveryRejected, unpack
from reconcile.intake import DiscoveredFile, Received, claim, current_versions, readable_name
from reconcile.settings import Settings

#: Beside the files filed away for a date: one JSON line per copy, in the order they were filed.
MANIFEST = ".manifest.jsonl"


@dataclass(frozen=True)
class Discovery:
    """What was found for a date. ``inbox_state``: ``ok``, ``empty`` or ``missing`` (the folder
    does not exist). ``from_inbox`` / ``from_archive``: how many delivered files each gave."""

    files: list[DiscoveredFile]
    inbox_state: str
    from_inbox: int
    from_archive: int


def _inbox_files(inbox_day: Path) -> list[Received]:
    if not inbox_day.is_dir():
        return []
    paths = sorted(
        (p for p in inbox_day.iterdir() if not p.name.startswith(".") and (p.is_symlink() or p.is_file())),
        key=lambda p: os.fsencode(p.name),
    )
    return [Received(readable_name(os.fsencode(p.name)), p, "inbox", order) for order, p in enumerate(paths)]


def _filed_files(folder: Path, source: str) -> list[Received]:
    """Copies filed away for the date, oldest first (by the manifest; for folders filed before it
    existed, by the copies' names)."""
    if not folder.is_dir():
        return []
    manifest = folder / MANIFEST
    found: list[Received] = []
    if manifest.exists():
        for order, line in enumerate(manifest.read_text(encoding="utf-8").splitlines()):
            entry = json.loads(line)
            path = folder / entry["stored_as"]
            if path.is_file():
                found.append(Received(entry["name"], path, source, entry.get("filed_at", order)))
        return found
    copies = sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".reason.txt")
    )
    return [Received(p.name.split("_", 1)[-1], p, source, p.stat().st_mtime) for p in copies]


def discover(inbox_day: Path, settings: Settings, filed: tuple[Path, ...] = ()) -> Discovery:
    """The date's files: the inbox folder and the folders where earlier runs filed them away
    (archive and quarantine of the date); zips opened in memory."""
    inbox = _inbox_files(inbox_day)
    earlier = [f for folder in filed for f in _filed_files(folder, "filed")]
    chosen = current_versions(inbox, earlier)
    state = "missing" if not inbox_day.is_dir() else "empty" if not inbox else "ok"
    found = []
    for received in chosen:
        if received.path.is_symlink():
            why = "a symbolic link: not followed (deliver the file itself)"
            found.append(
                DiscoveredFile(received.name, received.path, "", 0, None, b"", why, delivered_as=received.name)
            )
            continue
        data = received.path.read_bytes()
        try:
            pieces = unpack(received.name, data, settings.layouts, settings.max_member_bytes)
        except DeliveryRejected as rejected:
            digest = hashlib.sha256(data).hexdigest()
            found.append(
                DiscoveredFile(received.name, received.path, digest, len(data), None, b"", str(rejected),
                               delivered_as=received.name)
            )  # fmt: skip
            continue
        for piece in pieces:
            channel, layout = claim(piece.name, piece.data, settings)
            digest = hashlib.sha256(piece.data).hexdigest()
            found.append(
                DiscoveredFile(piece.name, received.path, digest, len(piece.data), channel, piece.data,
                               layout=layout, delivered_as=received.name)
            )  # fmt: skip
    from_inbox = sum(1 for r in chosen if r.source == "inbox")
    return Discovery(found, state, from_inbox, len(chosen) - from_inbox)
