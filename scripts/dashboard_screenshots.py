"""Screenshots of the dashboard for the README: desktop and phone width, light and dark.

    .venv/bin/python scripts/dashboard_screenshots.py [--redis-url redis://127.0.0.1:6379/9] [--out docs]

Starts ``celery-status demo`` (unless --url is given), waits until it has work
to show, and writes docs/dashboard-{desktop,phone}-{light,dark}.png.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.browser import chromium_executable  # noqa: E402
from tests.support.serve import running_demo  # noqa: E402

SIZES: dict[str, Any] = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
READY = """() => document.querySelector('#banner').dataset.state === 'connected'
    && document.querySelectorAll('#active-table tbody tr:not(.empty)').length > 0
    && document.querySelectorAll('[data-metric="throughput"] svg path.line').length > 0"""


def shoot(url: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    if executable is None:
        raise SystemExit("chromium not found (apt-get install chromium)")
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            for size, viewport in SIZES.items():
                for scheme in ("light", "dark"):
                    context = browser.new_context(viewport=viewport, color_scheme=scheme, device_scale_factor=1)
                    page = context.new_page()
                    page.goto(url)
                    page.wait_for_function(READY, timeout=60_000)
                    # A few snapshots so the "since this page was opened" charts have a shape.
                    page.wait_for_timeout(8000)
                    path = out / f"dashboard-{size}-{scheme}.png"
                    page.screenshot(path=str(path), full_page=size == "desktop")
                    written.append(path)
                    context.close()
        finally:
            browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running dashboard; default: start celery-status demo")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9", help="Redis for the demo")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    with ExitStack() as stack:
        url = args.url or stack.enter_context(running_demo(args.redis_url))
        for path in shoot(url, args.out):
            print(path)


if __name__ == "__main__":
    main()
