"""The fixed cost of an empty day: where the seconds go when there is nothing to reconcile.

Each measurement is a fresh process (what an operator or a worker pays), the fastest of
``--repeat``, all on the same small SQLite book in a temporary folder:

- ``python -c pass`` and ``import prefect``, ``import flows.nightly``: the interpreter and the imports;
- the runner alone (``flows.runner.reconcile_dates``, no Prefect): the product's own work;
- ``recon run --no-workbook`` against a Prefect server already running on 127.0.0.1 (started here,
  on SQLite, once, before the measurements);
- ``recon run --no-workbook`` with no server: Prefect's temporary server, started by the command.

Usage: ``python bench/bench_empty_day.py [--repeat 3]``. Prints a table; the target of the issue is
the running-server line at 3 s or less.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
DAY = "2026-11-28"  # after the book's last reconciled date: nothing cascades
IN_PROCESS = (
    "import datetime as dt, time; from flows.nightly import reconcile_business_date; "
    f"day = dt.date.fromisoformat('{DAY}'); clock = time.perf_counter(); "
    "reconcile_business_date(day, workbook=False); print(time.perf_counter() - clock)"
)


def _timed(command: list[str], env: dict[str, str], repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        clock = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - clock)
        if done.returncode not in (0, 5):  # 5: the inbox folder is missing (an empty day), said so
            raise SystemExit(f"{command} failed ({done.returncode}): {done.stderr[-2000:]}")
    return min(times), times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-empty-"))
    env = {**os.environ, "RECON_HOME": str(work / "home"), "PREFECT_HOME": str(work / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    subprocess.run([str(BIN / "recon"), "init"], env=env, check=True, capture_output=True)
    python = str(BIN / "python")
    rows: list[tuple[str, float, list[float]]] = []
    for label, command in (
        ("python -c pass", [python, "-c", "pass"]),
        ("import prefect", [python, "-c", "import prefect"]),
        ("import flows.nightly (prefect, polars, pandera, ...)", [python, "-c", "import flows.nightly"]),
        ("the runner alone, no Prefect", [python, "-c", "import datetime as dt; from flows.config import load_config; "
                                          "from flows.runner import reconcile_dates; "
                                          f"reconcile_dates(load_config(), [dt.date.fromisoformat('{DAY}')], False)"]),
    ):  # fmt: skip
        best, times = _timed(command, env, args.repeat)
        rows.append((label, best, times))
    # a running server
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        run = [str(BIN / "recon"), "run", "--date", DAY, "--no-workbook"]
        best, times = _timed(run, {**env, "PREFECT_API_URL": api}, args.repeat)
        rows.append(("recon run, empty day, against a running server", best, times))
        # the flow run alone, in a process that has imported everything already (a worker's view)
        inner = []
        for _ in range(args.repeat):
            said = subprocess.run([python, "-c", IN_PROCESS], env={**env, "PREFECT_API_URL": api}, capture_output=True,
                                  text=True, check=True)  # fmt: skip
            inner.append(float(said.stdout.strip().splitlines()[-1]))
        rows.append(("the flow run itself, imports done, against a running server", min(inner), inner))
    finally:
        server.terminate()
        server.wait(30)
    best, times = _timed([str(BIN / "recon"), "run", "--date", DAY, "--no-workbook"], env, args.repeat)
    rows.append(("recon run, empty day, temporary server", best, times))
    print(f"load average {os.getloadavg()[0]:.1f}; fastest of {args.repeat} (every run)")
    print("| what | seconds | runs |\n| --- | ---: | --- |")
    for label, best, times in rows:
        print(f"| {label} | {best:.2f} | {', '.join(f'{t:.2f}' for t in times)} |")
    plain = next(b for label, b, _ in rows if label.startswith("the runner"))
    served = next(b for label, b, _ in rows if "running server" in label)
    print(f"\nPrefect against a running server costs {served - plain:.2f} s over the runner alone "
          f"({served / plain:.1f}×); target for the whole: 3 s")  # fmt: skip


if __name__ == "__main__":
    main()
