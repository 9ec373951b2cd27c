"""Progress bars and one-line phase logs (the stage contract, rule 8)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

log = logging.getLogger("wavegen")


def setup_logging(level: int = logging.INFO) -> None:
    """One line per phase on stderr: ``HH:MM:SS wavegen <message>``."""
    root = logging.getLogger("wavegen")
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s wavegen %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


# Count, rate and ETA on stderr, at most two refreshes a second (DVC logs stay short).
_STYLE = {"dynamic_ncols": True, "mininterval": 0.5, "file": sys.stderr}


def progress(
    items: Iterable[T], *, total: int | None = None, desc: str, unit: str = "it"
) -> Iterator[T]:
    """Wrap ``items`` in a progress bar showing count, rate and ETA."""
    yield from tqdm(items, total=total, desc=desc, unit=unit, **_STYLE)


def progress_bar(
    *, total: int, desc: str, unit: str = "it", initial: int = 0, disable: bool = False
) -> tqdm:
    """A manually advanced bar (``bar.update(n)``, ``bar.set_postfix(...)``); ``disable``
    makes it silent (library calls that a caller times or nests)."""
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=disable, **_STYLE)
