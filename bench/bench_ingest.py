"""Parse + validate + normalise a million-record file of each layout, against polars' plain read.

For each layout one file is written once (``reconcile.synthetic`` writers, the same lines every
time); then, each in a child process of this script so its peak memory is its own, (1) polars'
plain ``read_csv`` of the same bytes (strings only, no checks; a fixed-width file read as one
column of lines) and (2) the product's reader (decode, find header, classify lines, cut fields,
map to canonical records, control totals, pandera validation, invalid rows split off). Both start
from the file's bytes already in memory (a run reads them once, for their SHA-256), each has read
a 200-record file of the layout once before the clock (what a reader does once per process is not
the reading), and the clock covers the reading alone. The two take turns, ``--repeat`` times, and the
best of each is kept.
Times are printed as ratios to the plain read. Usage:

    python bench/bench_ingest.py --records 1000000 [--repeat 5] [--layout bank_pipe_v1 ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from peak import peak_mib  # bench/peak.py, beside this script

if TYPE_CHECKING:
    from reconcile.settings import Settings

DAY = dt.date(2026, 11, 27)
#: layout → (file name, channel, whether it is delimited, what polars' plain read needs to know)
LAYOUTS: dict[str, tuple[str, str, bool, dict[str, object]]] = {
    "alipay_trade": ("alipay_trade_20261127.csv", "alipay", True, {"separator": ",", "comment_prefix": "#"}),
    "alipay_signcustomer": ("alipay_account_20261127.csv", "alipay", True, {"separator": ",", "comment_prefix": "#"}),
    "bank_pipe_v1": ("icbc_result_20261127.txt", "icbc", True, {"separator": "|", "skip_rows": 1}),
    "offline_repayments": ("offline_repayments_20261127.csv", "offline", True, {"separator": ","}),
    "bank_fixed_v1": ("boc_result_20261127.txt", "boc", False, {"separator": "\x1f", "skip_rows": 1}),
    "unionpay_zm": ("INN26112788ZM_898310048990001", "unionpay", False, {"separator": "\x1f"}),
    "wechat_trade": ("wechat_trade_20261127.csv", "wechat", True, {"separator": ","}),
    "processor_sectioned": ("baofoo_20261127.txt", "baofoo", True, {"separator": "|"}),
}


def write_file(layout: str, records: int, folder: Path) -> Path:
    from reconcile import synthetic as syn

    never = records + 1  # a period longer than the file: no line of that sort
    # each file gets exactly ``records`` records: successes only where the layout lists only those,
    # debits only where it has no refunds
    successes = syn.sample_lines(DAY, records, seed=1, fail_every=never)
    debits = syn.sample_lines(DAY, records, seed=1, refund_every=never)
    plain_debits = syn.sample_lines(DAY, records, seed=1, refund_every=never, fail_every=never)
    writers = {
        "alipay_trade": lambda: syn.alipay_trade_bill(DAY, successes),
        "alipay_signcustomer": lambda: syn.alipay_account_bill(DAY, successes),
        "bank_pipe_v1": lambda: syn.bank_result_file(DAY, debits),
        "offline_repayments": lambda: syn.offline_repayments_file(plain_debits),
        "bank_fixed_v1": lambda: syn.bank_fixed_file(DAY, debits),
        "unionpay_zm": lambda: syn.unionpay_zm_file(DAY, successes),
        "wechat_trade": lambda: syn.wechat_trade_bill(DAY, successes),
        "processor_sectioned": lambda: syn.processor_sectioned_file(DAY, debits),
    }
    path = folder / LAYOUTS[layout][0]
    path.write_bytes(writers[layout]())
    return path


def plain(layout: str, name: str, data: bytes, settings: Settings | None = None) -> int:
    options = dict(LAYOUTS[layout][3])
    frame = pl.read_csv(
        data, has_header=False, encoding="utf8-lossy", quote_char=None, infer_schema=False,
        truncate_ragged_lines=True, **options,  # type: ignore[arg-type]
    )  # fmt: skip
    return frame.height


def ours(layout: str, name: str, data: bytes, settings: Settings | None = None) -> int:
    from reconcile.ingest import parse_channel_file

    settings = settings or _settings()
    channel = settings.channels[LAYOUTS[layout][1]]
    parsed = parse_channel_file(name, data, "0" * 64, channel, settings.layouts[layout], DAY)
    if parsed.rejected_reason or parsed.invalid.height:
        raise SystemExit(f"{layout}: {parsed.rejected_reason or parsed.invalid.head(3)}")
    return parsed.records.height


def _settings() -> Settings:
    from flows.config import load_channel_config
    from reconcile.settings import settings_from_mapping

    return settings_from_mapping(load_channel_config())


def child(mode: str, layout: str, path: Path) -> None:
    data = path.read_bytes()  # both start from the same bytes in memory (the run has read them already)
    # Start-up is not the reading: imports, the configuration, and what a reader does once per
    # process (pandera builds its checks, regexes compile) are paid before the clock, by reading
    # a small file of the same layout (200 records).
    with tempfile.TemporaryDirectory() as folder:
        warm = write_file(layout, 200, Path(folder)).read_bytes()
    settings = _settings() if mode == "ours" else None
    (plain if mode == "plain" else ours)(layout, path.name, warm, settings)
    clock = time.perf_counter()
    rows = (plain if mode == "plain" else ours)(layout, path.name, data, settings)
    elapsed = time.perf_counter() - clock
    peak = peak_mib()
    print(json.dumps({"seconds": elapsed, "rows": rows, "peak_mib": peak}), file=sys.stderr)


def measure(layout: str, path: Path, repeat: int) -> dict[str, dict[str, float]]:
    """The best of ``repeat`` runs of each reader (the machine is shared), each in a fresh process,
    the two taking turns so both meet the same moments of a noisy machine."""
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for mode in ("plain", "ours"):
            done = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--layout", layout, "--path", str(path)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            facts = json.loads([line for line in done.stderr.splitlines() if line.startswith("{")][-1])
            if mode not in best or facts["seconds"] < best[mode]["seconds"]:
                best[mode] = facts
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--layout", action="append")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.layout[0], Path(args.path))
        return
    folder = Path(tempfile.mkdtemp(prefix="recon-ingest-"))
    print(f"{'layout':<20} {'records':>9} {'MiB':>6} {'plain s':>8} {'ours s':>7} {'ratio':>6} "
          f"{'plain peak':>10} {'ours peak':>10}")  # fmt: skip
    for layout in args.layout or list(LAYOUTS):
        path = write_file(layout, args.records, folder)
        best = measure(layout, path, args.repeat)
        base, mine = best["plain"], best["ours"]
        kind = "" if LAYOUTS[layout][2] else "  (fixed width)"
        print(
            f"{layout:<20} {int(mine['rows']):>9} {path.stat().st_size / 2**20:6.0f} {base['seconds']:8.2f} "
            f"{mine['seconds']:7.2f} {mine['seconds'] / base['seconds']:5.1f}x {base['peak_mib']:7.0f} MiB "
            f"{mine['peak_mib']:6.0f} MiB{kind}"
        )
        path.unlink()


if __name__ == "__main__":
    main()
