"""Peak resident memory of this process, as every benchmark here measures it.

Not getrusage's ``ru_maxrss``: Linux carries that over from the parent across fork and
exec (a child of a large process reports the parent's size), and it cannot be reset.
``VmHWM`` in ``/proc/self/status`` is this process's own high-water mark, and writing 5
to ``/proc/self/clear_refs`` (Linux >= 4.0) resets it to the current resident size.
"""

from __future__ import annotations

import resource
from pathlib import Path


def reset_high_water() -> bool:
    """Set VmHWM to the current resident size, so that what ran before (imports, a
    warm-up) is not taken for the peak; False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def high_water_mib() -> float:
    """This process's peak resident memory since it started or was reset, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
