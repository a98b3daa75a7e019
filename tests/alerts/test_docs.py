"""docs/alerts.md stays in step with the rules."""

from __future__ import annotations

from pathlib import Path

from celerystatus_server.alerts.rules import BUILTIN_RULES, format_duration

DOC = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


def test_every_rule_is_documented_with_its_default_for_and_severity() -> None:
    rows = {line.split("|")[1].strip(" `"): line for line in DOC.read_text().splitlines() if line.startswith("| `")}
    for name, rule_class in BUILTIN_RULES.items():
        rule = rule_class()
        assert name in rows, f"{name} missing from docs/alerts.md"
        assert f"`for: {format_duration(rule.for_)}`" in rows[name], name
        assert f"| {rule.severity} |" in rows[name], name
