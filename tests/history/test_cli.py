"""`celery-status history` / `trends` rendering and bad input (no server needed for either)."""

from __future__ import annotations

import pytest

from celerystatus.cli import main, render_history, render_trends, sparkline
from celerystatus.history import History, QueueTrend, Rate, Saturation, Trends


def test_sparkline_scales_and_leaves_gaps_blank() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1.0, None, 1.0]) == "▁ ▁"
    assert sparkline([None, None]) == "  "
    assert len(sparkline(list(range(600)), width=60)) == 60


def test_history_table_has_one_line_per_series() -> None:
    history = History(
        timestamps=(1_800_000_000.0, 1_800_000_060.0, 1_800_000_120.0),
        series={"workers": (2.0, 2.0, 3.0), "queue:celery": (None, 5.0, 1.0)},
        step=60.0,
    )
    lines = render_history(history).splitlines()
    assert "3 points" in lines[0] and "step 1m00s" in lines[0]
    workers = next(line for line in lines if line.startswith("workers"))
    assert workers.split()[1:5] == ["2", "2.33", "3", "3"] and workers.endswith("▁▁█")
    queue = next(line for line in lines if line.startswith("queue:celery"))
    assert queue.split()[1:5] == ["1", "3", "5", "1"]
    assert history.to_csv().splitlines()[1] == "1800000000.0,2.0,"


def test_trends_summary_names_growing_queues_and_capacity() -> None:
    trends = Trends(
        window=900.0,
        samples=90,
        throughput=Rate("", 2.5, 2250),
        queues={"celery": QueueTrend("celery", 40, 12.0, 162.0, 150.0, None, True)},
        saturation=Saturation(current=1.0, mean=0.9, slope_per_minute=0.01, seconds_to_full=0.0,
                              busy_slots=8, pool_slots=8),
    )
    text = render_trends(trends)
    assert "throughput 2.50/s (2250 tasks)" in text
    assert "at capacity" in text
    assert any(line.startswith("celery") and line.endswith("growing") for line in text.splitlines())


@pytest.mark.parametrize(
    ("argv", "parameter"),
    [
        (["history", "--since", "last tuesday"], "since"),
        (["history", "--since", "1h", "--until", "2h"], "until"),
        (["history", "--step", "fast"], "step"),
        (["trends", "--window", "0"], "window"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], parameter: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # 127.0.0.1:9 (discard) is never asked: the arguments are refused first.
    assert main([*argv, "--target", "127.0.0.1:9", "--timeout", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {parameter}:"), err
