"""First render of the dashboard in a real browser (Debian's chromium, headless).

Starts ``celery-status demo`` on the given Redis (unless --url is given), then
opens the page in a fresh browser context --runs times and reports, from the
navigation start: DOMContentLoaded, and the first render of live data (banner
"connected" and the workers card filled from the first snapshot).

    python bench/bench_dashboard.py [--redis-url redis://127.0.0.1:6379/9] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.browser import chromium_executable  # noqa: E402
from tests.support.serve import running_demo  # noqa: E402

FIRST_RENDER = """() => document.querySelector('#banner').dataset.state === 'connected'
    && /\\d/.test(document.querySelector('[data-value="workers"]').textContent)"""


def measure(url: str, runs: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    if executable is None:
        raise SystemExit("chromium not found (apt-get install chromium)")
    loaded, rendered = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            for _ in range(runs + 1):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(url)
                page.wait_for_function(FIRST_RENDER, timeout=30_000, polling="raf")
                first = page.evaluate("performance.now()")
                dom = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
                context.close()
                loaded.append(dom)
                rendered.append(first)
        finally:
            browser.close()
    # The first run pays for the browser's own start-up.
    return loaded[1:], rendered[1:]


def report(name: str, values: list[float]) -> None:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    print(f"{name:<28} median {statistics.median(values):7.1f} ms   p90 {p90:7.1f} ms   "
          f"min {ordered[0]:7.1f} ms   max {ordered[-1]:7.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running dashboard; default: start celery-status demo")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9", help="Redis for the demo")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = args.url or stack.enter_context(running_demo(args.redis_url))
        loaded, rendered = measure(url, args.runs)
    print(f"{args.runs} loads of {url} (loopback, fresh browser context each, headless chromium)")
    report("DOMContentLoaded", loaded)
    report("first render of live data", rendered)


if __name__ == "__main__":
    main()
