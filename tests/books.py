"""A generated book imported into a test database, and its days delivered to the inbox."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl

from flows.importer import import_snapshot, write_snapshot
from flows.store import connect
from reconcile.synthetic import SyntheticDays, generate_days


def imported_book(
    url: str, folder: Path, first: dt.date, last: dt.date, loans: int, seed: int, **shape: Any
) -> SyntheticDays:
    """Generate days (``shape``: the generator's other knobs, e.g. ``wallet``), write their
    snapshot under ``folder`` and import it into ``url``."""
    days = generate_days(first, last, loans, seed, **shape)
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


def off_the_manifest(days: SyntheticDays, url: str) -> pl.DataFrame:
    """The records whose stored outcome is not the one the generator's ground truth expects
    (with both outcomes); empty when the run reproduced the manifest."""
    from tests.dbdump import stored_outcomes

    expected = days.expected.filter(pl.col("subject") == "record")
    joined = expected.join(stored_outcomes(url), on="subject_key", how="full", coalesce=True)
    return joined.filter(pl.col("expected_outcome").ne_missing(pl.col("outcome")))
