"""Progress of a run, for whoever watches: the runner says when a date and each of its stages
start; the command line shows it (``rich``), a Prefect flow has its task runs. Process-local and
a no-op until someone listens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Listener = Callable[[dt.date, str], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> Callable[[], None]:
    """Call ``listener(day, stage)`` as each stage starts; returns what stops it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def stage(day: dt.date, name: str) -> None:
    """The date's stage ``name`` starts (``done`` when the date ends, ``failed`` when it failed)."""
    for listener in list(_listeners):
        listener(day, name)
