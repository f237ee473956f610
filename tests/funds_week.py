"""A golden fortnight of funds reconciliation around National Day 2026, with its ground truth.

2026-10-01 … 10-07 are a holiday, Saturday 10-10 is a make-up working day. Alipay settles T+1 on
working days (fee 0.6 %, at least 1 fen per debit, netted); WeChat Pay T+1 with a working day of
grace, its fee billed apart. The collection account's statement is a 招商银行 corporate download.
Each business date is written to show one thing; ``TRUTH`` says what each must come to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

D = dt.date
ALIPAY = "支付宝（中国）网络技术有限公司"
TENPAY = "财付通支付科技有限公司"
ACCOUNT = "755912345610901"


def fee(fen: int) -> int:
    """0.6 % of one debit, half up, at least 1 fen: written out here, apart from the product."""
    return max((fen * 6 + 500) // 1000, 1)


def debits_of(day: dt.date) -> list[int]:
    """Each day's successful debits differ, so no two days share a net."""
    return [10_000, 25_000, 333, 1_000 * day.day + day.month]


def net_of(day: dt.date, refunds: int = 0, fee_fen: int | None = None) -> int:
    debits = debits_of(day)
    return sum(debits) - refunds - (sum(fee(d) for d in debits) if fee_fen is None else fee_fen)


ALIPAY_DAYS = [D(2026, 9, 28) + dt.timedelta(days=n) for n in range(16)]  # 09-28 … 10-13
REFUND = (D(2026, 10, 9), D(2026, 10, 8), 10_000)  # refunded on 10-09, a payment of 10-08 (settled 10-09)
STATED_FEE_1012 = sum(fee(d) for d in debits_of(D(2026, 10, 12))) + 50  # the channel charged 0.50 more
WECHAT_DAY = D(2026, 10, 12)
WECHAT_FEE_STATED = sum(fee(d) for d in debits_of(WECHAT_DAY)) + 30
AS_OF = D(2026, 10, 14)

#: What each Alipay business date comes to, as of 10-14, and why.
TRUTH: dict[dt.date, str] = {
    D(2026, 9, 28): "SETTLED",  # paid 09-29; the same payout came twice: the second is a DUPLICATE_CREDIT
    D(2026, 9, 29): "SETTLEMENT_SHORT",  # paid 09-30, 1.00 short: a proposal, not applied
    D(2026, 9, 30): "SETTLED",  # T+1 over the holiday is 10-08
    D(2026, 10, 1): "SETTLED",  # 10-01 … 10-03: one lump deposit on 10-08
    D(2026, 10, 2): "SETTLED",
    D(2026, 10, 3): "SETTLED",
    D(2026, 10, 4): "SETTLED",  # 10-04 … 10-07: one payout each on 10-08
    D(2026, 10, 5): "SETTLED",
    D(2026, 10, 6): "SETTLED",
    D(2026, 10, 7): "SETTLED",
    D(2026, 10, 8): "SETTLED",  # paid 10-09; a payment of it is refunded on 10-09: REVERSAL_AFTER_SETTLEMENT
    D(2026, 10, 9): "SETTLED",  # T+1 is Saturday 10-10, a make-up working day, and it came then
    D(2026, 10, 10): "SETTLEMENT_MISSING",  # window 10-12 (10-11 is a Sunday): nothing came
    D(2026, 10, 11): "SETTLEMENT_LATE",  # window 10-12, came 10-14
    D(2026, 10, 12): "SETTLED",  # paid net of the fee the channel states, which is a FEE_VARIANCE
    D(2026, 10, 13): "SETTLEMENT_PENDING",  # window 10-14 still open on the night of 10-14
}


@dataclass(frozen=True)
class Line:
    booked: dt.date
    amount: int  # signed fen
    payer: str
    narrative: str
    ref: str
    valued: dt.date | None = None


def _alipay_payout(day: dt.date, when: dt.date, amount: int, ref: str) -> Line:
    return Line(when, amount, ALIPAY, f"支付宝结算 {day:%Y%m%d}", ref)


def statement_lines() -> list[Line]:
    lines = [
        _alipay_payout(D(2026, 9, 28), D(2026, 9, 29), net_of(D(2026, 9, 28)), "B0929001"),
        _alipay_payout(D(2026, 9, 28), D(2026, 9, 29), net_of(D(2026, 9, 28)), "B0929002"),
        _alipay_payout(D(2026, 9, 29), D(2026, 9, 30), net_of(D(2026, 9, 29)) - 100, "B0930001"),
        _alipay_payout(D(2026, 9, 30), D(2026, 10, 8), net_of(D(2026, 9, 30)), "B1008001"),
        Line(D(2026, 10, 8), sum(net_of(D(2026, 10, d)) for d in (1, 2, 3)), ALIPAY, "支付宝结算 20261001-20261003",
             "B1008002"),
        *[_alipay_payout(D(2026, 10, d), D(2026, 10, 8), net_of(D(2026, 10, d)), f"B10080{d:02d}")
          for d in (4, 5, 6, 7)],
        _alipay_payout(D(2026, 10, 8), D(2026, 10, 9), net_of(D(2026, 10, 8)), "B1009001"),
        Line(D(2026, 10, 9), 50_000, "某某贸易有限公司", "货款", "B1009002"),
        _alipay_payout(D(2026, 10, 9), D(2026, 10, 10), net_of(D(2026, 10, 9), refunds=REFUND[2]), "B1010001"),
        _alipay_payout(D(2026, 10, 11), D(2026, 10, 14), net_of(D(2026, 10, 11)), "B1014001"),
        _alipay_payout(D(2026, 10, 12), D(2026, 10, 13), net_of(D(2026, 10, 12), fee_fen=STATED_FEE_1012), "B1013001"),
        Line(D(2026, 10, 13), sum(debits_of(WECHAT_DAY)), TENPAY, "微信支付结算 20261012", "B1013002"),
        Line(D(2026, 10, 13), -WECHAT_FEE_STATED, TENPAY, "财付通 手续费 20261012", "B1013003"),
    ]  # fmt: skip
    return sorted(lines, key=lambda line: (line.booked, line.ref))


def statement_bytes() -> bytes:
    """The fortnight as a 招商银行 corporate download: preamble, header, lines, 合计 footer (GB18030)."""
    rows = [f"账号：{ACCOUNT}", "币种：人民币", "查询日期：2026-09-28 至 2026-10-14", ""]
    rows.append("交易日,起息日,借方金额,贷方金额,余额,摘要,附言,对方户名,对方账号,流水号")
    balance, credits, debits = 1_000_000, 0, 0
    for line in statement_lines():
        balance += line.amount
        credit = f"{line.amount / 100:,.2f}" if line.amount > 0 else ""
        debit = f"{-line.amount / 100:,.2f}" if line.amount < 0 else ""
        credits += max(line.amount, 0)
        debits += max(-line.amount, 0)
        valued = line.valued or line.booked
        narrative, memo = [*line.narrative.split(" ", 1), ""][:2]
        rows.append(
            f'{line.booked:%Y%m%d},{valued:%Y%m%d},"{debit}","{credit}","{balance / 100:,.2f}",{narrative}\t,{memo}\t,'
            f"{line.payer},6222000000001234\t,{line.ref}"
        )
    rows.append(f'合计,,"{debits / 100:,.2f}","{credits / 100:,.2f}",,,,,,')
    return ("\r\n".join(rows) + "\r\n").encode("gb18030")


def collections() -> pl.DataFrame:
    """The reconciled records of each date, as the funds passes see them."""
    rows = [("alipay", day, "debit", "SUCCESS", fen) for day in ALIPAY_DAYS for fen in debits_of(day)]
    rows.append(("alipay", D(2026, 10, 9), "debit", "FAILED", 7_777))  # a failure moves no money
    rows.append(("alipay", REFUND[0], "refund", "SUCCESS", REFUND[2]))
    rows += [("wechat", WECHAT_DAY, "debit", "SUCCESS", fen) for fen in debits_of(WECHAT_DAY)]
    frame = pl.DataFrame(
        rows, schema={"channel": pl.String, "business_date": pl.Date, "record_kind": pl.String, "status": pl.String,
                      "amount_fen": pl.Int64}, orient="row",
    )  # fmt: skip
    return frame.with_columns(merchant_id=pl.lit(None, dtype=pl.String))


def refunds() -> pl.DataFrame:
    day, paid_on, fen = REFUND
    return pl.DataFrame({
        "channel": ["alipay"], "merchant_id": ["-"], "business_date": [day], "paid_on_date": [paid_on],
        "channel_txn_id": ["2026100922001400001"], "amount_fen": [fen],
    })  # fmt: skip


def reported_fees() -> pl.DataFrame:
    """What Alipay's account bill (账务明细, 收费) says it charged for 10-12."""
    return pl.DataFrame({"channel": ["alipay"], "merchant_id": ["-"], "business_date": [D(2026, 10, 12)],
                         "fee_fen": [STATED_FEE_1012]})  # fmt: skip
