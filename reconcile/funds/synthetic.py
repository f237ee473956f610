"""What the channels pay into the collection account for generated days, with the ground truth.

For each generated day and channel that settles here, the channel's payout: its successful
debits less its refunds less its fee, each fee worked out here from the published rate (0.6 % for
the wallets and UnionPay, given back on a refund by WeChat Pay and UnionPay, 0.50 per debit for a
bank), on the first
mainland working day after the date (``chinese-calendar``'s own ``find_workday``). Days that share a payout day
(a weekend, a holiday) are paid by a wallet in one lump naming the first and last date; a bank pays
each date apart. One payout can be made short and one deposit nobody expected can be added. The
statement of each day is a 招商银行 corporate download (the ``cmb_corporate`` layout), delivered
into that day's inbox; payouts after the last delivered day are not delivered (pending).

Nothing here calls the product's rules: the truth is worked out apart, so a test can catch them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import chinese_calendar
import polars as pl

from reconcile.synthetic import SyntheticDays

ACCOUNT = "755912345610901"
PAYERS = {
    "alipay": "支付宝（中国）网络技术有限公司",
    "wechat": "财付通支付科技有限公司",
    "unionpay": "中国银联股份有限公司",
    "icbc": "中国工商银行股份有限公司",
}
WORDS = {"alipay": "支付宝结算", "wechat": "微信支付结算", "unionpay": "银联结算", "icbc": "工商银行代收结算"}
LUMPED = frozenset({"alipay", "wechat", "unionpay"})
UNEXPECTED_FEN = 88_800
TRUTH_SCHEMA = {"channel": pl.String, "business_date": pl.Date, "net_fen": pl.Int64, "value_date": pl.Date,
                "expected_outcome": pl.String}  # fmt: skip


#: Channels that give back the fee of what they refund.
FEE_RETURNED = frozenset({"wechat", "unionpay"})


def fee(channel: str, fen: int) -> int:
    """One debit's fee, by the published rates (half up to the fen)."""
    if channel in ("alipay", "wechat"):
        return max((fen * 6 + 500) // 1000, 1)
    if channel == "unionpay":
        return (fen * 6 + 500) // 1000
    return 50


@dataclass(frozen=True)
class Settlements:
    """``files``: payout day → statement name → bytes; ``truth``: per channel and business date the
    net it is owed, the day it is paid and the outcome it must get as of the last delivered day;
    ``unexpected``: the value date of the deposit nobody expected (None when not made)."""

    files: dict[dt.date, dict[str, bytes]]
    truth: pl.DataFrame
    unexpected: dt.date | None


def _nets(
    lines: pl.DataFrame, channels: tuple[str, ...], stated_fees: dict[tuple[str, dt.date], int]
) -> list[tuple[str, dt.date, int]]:
    """Each channel and day's net: collected less refunds less fees (the day's stated fee, where
    the channel states one, instead of the per-debit ones)."""
    good = lines.filter(pl.col("channel").is_in(list(channels)) & (pl.col("status") == "SUCCESS")
                        & ~pl.col("corrupt_time"))  # fmt: skip
    nets: dict[tuple[str, dt.date], int] = {}
    for channel, day, kind, fen in good.select("channel", "day", "kind", "amount_fen").iter_rows():
        key = (channel, day)
        charged = 0 if key in stated_fees else fee(channel, fen)
        back = charged if channel in FEE_RETURNED else 0
        nets[key] = nets.get(key, 0) + (fen - charged if kind == "debit" else -fen + back)
    for key, stated in stated_fees.items():
        if key in nets:
            nets[key] -= stated
    return sorted((channel, day, net) for (channel, day), net in nets.items())


def settlement_statements(
    days: SyntheticDays,
    channels: tuple[str, ...] = ("alipay", "icbc"),
    deliver_until: dt.date | None = None,
    short: tuple[str, dt.date, int] | None = None,
    unexpected_on: dt.date | None = None,
    stated_fees: dict[tuple[str, dt.date], int] | None = None,
) -> Settlements:
    """The payouts of ``days`` as daily statements up to ``deliver_until`` (the last generated day
    when None). ``short``: (channel, business date, fen) a payout made that much short (paid
    alone, not in a lump). ``unexpected_on``: a day a stranger's deposit arrives. ``stated_fees``:
    (channel, business date) → the fee the channel's own bill states for the day, which it pays net
    of."""
    last = deliver_until or max(days.files)
    payouts: dict[dt.date, list[tuple[str, int, str, list[dt.date]]]] = {}
    truth = []
    owed = _nets(days.lines, channels, stated_fees or {})
    by_payday: dict[tuple[str, dt.date], list[tuple[dt.date, int]]] = {}
    for channel, day, net in owed:
        # T+1: the first working day after the business date (``find_workday(0, d)``: d, or the next)
        pay_on = chinese_calendar.find_workday(0, day + dt.timedelta(days=1))
        by_payday.setdefault((channel, pay_on), []).append((day, net))
    for (channel, pay_on), dated in sorted(by_payday.items()):
        shorted = [(d, n) for d, n in dated if short is not None and (channel, d) == short[:2]]
        rest = [(d, n) for d, n in dated if (d, n) not in shorted]
        groups = [rest] if channel in LUMPED and len(rest) > 1 else [[item] for item in rest]
        for day, net in shorted:
            assert short is not None
            payouts.setdefault(pay_on, []).append((channel, net - short[2], f"{WORDS[channel]} {day:%Y%m%d}", [day]))
        for group in groups:
            first, final = group[0][0], group[-1][0]
            said = f"{first:%Y%m%d}" if first == final else f"{first:%Y%m%d}-{final:%Y%m%d}"
            payouts.setdefault(pay_on, []).append((channel, sum(n for _, n in group), f"{WORDS[channel]} {said}",
                                                   [d for d, _ in group]))  # fmt: skip
        for day, net in dated:
            outcome = "SETTLEMENT_PENDING" if pay_on > last else "SETTLED"
            if (day, net) in shorted and pay_on <= last:
                outcome = "SETTLEMENT_SHORT"
            truth.append((channel, day, net, pay_on, outcome))
    files: dict[dt.date, dict[str, bytes]] = {}
    for pay_on in sorted(payouts):
        if pay_on > last:
            continue
        lines = [(channel, fen, text) for channel, fen, text, _ in payouts[pay_on]]
        stranger = unexpected_on == pay_on
        files[pay_on] = {f"cmb_statement_{pay_on:%Y%m%d}.csv": cmb_statement(pay_on, lines, stranger)}
    if unexpected_on is not None and unexpected_on not in files and unexpected_on <= last:
        files[unexpected_on] = {f"cmb_statement_{unexpected_on:%Y%m%d}.csv": cmb_statement(unexpected_on, [], True)}
    frame = pl.DataFrame(truth, schema=TRUTH_SCHEMA, orient="row").sort("channel", "business_date")
    return Settlements(files, frame, unexpected_on if unexpected_on is not None and unexpected_on <= last else None)


def cmb_statement(day: dt.date, payouts: list[tuple[str, int, str]], stranger: bool = False) -> bytes:
    """A day of the collection account as a 招商银行 corporate download (GB18030, CRLF)."""
    rows = [f"账号：{ACCOUNT}", "币种：人民币", f"查询日期：{day:%Y-%m-%d} 至 {day:%Y-%m-%d}", ""]
    rows.append("交易日,起息日,借方金额,贷方金额,余额,摘要,附言,对方户名,对方账号,流水号")
    entries = [(PAYERS[channel], fen, text) for channel, fen, text in payouts]
    if stranger:
        entries.append(("某某商贸有限公司", UNEXPECTED_FEN, "货款 往来款"))
    balance, credits, debits = 0, 0, 0
    for n, (payer, fen, text) in enumerate(entries, start=1):
        balance += fen
        credits += max(fen, 0)
        debits += max(-fen, 0)
        summary, memo = [*text.split(" ", 1), ""][:2]
        credit = f'"{fen / 100:,.2f}"' if fen > 0 else ""
        debit = f'"{-fen / 100:,.2f}"' if fen < 0 else ""
        rows.append(f'{day:%Y%m%d},{day:%Y%m%d},{debit},{credit},"{balance / 100:,.2f}",{summary}\t,{memo}\t,'
                    f"{payer},6222000000009876\t,C{day:%Y%m%d}{n:04d}")  # fmt: skip
    rows.append(f'合计,,"{debits / 100:,.2f}","{credits / 100:,.2f}",,,,,,')
    return ("\r\n".join(rows) + "\r\n").encode("gb18030")
