"""The alerting configuration: built-in rules, threshold rules, receivers, options.

Read from the rules file (``--alerts-file``, YAML); every value has a default,
so no file means the built-in rules with their defaults and no receiver.
Errors name the file, the line and the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from .rules import BUILTIN_RULES, Duration, RuleBase, ThresholdRule

__all__ = ["AlertConfig", "Options", "Receiver", "RulesFileError", "load_alert_config", "parse_alert_config"]


class RulesFileError(ValueError):
    """The rules file cannot be used; ``str()`` is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Receiver(_Strict):
    """Where notifications go."""

    name: str = Field(min_length=1)
    type: Literal["webhook", "slack", "alertmanager"]
    #: A secret: masked in every log line and error.
    url: str
    timeout: Duration = 5.0
    #: Send a firing alert again after this long (Alertmanager: keeps it alive).
    repeat_interval: Duration | None = None
    send_resolved: bool = True
    #: Tries per notification (first one included), with jittered backoff.
    attempts: int = Field(default=3, ge=1, le=10)
    #: Notifications waiting beyond this are dropped and counted.
    queue_size: int = Field(default=1000, ge=1)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def repeat_seconds(self) -> float:
        if self.repeat_interval is not None:
            return self.repeat_interval
        # Alertmanager forgets an alert not re-sent within its resolve_timeout (5 m).
        return 60.0 if self.type == "alertmanager" else 4 * 3600.0


class Options(_Strict):
    #: How long resolved alerts stay listed.
    resolved_retention: Duration = 900.0
    #: Evaluate at least this often even without a new snapshot (for `for` and StatusStale).
    evaluation_interval: Duration = Field(default=2.0, gt=0)


BuiltinRules: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "BuiltinRules",
    __config__=ConfigDict(extra="forbid", frozen=True),
    **{name: (cls, Field(default_factory=cls)) for name, cls in BUILTIN_RULES.items()},
)


class AlertConfig(_Strict):
    rules: BuiltinRules = Field(default_factory=BuiltinRules)  # type: ignore[valid-type]
    thresholds: list[ThresholdRule] = Field(default_factory=list)
    receivers: list[Receiver] = Field(default_factory=list)
    options: Options = Field(default_factory=Options)

    @field_validator("thresholds")
    @classmethod
    def _unique_thresholds(cls, value: list[ThresholdRule]) -> list[ThresholdRule]:
        names = [rule.name for rule in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate threshold rule name {duplicates[0]!r}")
        return value

    @field_validator("receivers")
    @classmethod
    def _unique_receivers(cls, value: list[Receiver]) -> list[Receiver]:
        names = [r.name for r in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate receiver name {duplicates[0]!r}")
        return value

    def active_rules(self) -> list[RuleBase]:
        builtin = [getattr(self.rules, name) for name in BUILTIN_RULES]
        return [rule for rule in [*builtin, *self.thresholds] if rule.enabled]

    def longest_window(self) -> float:
        """How much history the in-memory trend source must keep."""
        windows = [getattr(rule, "window", 0.0) for rule in self.active_rules()]
        return max([600.0, *windows])


def _plain(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    """The node as plain data, recording the line of every path."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _plain(value_node, (*path, key), lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    # The deepest prefix of the error's location that exists in the file.
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _describe(error: Any) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "greater_than_equal" and error.get("ctx", {}).get("ge") == 0:
        return f"must not be negative (got {error.get('input')!r})"
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _problems(exc: ValidationError, lines: dict[tuple[Any, ...], int], source: str) -> Iterator[str]:
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        # Unknown built-in rule names are the likeliest typo; say which exist.
        if error.get("type") == "extra_forbidden" and len(loc) == 2 and loc[0] == "rules":
            what = f"unknown rule {loc[1]!r} (built-in rules: {', '.join(BUILTIN_RULES)})"
        else:
            what = _describe(error)
        line = _line_of(loc, lines)
        field = ".".join(str(p) for p in loc) or "(top level)"
        yield f"{source}:{line or 1}: {field}: {what}"


def parse_alert_config(text: str, source: str = "<rules>") -> AlertConfig:
    """The configuration in ``text``; raises :class:`RulesFileError`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesFileError([f"{source}:{line}: invalid YAML: {problem}"]) from None
    lines: dict[tuple[Any, ...], int] = {}
    data: Any = {} if root is None else _plain(root, (), lines)
    if not isinstance(data, dict):
        raise RulesFileError([f"{source}:1: (top level): expected a mapping with rules, thresholds, receivers"])
    try:
        return AlertConfig.model_validate(data)
    except ValidationError as exc:
        raise RulesFileError(list(_problems(exc, lines, source))) from None


def load_alert_config(path: str | Path | None) -> AlertConfig:
    """The file's configuration, or the defaults when ``path`` is None."""
    if path is None:
        return AlertConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesFileError([f"{path}: cannot read the alerts file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise RulesFileError([f"{path}:1: not UTF-8 text"]) from None
    return parse_alert_config(text, str(path))
