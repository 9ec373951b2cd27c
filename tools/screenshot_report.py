"""A screenshot of the evaluation page (``reports/evaluate/index.html``) for the docs.

Run ``dvc repro`` first (any profile), then::

    python -m tools.screenshot_report --repo . --out docs/evaluation-page.png

Headless Chromium (Debian's ``chromium``, installed by ``make setup``) draws the page
as a browser shows it: the top ``--height`` CSS pixels, scaled by ``--scale``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tools.browser import screenshot

PAGE = Path("reports/evaluate/index.html")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshot_report")
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=4400)
    parser.add_argument("--scale", type=float, default=0.6, help="image pixels per CSS pixel")
    args = parser.parse_args(argv)
    page = args.repo / PAGE
    if not page.is_file():
        raise SystemExit(f"no page at {page}: run `dvc repro evaluate` (or `wavegen report`)")
    screenshot(page, args.out, args.width, args.height, args.scale)
    print(args.out)


if __name__ == "__main__":
    main()
