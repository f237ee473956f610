"""GB18030 → UTF-8: CPython's codec against reconcile.gb18030 (the C loop), on the same bytes.

The files are the synthetic Alipay business bill and bank result of ``--records`` records (mostly
ASCII with a few two-byte characters a line, as channel files are). Each way runs ``--repeat``
times in this process, taking turns; the best of each is compared. Usage:

    python bench/bench_gb18030.py --records 1000000 [--repeat 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from reconcile import synthetic as syn
from reconcile.gb18030 import accelerated, gb18030_to_utf8, pair_table

DAY = dt.date(2026, 11, 27)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not accelerated():
        raise SystemExit("reconcile._gb18030 is not built: nothing to compare")
    lines = syn.sample_lines(DAY, args.records, seed=1)
    files = {
        "alipay business bill": syn.alipay_trade_bill(DAY, lines.filter(lines["status"] == "SUCCESS")),
        "bank result (pipe)": syn.bank_result_file(DAY, lines.filter(lines["kind"] == "debit")),
    }
    pair_table()  # built once per process, before the clock
    print(f"{'file':<22} {'MiB':>5} {'codec s':>8} {'C loop s':>9} {'speed-up':>9}")
    for name, data in files.items():
        best = {"codec": float("inf"), "c": float("inf")}
        for _ in range(args.repeat):
            clock = time.perf_counter()
            expected = data.decode("gb18030").encode("utf-8")
            best["codec"] = min(best["codec"], time.perf_counter() - clock)
            clock = time.perf_counter()
            got = gb18030_to_utf8(data)
            best["c"] = min(best["c"], time.perf_counter() - clock)
            if got != expected:
                raise SystemExit(f"{name}: the C loop and the codec disagree")
        print(
            f"{name:<22} {len(data) / 2**20:5.0f} {best['codec']:8.3f} {best['c']:9.3f} "
            f"{best['codec'] / best['c']:8.1f}x"
        )


if __name__ == "__main__":
    main()
