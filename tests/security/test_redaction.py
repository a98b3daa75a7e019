"""The viewer variant: what is withheld and what an operator may let through."""

from __future__ import annotations

import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.values import dict_to_struct, list_to_list_value
from celerystatus_server.security.redaction import Redactor
from celerystatus_server.service import RedactedVariant
from celerystatus_server.snapshot import SnapshotStore


def task(args: list[object], kwargs: dict[str, object] | None = None, argsrepr: str = "") -> pb.Task:
    return pb.Task(
        id="t", args=list_to_list_value(args), kwargs=dict_to_struct(kwargs or {}), argsrepr=argsrepr
    )


def test_everything_is_withheld_by_default() -> None:
    t = task(["eval-1", "secret"], {"key": "v"}, "('eval-1', 'secret')")
    Redactor().redact_task(t)
    # Masked in place: positions and keyword names stay, values do not.
    assert [v.string_value for v in t.args.values] == ["***", "***"]
    assert {k: v.string_value for k, v in t.kwargs.fields.items()} == {"key": "***"}
    assert t.argsrepr == "" and t.args_redacted


def test_allow_list_is_anchored_and_scalar_only() -> None:
    redactor = Redactor(["eval-*"])
    t = task(["eval-1", "xeval-2", "eval-3 and secret", ["eval-4"], 5], {"eval_id": "eval-9", "k": "eval"})
    redactor.redact_task(t)
    assert [v.string_value for v in t.args.values] == ["eval-1", "***", "eval-3 and secret", "***", "***"]
    assert {k: v.string_value for k, v in t.kwargs.fields.items()} == {"eval_id": "eval-9", "k": "***"}
    assert t.args_redacted


def test_nothing_withheld_means_not_marked() -> None:
    t = task(["eval-1"])
    Redactor(["eval-*"]).redact_task(t)
    assert not t.args_redacted


def test_argsrepr_only_when_allowed() -> None:
    t = task(["secret"], argsrepr="('<masked>',)")
    Redactor(allow_argsrepr=True).redact_task(t)
    assert t.argsrepr == "('<masked>',)" and [v.string_value for v in t.args.values] == ["***"] and t.args_redacted


@pytest.mark.parametrize("pattern", ["*", "**", "?*", "x" * 300])
def test_patterns_that_would_publish_everything_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        Redactor([pattern])


def test_redacted_variant_is_computed_once_per_version_and_never_mutates_the_snapshot() -> None:
    status = pb.CeleryStatus(enabled=True)
    status.queue_details.active["w"].tasks.append(task(["secret"]))
    store = SnapshotStore()
    snap = store.publish(status)
    variant = RedactedVariant(Redactor())
    first = variant.of(snap)
    assert variant.of(snap) is first and variant.computed == 1
    assert snap.status.queue_details.active["w"].tasks[0].args.values[0].string_value == "secret"
    variant.of(store.publish(status))
    assert variant.computed == 2
