"""Peak memory of the benchmark process that calls it (each engine runs in a process of its own)."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_mib() -> float:
    """This process's peak resident memory. ``ru_maxrss`` survives ``exec`` (a child would report its
    parent's peak when that was higher), so the kernel's per-address-space high-water mark is read."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
