"""Fault points for the crash tests: ``RECON_FAULTPOINT=name`` makes the process kill itself
(SIGKILL, no clean-up) when it reaches the checkpoint of that name. Unset, a checkpoint does nothing."""

from __future__ import annotations

import os
import signal


def checkpoint(name: str) -> None:
    if os.environ.get("RECON_FAULTPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
