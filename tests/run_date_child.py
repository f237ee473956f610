"""Child process for the crash and lock tests: reconcile dates without Prefect.

Usage: python tests/run_date_child.py DATE[,DATE…] [--wait SECONDS] [--hold SECONDS]
``RECON_FAULTPOINT`` (see flows/faults.py) makes it SIGKILL itself at a checkpoint; ``--hold``
keeps the date's lock for a while after the run, so a second process can find it held.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows import runner
from flows.config import load_config
from flows.locks import DateLocked, business_date_lock


def main() -> int:
    days = [dt.date.fromisoformat(text) for text in sys.argv[1].split(",")]
    wait = float(sys.argv[sys.argv.index("--wait") + 1]) if "--wait" in sys.argv else 0.0
    hold = float(sys.argv[sys.argv.index("--hold") + 1]) if "--hold" in sys.argv else 0.0
    config = load_config()
    try:
        if hold:
            with business_date_lock(config.database_url, days[0], "holder", 0.0):
                print("locked", flush=True)
                time.sleep(hold)
            return 0
        runner.reconcile_dates(config, days, workbook=True, wait_seconds=wait)
    except DateLocked as locked:
        print(f"LOCKED: {locked}", flush=True)
        return 4
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
