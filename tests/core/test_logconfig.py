"""The process's logging: folded repeats, rate-limited outage lines, JSON lines, masked secrets."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx

from celerystatus_server.logconfig import JsonFormatter, RepeatFilter, StateLog, configure
from tests.support.serve_process import ServeProcess, free_port
from tests.support.waiting import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _logger(name: str, *filters: logging.Filter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    for f in filters:
        handler.addFilter(f)
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_identical_errors_are_logged_once_with_a_count() -> None:
    clock = Clock()
    logger, stream = _logger("t.repeat", RepeatFilter(window=60, clock=clock))
    for _ in range(1000):
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            logger.exception("accept failed")
    logger.error("something else")
    clock.now += 61
    logger.exception("accept failed", exc_info=OSError(24, "Too many open files"))
    lines = [line for line in stream.getvalue().splitlines() if line.startswith(("ERROR", "WARNING"))]
    assert lines == [
        "ERROR accept failed",
        "ERROR something else",
        "ERROR accept failed [999 similar suppressed in the last 60s]",
    ]


def test_state_log_reports_changes_and_reminds() -> None:
    clock = Clock()
    logger, stream = _logger("t.state")
    state = StateLog(logger, "broker", remind_every=60, clock=clock)
    for _ in range(200):  # every 0.5 s for 100 s
        state.report("refused")
        clock.now += 0.5
    state.report("timed out")
    state.clear("back")
    state.clear("back")
    assert stream.getvalue().splitlines() == [
        "WARNING broker: refused",
        "WARNING broker: refused (still, for 60s, 121 times)",
        "WARNING broker: timed out",
        "INFO broker: back after 100.0s",
    ]


def test_json_lines_carry_fields_and_mask_passwords() -> None:
    stream = io.StringIO()
    handler = configure("debug", "json", stream=stream)
    try:
        logging.getLogger("t.json").warning(
            "cannot reach %s", "redis://:hunter2@10.0.0.1:6379/0", extra={"peer": "amqp://u:pw9@h//", "n": 3}
        )
        try:
            raise ValueError("redis://:hunter2@h/0 refused")
        except ValueError:
            logging.getLogger("t.json").exception("boom")
    finally:
        logging.getLogger().removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(first) == {"time", "level", "logger", "message", "fields"}
    assert first["level"] == "WARNING" and first["logger"] == "t.json"
    assert first["message"] == "cannot reach redis://:***@10.0.0.1:6379/0"
    assert first["fields"] == {"peer": "amqp://u:***@h//", "n": 3}
    assert "ValueError" in second["fields"]["exception"]
    assert "hunter2" not in stream.getvalue() and "pw9" not in stream.getvalue()


def test_json_formatter_alone_is_one_line() -> None:
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "a\nb", None, None)
    line = JsonFormatter().format(record)
    assert "\n" not in line and json.loads(line)["message"] == "a\nb"


def test_serve_logs_json_and_one_line_per_outage(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: every round fails the same way
    url = f"redis://:brokerpass-s3cret@127.0.0.1:{port}/0"
    args = ["--refresh-interval", "0.2", "--log-format", "json", "--log-level", "info"]
    with ServeProcess(url, tmp_path / "serve.log", args=args) as server:
        wait_for(lambda: httpx.get(f"{server.http_url}/api/celery-status", timeout=5).json()["inspection"]["round"]
                 >= 20, timeout=60)
        text = server.log_text()
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert entries and all(set(e) == {"time", "level", "logger", "message", "fields"} for e in entries)
    outage = [e for e in entries if e["message"].startswith("celery status rounds failing")]
    assert len(outage) == 1, outage  # 20 failed rounds, one line
    assert "brokerpass-s3cret" not in text
