"""Peak resident memory of this process, as every benchmark here measures it.

Not getrusage's ``ru_maxrss``: Linux carries that over from the parent across fork and
exec (a child of a large process reports the parent's size), and it cannot be reset.
``VmHWM`` in ``/proc/self/status`` is this process's own high-water mark, and writing 5
to ``/proc/self/clear_refs`` (Linux >= 4.0) resets it to the current resident size.
"""

from __future__ import annotations

import resource
import threading
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


def status_mib(field: str) -> float:
    """A ``/proc/self/status`` size (``VmRSS``, ``RssAnon``, ``RssFile`` …) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class AnonymousPeak:
    """The peak of ``RssAnon`` (memory the process owns, without the file pages it
    maps) while the context runs, sampled every ``interval`` seconds by a thread.

    VmHWM counts the pages of a memory-mapped file that the process has touched: page
    cache, which the kernel takes back under pressure and every reader of the file
    shares. Sampling can miss a spike shorter than the interval."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, status_mib("RssAnon"))
            self._stop.wait(self.interval)

    def __enter__(self) -> AnonymousPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, status_mib("RssAnon"))
