"""The knobs of a run, built once at the edge and passed into the core.

Nothing in ``reconcile/`` reads the environment: ``flows.config`` builds a :class:`Settings` from
environment variables and the channel file, and hands it down.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from reconcile.funds.rules import FundsRules
from reconcile.layouts import LayoutSpec, parse_channel_config

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")

#: The default order in which a payment pays the parts of an installment.
DEFAULT_ALLOCATION_ORDER: tuple[str, ...] = ("penalty", "fee", "interest", "principal")


@dataclass(frozen=True)
class ChannelConfig:
    """One channel that sends files.

    ``lists_failures``: its files list every instruction, failed ones too (banks), so an
    instruction without a line is ``MISSING_RESULT``; Alipay lists successes only.
    ``expected_daily``: a business date without a file from it is ``MISSING_FILE``.
    ``file_pattern``: a glob on the file name that says the file belongs to this channel.
    ``also_layouts``: other layouts the channel sends (Alipay: the account bill beside the
    business bill). ``settles``: False for files that are evidence, not settlement (a borrower's
    own Alipay export): read and checked, their lines never move money. ``currency``: the one
    currency its files may state (ISO 4217); a line in another is invalid, never read as yuan.
    ``name_zh``, ``name_en``: what people call it, for the workbook.
    """

    channel_id: str
    layout: str
    lists_failures: bool
    expected_daily: bool
    file_pattern: str
    also_layouts: tuple[str, ...] = ()
    settles: bool = True
    currency: str = "CNY"
    name_zh: str = ""
    name_en: str = ""

    def name(self, language: str) -> str:
        """What people call the channel, in ``language`` (its id when not configured)."""
        return (self.name_zh if language == "zh" else self.name_en) or self.channel_id

    @property
    def layouts(self) -> tuple[str, ...]:
        return (self.layout, *self.also_layouts)


@dataclass(frozen=True)
class Settings:
    """Everything a run may be tuned by.

    ``allocation_order``: parts of an installment a payment pays, first to last.
    ``instruction_lookback_days``: how far back an instruction may have been requested and still
    be matched by a result arriving on the business date.
    ``cutoff``: Shanghai local time after which a missing file or result is an exception.
    ``fallback_window_days``: how long before settlement an instruction may have been requested
    for the fallback pass to consider it; ``amount_tolerance_fen``: how far the amounts may differ;
    ``fallback_threshold``: the score (0–100) a candidate needs; ``ambiguity_margin``: candidates
    scoring within this of the best make the match ambiguous. ``max_member_bytes``: the most a
    zipped member may inflate to (a larger one refuses its zip). ``funds``: the funds rules
    (``reconcile/funds.toml``); ``funds_from``: the first business date whose money is followed to
    the collection account (None: funds reconciliation is off).
    """

    channels: dict[str, ChannelConfig]
    layouts: dict[str, LayoutSpec]
    allocation_order: tuple[str, ...] = DEFAULT_ALLOCATION_ORDER
    instruction_lookback_days: int = 35
    fallback_window_days: int = 3
    amount_tolerance_fen: int = 0
    fallback_threshold: int = 60
    ambiguity_margin: int = 10
    cutoff: dt.time = dt.time(9, 0)
    language: str = "zh"
    max_member_bytes: int = 512 << 20
    funds: FundsRules = field(default_factory=FundsRules)
    funds_from: dt.date | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if sorted(self.allocation_order) != sorted(DEFAULT_ALLOCATION_ORDER):
            raise ValueError(
                f"allocation order must name each of {DEFAULT_ALLOCATION_ORDER} once, got {self.allocation_order}"
            )
        for channel in self.channels.values():
            for layout in channel.layouts:
                if layout not in self.layouts:
                    raise ValueError(f"channel {channel.channel_id} names unknown layout {layout}")
        for channel_id in self.funds.settlement:
            if channel_id not in self.channels:
                raise ValueError(f"the funds rules name channel {channel_id}, which the channel file does not")


def settings_from_mapping(config: dict[str, Any], **overrides: Any) -> Settings:
    """Build settings from the parsed channel configuration (see ``reconcile/channels.toml``);
    :class:`reconcile.layouts.LayoutError` says everything wrong with it, each with its place."""
    entries, layouts = parse_channel_config(config)
    channels = {
        channel_id: ChannelConfig(
            channel_id=channel_id,
            layout=entry.layout,
            lists_failures=entry.lists_failures,
            expected_daily=entry.expected_daily,
            file_pattern=entry.file_pattern or f"*{channel_id}*",
            also_layouts=entry.also_layouts,
            settles=entry.settles,
            currency=entry.currency.upper(),
            name_zh=entry.name.zh,
            name_en=entry.name.en,
        )
        for channel_id, entry in entries.items()
    }
    return Settings(channels=channels, layouts=layouts, **overrides)


def business_date_bounds_utc(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants that start and end a Shanghai business date."""
    start = dt.datetime.combine(day, dt.time(0), BUSINESS_TZ)
    end = start + dt.timedelta(days=1)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)
