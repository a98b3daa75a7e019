"""Our GET /api/celery-status against Flower's cached /api/workers: req/s and p99 with wrk, interleaved.

Starts one cluster (two demo workers with tasks in every state, as
bench_bridge.py does), ``celery-status serve`` and Flower on the same broker;
Flower is installed into a venv of its own (``.bench/flower-venv``) so it
never shares packages with the project. Each run measures, for every
concurrency level, both servers back to back with the same wrk command
(order alternating from run to run): a plain GET, and a revalidation with the
ETag just fetched (304). The ratios are computed within a run, and the range
over the runs is printed, so load from other processes hits both sides alike.

    python bench/bench_serving.py --broker redis://127.0.0.1:6379/9 --runs 3 --duration 5

Needs ``wrk`` on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import venv
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bridge import _free_port, _start_cluster

ROOT = Path(__file__).resolve().parents[1]
FLOWER_VENV = ROOT / ".bench" / "flower-venv"
OURS = "/api/celery-status"
FLOWER = "/api/workers"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _flower_python() -> Path:
    python = FLOWER_VENV / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(FLOWER_VENV)
    # kombu's Redis transport imports packaging without depending on it.
    if subprocess.run([str(python), "-c", "import flower, redis, packaging"], capture_output=True).returncode:
        print(f"installing Flower into {FLOWER_VENV}", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "flower", "redis", "packaging"], check=True)
    return python


def _start_flower(stack: ExitStack, broker: str) -> str:
    python = _flower_python()
    port = _free_port()
    log = open(ROOT / ".bench" / "flower.log", "wb")
    stack.callback(log.close)
    process = subprocess.Popen(
        [str(python), "-m", "celery", "--broker", broker, "flower", f"--port={port}", "--address=127.0.0.1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        # Flower 2 serves its API only to authenticated users unless told otherwise.
        env={**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"},
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    return f"http://127.0.0.1:{port}"


def _wait(url: str, check: Any, what: str, timeout: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=10)
            if check(response):
                return response
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not ready after {timeout} s")
        time.sleep(0.5)


def _wrk(url: str, concurrency: int, duration: float, headers: dict[str, str]) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "p99_ms": float(p99.group(1)) * _UNITS[p99.group(2)] if p99 else float("nan"),
        "bad": float(bad.group(1)) if bad else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def _etag(url: str) -> str:
    response = httpx.get(url, timeout=10)
    etag = response.headers.get("etag")
    if not etag:
        raise SystemExit(f"{url} sent no ETag")
    return etag


def _measure(url: str, level: int, duration: float, conditional: bool) -> dict[str, float]:
    headers = {}
    if conditional:
        etag = _etag(url)
        headers["If-None-Match"] = etag
        check = httpx.get(url, headers=headers, timeout=10)
        if check.status_code != 304:
            raise SystemExit(f"{url} answered {check.status_code} to its own ETag")
    result = _wrk(url, level, duration, headers)
    if conditional:
        # A new snapshot during the run would turn the rest of it into 200s.
        result["etag_held"] = float(_etag(url) == headers["If-None-Match"])
    return result


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--refresh-interval", type=float, default=30.0,
                        help="long, so an ETag outlives a measurement (Flower's cache does not change either)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found on PATH (Debian: apt-get install wrk)")
    levels = [int(c) for c in args.concurrency.split(",")]
    (ROOT / ".bench").mkdir(exist_ok=True)
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        ours = _start_cluster(stack, args.broker, args.refresh_interval) + OURS
        flower = _start_flower(stack, args.broker) + FLOWER
        body = _wait(ours, lambda r: r.status_code == 200 and r.json()["workers"] >= 2, "celery-status").content
        # The first refresh fills Flower's cache; plain /api/workers then serves it.
        _wait(flower + "?refresh=1", lambda r: r.status_code == 200 and len(r.json()) >= 2, "Flower")
        flower_body = _wait(flower, lambda r: r.status_code == 200 and len(r.json()) >= 2, "Flower").content
        print(f"bodies: ours {len(body)} bytes, Flower {len(flower_body)} bytes; load average {_loadavg()}", flush=True)
        for run in range(args.runs):
            for level in levels:
                for conditional in (False, True):
                    pair = [("ours", ours), ("flower", flower)]
                    if run % 2:
                        pair.reverse()
                    results = {name: _measure(url, level, args.duration, conditional) for name, url in pair}
                    row = {
                        "run": run + 1,
                        "concurrency": level,
                        "kind": "304" if conditional else "200",
                        "loadavg": os.getloadavg()[0],
                        **{f"{name}_{key}": value for name, result in results.items() for key, value in result.items()},
                    }
                    row["ratio_rps"] = row["ours_rps"] / row["flower_rps"]
                    rows.append(row)
                    print(
                        f"run {row['run']} c={level:<3} {row['kind']}: ours {row['ours_rps']:8.0f} req/s "
                        f"p99 {row['ours_p99_ms']:7.2f} ms | Flower {row['flower_rps']:8.0f} req/s "
                        f"p99 {row['flower_p99_ms']:7.2f} ms | x{row['ratio_rps']:.2f}  "
                        f"(bad {row['ours_bad']:.0f}/{row['flower_bad']:.0f}, load {row['loadavg']:.2f})",
                        flush=True,
                    )
    print("\nrange over runs (ours / Flower req/s ratio; p99 ours vs Flower, ms):")
    for level in levels:
        for kind in ("200", "304"):
            sel = [r for r in rows if r["concurrency"] == level and r["kind"] == kind]
            ratios = [r["ratio_rps"] for r in sel]
            print(
                f"c={level:<3} {kind}: x{min(ratios):.2f}-{max(ratios):.2f}  "
                f"ours {min(r['ours_rps'] for r in sel):.0f}-{max(r['ours_rps'] for r in sel):.0f} req/s, "
                f"Flower {min(r['flower_rps'] for r in sel):.0f}-{max(r['flower_rps'] for r in sel):.0f} req/s; "
                f"p99 ours {min(r['ours_p99_ms'] for r in sel):.1f}-{max(r['ours_p99_ms'] for r in sel):.1f}, "
                f"Flower {min(r['flower_p99_ms'] for r in sel):.1f}-{max(r['flower_p99_ms'] for r in sel):.1f}"
            )
    print(f"load average at the end: {_loadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
