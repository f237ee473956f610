"""The funds rules of each channel, as typed specs checked the way the layouts are.

``funds.toml`` (the packaged default beside ``channels.toml``) says, per channel that settles to
the collection account, when its money should arrive, what it may charge and how its payouts look
on the statement::

    [settlement.alipay]
    cycle = "T+1"                 # T+n working days or D+n calendar days after the business date
    grace = 1                     # working days on top before the money is late
    late_horizon = 10             # working days after the window a credit of the exact net still settles (late)
    merchant_ids = ["2088…"]      # the merchant ids it pays for (one '-' when unset)
    payer_names = ["支付宝（中国）网络技术有限公司"]
    payer_accounts = ["…"]
    reference_words = ["支付宝"]  # words of 摘要 / 附言 that name the channel when the payer does not
    fee = { rate = "0.006", min_fen = 1, cap_fen = 0, per_payout_fen = 0, netted = true,
            refund_returns_fee = false, tolerance_fen = 0 }

A rate is decimal text, so no float touches it; it must be exact in millionths.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reconcile.funds.workdays import RULE, SettlementRule

#: A rate is held in millionths (ppm): 0.6 % is 6,000.
PPM = 1_000_000


class FundsConfigError(ValueError):
    """The funds configuration is wrong; ``problems`` says each thing wrong and where."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the funds configuration is wrong:\n  " + "\n  ".join(problems))


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class FeeRule(_Spec):
    """What a channel charges: ``rate`` of each successful debit (rounded half up to the fen) but
    at least ``min_fen`` and at most ``cap_fen`` (0: no cap) per debit, plus ``per_payout_fen`` once
    per payout. ``netted``: taken out of the payout, else billed apart. ``refund_returns_fee``: a
    refund gives back the fee of what it refunds. ``tolerance_fen``: how far the channel's stated fee
    may differ from the rule's before it is a ``FEE_VARIANCE``."""

    rate: str = "0"
    min_fen: int = Field(default=0, ge=0)
    cap_fen: int = Field(default=0, ge=0)
    per_payout_fen: int = Field(default=0, ge=0)
    netted: bool = True
    refund_returns_fee: bool = False
    tolerance_fen: int = Field(default=0, ge=0)

    @field_validator("rate")
    @classmethod
    def _exact_rate(cls, value: str) -> str:
        rate_ppm(value)
        return value

    @property
    def ppm(self) -> int:
        return rate_ppm(self.rate)

    def fee_expr(self, amount: pl.Expr) -> pl.Expr:
        """The fee of each debit of ``amount`` fen, in fen."""
        fee = (amount * self.ppm + PPM // 2) // PPM
        fee = pl.max_horizontal(fee, pl.lit(self.min_fen, dtype=pl.Int64))
        if self.cap_fen:
            fee = pl.min_horizontal(fee, pl.lit(self.cap_fen, dtype=pl.Int64))
        return fee.cast(pl.Int64)


def rate_ppm(text: str) -> int:
    """Decimal rate text (``"0.006"``) as integer millionths; refuses what is not exact."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"rate {text!r} is not a decimal number (write 0.006 for 0.6 %)") from None
    if not value.is_finite() or not 0 <= value < 1:
        raise ValueError(f"rate {text!r} must be a fraction from 0 to below 1 (0.006 for 0.6 %)")
    ppm = value * PPM
    if ppm != ppm.to_integral_value():
        raise ValueError(f"rate {text!r} is finer than a millionth")
    return int(ppm)


class ChannelFunds(_Spec):
    """One channel's settlement rule, fee rule and how its payouts are recognised."""

    cycle: str = "T+1"
    grace: int = Field(default=0, ge=0, le=30)
    late_horizon: int = Field(default=10, ge=0, le=60)
    merchant_ids: tuple[str, ...] = ("-",)
    payer_names: tuple[str, ...] = ()
    payer_accounts: tuple[str, ...] = ()
    reference_words: tuple[str, ...] = ()
    fee: FeeRule = FeeRule()

    @field_validator("cycle")
    @classmethod
    def _cycle(cls, value: str) -> str:
        if RULE.match(value) is None:
            raise ValueError(f"{value!r}: write T+n (working days) or D+n (calendar days)")
        return value

    @field_validator("merchant_ids", "payer_names", "payer_accounts", "reference_words", mode="before")
    @classmethod
    def _tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("merchant_ids")
    @classmethod
    def _some_merchant(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not m.strip() for m in value):
            raise ValueError("at least one merchant id, none blank ('-' when the channel has one)")
        return value

    @property
    def rule(self) -> SettlementRule:
        return SettlementRule(self.cycle, self.grace)


class Tolerances(_Spec):
    """``near_ratio_bp``: how far (in basis points of the expected net) a credit may differ and
    still be proposed as a short or over payment of it; beyond, the two are unrelated."""

    near_ratio_bp: int = Field(default=500, ge=0, le=10_000)


class BankExportLayout(BaseModel):
    """A Chinese bank's statement download, by configuration (``[statement_layouts.*]``).

    ``header_contains``: names the header line must hold (its place among preamble lines varies).
    Columns are named as the header names them; ``income``/``expense`` (收入/支出) or ``amount``
    with ``direction`` (``credit_words``: what the direction cell says for a credit). ``narrative``:
    columns joined for the reference text (摘要, 附言, 用途 …). ``footer_prefixes``: lines starting
    so end the details (a 合计 line). ``date_formats``: strptime formats of the date cells.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    encoding: str = "gb18030"
    delimiter: str = ","
    header_contains: tuple[str, ...]
    account_pattern: str | None = Field(default=None, description="regex on the preamble with a group for our account")
    booking_date: str
    value_date: str | None = None
    income: str | None = None
    expense: str | None = None
    amount: str | None = None
    direction: str | None = None
    credit_words: tuple[str, ...] = ("贷", "收入", "C", "CR")
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    narrative: tuple[str, ...] = ()
    bank_reference: str | None = None
    reversal_words: tuple[str, ...] = ("冲正", "冲账", "退回")
    footer_prefixes: tuple[str, ...] = ("合计", "人民币合计", "总计")
    date_formats: tuple[str, ...] = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y-%m-%d %H:%M:%S")

    @field_validator("header_contains", "narrative", "credit_words", "reversal_words", "footer_prefixes",
                     "date_formats", mode="before")  # fmt: skip
    @classmethod
    def _tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _some_amount(self) -> BankExportLayout:
        if (self.income is None or self.expense is None) and (self.amount is None):
            raise ValueError("name income and expense columns, or an amount column")
        return self



class FundsRules(_Spec):
    """The whole funds configuration: per channel, the tolerances of the passes, and the layouts
    of the Chinese banks' statement downloads."""

    settlement: dict[str, ChannelFunds] = {}
    tolerances: Tolerances = Tolerances()
    statement_layouts: dict[str, BankExportLayout] = {}

    def channel(self, channel_id: str) -> ChannelFunds:
        return self.settlement[channel_id]

    @property
    def rules(self) -> dict[str, SettlementRule]:
        return {channel: spec.rule for channel, spec in self.settlement.items()}

    @property
    def first_merchants(self) -> dict[str, str]:
        """Each channel's first merchant id: where money no file or line attributes is counted."""
        return {channel: spec.merchant_ids[0] for channel, spec in self.settlement.items()}


_WHY = {
    "extra_forbidden": "unknown key (a typo?)",
    "missing": "required",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "string_type": "text",
}


def parse_funds_config(config: dict[str, Any], channels: tuple[str, ...] | None = None) -> FundsRules:
    """The funds configuration as specs; :class:`FundsConfigError` lists every problem with its
    place (``settlement.alipay.fee.rate: …``). ``channels``: the configured channel ids, which
    every ``[settlement.*]`` must name."""
    problems: list[str] = []
    try:
        rules = FundsRules.model_validate(config)
    except ValidationError as error:
        for item in error.errors(include_url=False, include_input=False):
            place = ".".join(str(part) for part in item["loc"])
            why = _WHY.get(item["type"], item["msg"].removeprefix("Value error, "))
            problems.append(f"{place}: {why}")
        raise FundsConfigError(problems) from None
    if channels is not None:
        problems.extend(
            f"settlement.{name}: no channel named {name!r} in the channel file" for name in rules.settlement
            if name not in channels
        )  # fmt: skip
    if problems:
        raise FundsConfigError(problems)
    return rules


def packaged_funds_rules() -> FundsRules:
    """The packaged ``reconcile/funds.toml``."""
    import tomllib
    from pathlib import Path

    return parse_funds_config(tomllib.loads((Path(__file__).parents[1] / "funds.toml").read_text(encoding="utf-8")))
