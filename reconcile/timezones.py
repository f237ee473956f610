"""Wall-clock times of a zone → UTC instants, for a whole column at once.

Polars localises a naive datetime by looking up the zone's rules for every value, which costs more
than parsing the text. A channel file's times span a day or two, and over such a span a zone almost
always keeps one UTC offset (Asia/Shanghai has kept +08:00 since 1991): then localising is one
subtraction. Whether one offset holds is asked of the zone's rules themselves, hour by hour over the
column's span; where it does not (a daylight-saving change inside the span), every value goes
through polars' rules as before.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

#: Spans longer than this many hours are localised value by value (the hourly check would cost more).
MAX_CHECKED_HOURS = 24 * 400


def local_to_utc(naive: pl.Series, zone: str) -> pl.Series:
    """Naive wall-clock times in ``zone`` → ``Datetime("us", "UTC")``.

    A time that does not exist there (skipped by a daylight-saving change) is null; one that exists
    twice is the earlier instant. Times that already carry a zone (text with an offset) are only
    converted.
    """
    if isinstance(naive.dtype, pl.Datetime) and naive.dtype.time_zone is not None:  # the text stated its offset
        return naive.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    naive = naive.cast(pl.Datetime("us"))
    offset = _single_offset(naive, zone)
    if offset is None:
        return (
            naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
            .alias(naive.name)
        )
    return (naive - offset).dt.replace_time_zone("UTC").alias(naive.name)


def _single_offset(naive: pl.Series, zone: str) -> dt.timedelta | None:
    """The zone's UTC offset if one offset holds at every hour from the first time to past the last."""
    first, last = naive.min(), naive.max()
    if not isinstance(first, dt.datetime) or not isinstance(last, dt.datetime):
        return None
    start = first.replace(minute=0, second=0, microsecond=0)
    end = last.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    if (end - start) / dt.timedelta(hours=1) > MAX_CHECKED_HOURS:
        return None
    hours = pl.datetime_range(start, end, "1h", time_unit="us", eager=True)
    utc = hours.dt.replace_time_zone(zone, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC")
    offsets = (hours - utc.dt.replace_time_zone(None)).unique()
    if offsets.len() != 1 or offsets.null_count():
        return None
    value = offsets[0]
    return value if isinstance(value, dt.timedelta) else None
