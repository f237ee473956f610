"""A generated book imported into a test database, and its days delivered to the inbox."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flows.importer import import_snapshot, write_snapshot
from flows.store import connect
from reconcile.synthetic import SyntheticDays, generate_days


def imported_book(url: str, folder: Path, first: dt.date, last: dt.date, loans: int, seed: int) -> SyntheticDays:
    """Generate days, write their snapshot under ``folder`` and import it into ``url``."""
    days = generate_days(first, last, loans, seed)
    write_snapshot(folder / "snapshot", days.loans, days.installments, days.instructions)
    engine = connect(url)
    import_snapshot(engine, folder / "snapshot")
    engine.dispose()
    return days


def deliver(home: Path, day: dt.date, files: dict[str, bytes]) -> Path:
    """Put a day's files in the inbox under ``home`` (as the channels deliver them); the folder."""
    inbox = home / "inbox" / day.isoformat()
    inbox.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (inbox / name).write_bytes(data)
    return inbox
