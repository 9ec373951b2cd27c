"""Headless Chromium (Debian's ``chromium``, installed by ``make setup``): a page drawn as
a browser shows it, for the docs' pictures and the report's tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file()


def screenshot(
    page: Path, out: Path, width: int = 1280, height: int = 2400, scale: float = 1.0
) -> None:
    """A PNG of ``page`` as headless chromium draws it, ``width`` x ``height`` CSS pixels
    at ``scale`` image pixels each."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--force-device-scale-factor={scale}",
                "--virtual-time-budget=10000",
                f"--screenshot={out.resolve()}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
