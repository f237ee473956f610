"""Working days of the mainland calendar, and settlement windows over them.

Channels pay out on working days: Saturdays and Sundays are not, public holidays are not, and the
make-up working days (调休) that move a weekend day into the week are. ``chinese-calendar`` keeps
that calendar as the State Council publishes it each November; a year it does not know yet is an
error that says so, never a guess that every weekday works.

A settlement rule names when a business date's money should reach the account:

- ``T+n``: on the n-th working day after the business date (``T+0``: the business date itself
  when it is a working day, else the next one);
- ``D+n``: on the n-th calendar day after it, whatever the calendar says.

The window runs from that day to ``grace`` working days later (money a day late is late, not
missing, while the window is open): a credit whose value date falls in it settles in time.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

import chinese_calendar
import polars as pl

RULE = re.compile(r"^(?P<base>[TD])\+(?P<days>\d{1,2})$")


class CalendarUnknown(ValueError):
    """The mainland calendar of a year is not published yet (or not in the installed package)."""


@lru_cache(maxsize=8192)
def is_working_day(day: dt.date) -> bool:
    """Whether banks and channels settle on ``day`` (weekends and holidays off, 调休 days on)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        raise CalendarUnknown(
            f"the mainland holiday calendar of {day.year} is not known to chinese-calendar "
            f"{chinese_calendar.__version__}: upgrade it once the State Council publishes the year"
        ) from None


def next_working_day(day: dt.date, after: int = 0) -> dt.date:
    """The ``after``-th working day after ``day``; with 0, ``day`` itself when it works, else the next."""
    current = day
    if after == 0:
        while not is_working_day(current):
            current += dt.timedelta(days=1)
        return current
    for _ in range(after):
        current += dt.timedelta(days=1)
        while not is_working_day(current):
            current += dt.timedelta(days=1)
    return current


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when ``end`` ≤ ``start``):
    how many business days an item has aged."""
    count, current = 0, start
    while current < end:
        current += dt.timedelta(days=1)
        count += is_working_day(current)
    return count


@dataclass(frozen=True)
class SettlementRule:
    """``cycle`` (``T+1``, ``D+1`` …) and ``grace`` working days on top of it."""

    cycle: str
    grace: int = 0

    def __post_init__(self) -> None:
        if RULE.match(self.cycle) is None:
            raise ValueError(f"settlement cycle {self.cycle!r}: write T+n (working days) or D+n (calendar days)")
        if not 0 <= self.grace <= 30:
            raise ValueError(f"settlement grace {self.grace}: between 0 and 30 working days")

    def window(self, business_date: dt.date) -> tuple[dt.date, dt.date]:
        """The first and last value date on which ``business_date``'s money arrives in time."""
        found = RULE.match(self.cycle)
        assert found is not None
        days = int(found["days"])
        if found["base"] == "T":
            start = next_working_day(business_date, days)
        else:
            start = business_date + dt.timedelta(days=days)
        end = next_working_day(start, self.grace) if self.grace else start
        return start, end


def windows(dates: pl.DataFrame, rules: dict[str, SettlementRule]) -> pl.DataFrame:
    """``dates`` (``channel``, ``business_date``) with ``window_from`` and ``window_to``.

    The calendar is walked once per distinct (channel, date), never per row.
    """
    distinct = dates.select("channel", "business_date").unique()
    spans = [rules[channel].window(day) for channel, day in distinct.iter_rows()]
    found = distinct.with_columns(
        window_from=pl.Series([s for s, _ in spans], dtype=pl.Date),
        window_to=pl.Series([e for _, e in spans], dtype=pl.Date),
    )
    return dates.join(found, on=["channel", "business_date"], how="left")
