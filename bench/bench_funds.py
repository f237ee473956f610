"""Funds reconciliation over a month of 1M-record days, against a plain script of the same sums.

Each day's records (channel, kind, status, amount; the shape of the generated nights: four
settling channels, one debit in five failed, one in fifty a refund) are made in memory, one day at
a time, and never held together. The product's path is the pure core's: each day's
records summed by :func:`reconcile.funds.expectations.collected` (fee by rule per debit, sums per
channel × merchant × date; in a night the database groups the records per amount first), and at
the end of the month :func:`reconcile.funds.night.reconcile_funds` over the month's sums and statement lines (one
payout per channel and payout day, weekends and holidays lumped, one payout short, one stranger's
deposit). The baseline is a plain pandas script of the same sums — per record: the fee by the same
rates, then per channel and day: collected, refunds, fees, net. Both must give the same nets to
the fen. The passes themselves work on a month's expectations and payouts (a few hundred rows) and
are timed on their own. Usage:

    python bench/bench_funds.py [--records 1000000] [--days 31] [--repeat 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable

import chinese_calendar
import numpy as np
import pandas as pd
import polars as pl
from peak import peak_mib  # bench/peak.py, beside this script

from reconcile.funds.expectations import collected
from reconcile.funds.night import reconcile_funds
from reconcile.funds.rules import FundsRules, packaged_funds_rules
from schemas.funds import STATEMENT_DTYPES

FIRST = dt.date(2026, 9, 14)
CHANNELS = ("alipay", "wechat", "unionpay", "icbc")


def day_records(day: dt.date, records: int) -> pl.DataFrame:
    rng = np.random.default_rng(day.toordinal())
    return pl.DataFrame({
        "channel": pl.Series(rng.choice(CHANNELS, records, p=[0.4, 0.2, 0.1, 0.3])),
        "record_kind": pl.Series(np.where(rng.random(records) < 0.02, "refund", "debit")),
        "status": pl.Series(np.where(rng.random(records) < 0.2, "FAILED", "SUCCESS")),
        "amount_fen": pl.Series(rng.integers(100, 500_000, records), dtype=pl.Int64),
    })  # fmt: skip


def product_day(frame: pl.DataFrame, day: dt.date, rules: FundsRules) -> pl.DataFrame:
    """The day's sums by the pure core, from its records (in a night the database groups the
    records per amount first, and the core sums the groups: the same code, fewer rows)."""
    return collected(frame.with_columns(business_date=pl.lit(day), merchant_id=pl.lit(None, pl.String)), rules)


def _fee_pandas(channel: pd.Series, fen: pd.Series) -> pd.Series:
    wallet = np.maximum((fen * 6 + 500) // 1000, 1)
    union = np.minimum(np.maximum((fen * 25 + 5000) // 10000, 1), 2000)
    return pd.Series(np.select([channel.isin(["alipay", "wechat"]), channel == "unionpay"], [wallet, union], 50),
                     index=fen.index)  # fmt: skip


def plain_day(frame: pl.DataFrame, day: dt.date) -> pd.DataFrame:
    """The same sums as a straightforward pandas script would write them."""
    df = frame.to_pandas()
    df = df[df["status"] == "SUCCESS"]
    debit = df["record_kind"] == "debit"
    # WeChat gives back the fee of what it refunds (refund_returns_fee in funds.toml)
    returned = ~debit & (df["channel"] == "wechat")
    fee = _fee_pandas(df["channel"], df["amount_fen"])
    df = df.assign(
        gross=np.where(debit, df["amount_fen"], 0), refunds=np.where(debit, 0, df["amount_fen"]),
        fee=np.where(debit, fee, np.where(returned, -fee, 0)),
    )  # fmt: skip
    sums = df.groupby("channel", as_index=False)[["gross", "refunds", "fee"]].sum()
    sums["net"] = sums["gross"] - sums["refunds"] - sums["fee"]
    sums["business_date"] = day
    return sums


def payouts(nets: list[tuple[str, dt.date, int]], last: dt.date) -> pl.DataFrame:
    """One payout per channel and payout day (the first working day after each date), lumped."""
    by_day: dict[tuple[str, dt.date], list[tuple[dt.date, int]]] = {}
    for channel, day, net in nets:
        paid = chinese_calendar.find_workday(0, day + dt.timedelta(days=1))
        by_day.setdefault((channel, paid), []).append((day, net))
    rows = []
    for n, ((channel, paid), dated) in enumerate(sorted(by_day.items())):
        if paid > last:
            continue
        first, final = dated[0][0], dated[-1][0]
        said = f"{first:%Y%m%d}" if first == final else f"{first:%Y%m%d}-{final:%Y%m%d}"
        amount = sum(net for _, net in dated) - (100 if n == 5 else 0)
        rows.append(_line(f"P{n}", paid, amount, PAYER[channel], f"结算 {said}"))
    rows.append(_line("S1", last, 88_800, "某某商贸有限公司", "货款"))
    return pl.DataFrame(rows, schema=STATEMENT_DTYPES, orient="row")


PAYER = {"alipay": "支付宝（中国）网络技术有限公司", "wechat": "财付通支付科技有限公司",
         "unionpay": "中国银联股份有限公司", "icbc": "中国工商银行股份有限公司"}  # fmt: skip


def _line(key: str, day: dt.date, fen: int, payer: str, text: str) -> dict[str, object]:
    return {"line_key": key, "source_file": "s.csv", "file_sha256": "0" * 64, "line_no": 1, "account": "1",
            "booking_date": day, "value_date": day, "amount_fen": fen, "reversal": False, "counterparty_name": payer,
            "counterparty_account": None, "narrative": text, "bank_reference": key, "raw_line": key}  # fmt: skip


def timed(work: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        clock = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - clock)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    rules = packaged_funds_rules()
    days = [FIRST + dt.timedelta(days=n) for n in range(args.days)]
    product_s = plain_s = make_s = 0.0
    sums, plain = [], []
    for day in days:
        clock = time.perf_counter()
        frame = day_records(day, args.records)
        make_s += time.perf_counter() - clock
        took, result = timed(lambda f=frame, d=day: product_day(f, d, rules), args.repeat)
        product_s += took
        sums.append(result)
        took, result = timed(lambda f=frame, d=day: plain_day(f, d), args.repeat)
        plain_s += took
        plain.append(result)
        del frame
    month = pl.concat(sums)  # type: ignore[arg-type]
    baseline = pd.concat(plain)  # type: ignore[arg-type]
    nets = sorted(zip(baseline["channel"], baseline["business_date"], baseline["net"].astype(int), strict=True))
    lines = payouts(nets, days[-1])
    took_night, night = timed(lambda: reconcile_funds(None, lines, rules, days[0], days[-1], sums=month), args.repeat)
    product_nets = sorted(night.outcomes.select("channel", "business_date", "net_fen").iter_rows())  # type: ignore[attr-defined]
    same = product_nets == nets
    print(f"{args.days} days × {args.records:,} records (made in {make_s:.1f} s, not counted); nets agree: {same}")
    print("| step | product (polars) | plain pandas | × |")
    print("|---|---|---|---|")
    ratio = plain_s / product_s
    print(f"| the days' sums (fee by rule, per channel and day) | {product_s:.2f} s | {plain_s:.2f} s | {ratio:.1f} |")
    print(f"| the month's passes, outcomes, clearing proof, exceptions | {took_night:.3f} s | – | – |")
    done = night  # the night's frames
    print(f"expectations {done.outcomes.height}, statement lines {lines.height}, "  # type: ignore[attr-defined]
          f"exceptions {done.exceptions.height}, balanced {done.balanced}; peak RSS {peak_mib():.0f} MiB")  # type: ignore[attr-defined]
    if not same:
        raise SystemExit("the product's nets differ from the plain script's")


if __name__ == "__main__":
    main()
