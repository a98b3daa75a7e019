"""The scaler's answers on a real server fed canned snapshots: validation, hold, credentials, limits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from celerystatus import CeleryStatusClient
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server.config import Settings
from celerystatus_server.security.tokens import hash_token
from celerystatus_server.server import StatusServer
from tests.bridge.fake_service import make_status
from tests.security.certs import CertificateAuthority
from tests.support.keda_client import KedaContract, KedaScalerClient, StreamRecorder
from tests.support.server import running_server
from tests.support.waiting import wait_for
from tests.support.workers import REPO_ROOT

VIEWER_TOKEN = "keda-viewer-token-0123456789"
TOKENS = f"{hash_token(VIEWER_TOKEN)}:viewer:dashboard"
# make_status: 2 workers with 2 slots each, 1 active task, 3 messages waiting.
CANNED_DESIRED = 2


def canned(**changes: Any) -> pb.CeleryStatus:
    status = make_status()
    for key, value in changes.items():
        setattr(status, key, value)
    return status


@pytest.fixture
def start() -> Iterator[Callable[..., StatusServer]]:
    """``start(**settings)``: a server with the collector off, fed ``canned()``."""
    with_servers: list[Any] = []

    def run(**overrides: Any) -> StatusServer:
        values: dict[str, Any] = {"enabled": False, "grpc_address": "127.0.0.1:0"}
        values.update(overrides)
        context = running_server(Settings(**values))
        server = context.__enter__()
        with_servers.append(context)
        server.store.publish(canned())
        return server

    yield run
    for context in reversed(with_servers):
        context.__exit__(None, None, None)


@pytest.fixture
def server(start: Callable[..., StatusServer]) -> StatusServer:
    return start()


@pytest.fixture
def keda(server: StatusServer, keda_contract: KedaContract) -> Iterator[KedaScalerClient]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield KedaScalerClient(channel, keda_contract)


def _calls(keda: KedaScalerClient, metadata: dict[str, str]) -> dict[str, Callable[[], object]]:
    def first_stream_message() -> object:
        call = keda.stream_is_active(metadata)
        try:
            return next(iter(call))
        finally:
            call.cancel()

    return {
        "IsActive": lambda: keda.is_active(metadata),
        "StreamIsActive": first_stream_message,
        "GetMetricSpec": lambda: keda.metric_spec(metadata),
        "GetMetrics": lambda: keda.metrics(metadata, ""),
    }


def _code(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details() or ""


def test_every_method_answers_from_the_snapshot(keda: KedaScalerClient) -> None:
    assert keda.metric_spec({}) == [("celery-backlog-workers", 1, 1.0)]
    assert keda.metrics({}, "celery-backlog-workers") == [("celery-backlog-workers", CANNED_DESIRED, 2.0)]
    assert keda.is_active({}) is True
    assert keda.is_active({"activationThreshold": "4"}) is False
    assert keda.desired({"metric": "waiting", "targetPerWorker": "1"}) == 3
    call = keda.stream_is_active({})
    try:
        assert next(iter(call)).result is True
    finally:
        call.cancel()


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ({"queue": "celery"}, "queue"),
        ({"metric": "depth"}, "metric"),
        ({"targetPerWorker": "0"}, "targetPerWorker"),
        ({"activationThreshold": "many"}, "activationThreshold"),
        ({"queues": ""}, "queues"),
    ],
)
def test_bad_metadata_is_invalid_argument_naming_the_key(
    keda: KedaScalerClient, metadata: dict[str, str], key: str
) -> None:
    for method, call in _calls(keda, metadata).items():
        code, details = _code(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, method
        assert details.startswith(f"scalerMetadata.{key}: "), (method, details)


def test_kedas_own_keys_are_accepted_and_a_foreign_metric_name_refused(keda: KedaScalerClient) -> None:
    keda_keys = {"scalerAddress": "celery-status.celery:50051", "enableTLS": "false", "unsafeSsl": "false"}
    assert keda.desired(keda_keys) == CANNED_DESIRED
    code, details = _code(lambda: keda.metrics({}, "celery-waiting-workers"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("metricName: ")


def test_untrusted_snapshots_hold_the_last_good_answer(server: StatusServer, keda: KedaScalerClient) -> None:
    seen: dict[str, str] = {}
    assert keda.desired(seen) == CANNED_DESIRED and keda.is_active(seen)
    stream = StreamRecorder(keda.stream_is_active(seen))
    try:
        wait_for(lambda: stream.received == [True], timeout=10)
        for bad in (
            canned(connected=False, stale=True, error="broker unreachable", workers=0, active_tasks=0),
            canned(stale=True, error="round timed out"),
        ):
            server.store.publish(bad)
            assert keda.desired(seen) == CANNED_DESIRED
            assert keda.is_active(seen) is True
            # Queries never answered before have nothing to hold.
            for code, details in (
                _code(lambda: keda.desired({"targetPerWorker": "9"})),
                _code(lambda: keda.is_active({"metric": "waiting"})),
            ):
                assert code == grpc.StatusCode.UNAVAILABLE and bad.error in details
        # An idle cluster seen while trusted: inactive is not repeated on missing data.
        idle = canned(active_tasks=0)
        del idle.queues[:]
        idle.queue_details.Clear()
        server.store.publish(idle)
        assert keda.desired(seen) == 0 and keda.is_active(seen) is False
        wait_for(lambda: stream.received == [True, False], timeout=10)
        server.store.publish(canned(connected=False, stale=True, error="broker unreachable"))
        assert keda.desired(seen) == 0
        code, _ = _code(lambda: keda.is_active(seen))
        assert code == grpc.StatusCode.UNAVAILABLE
        # Trusted data again: the stream follows it, and was not broken by the outage.
        server.store.publish(canned())
        wait_for(lambda: stream.received == [True, False, True], timeout=10)
        assert stream.error is None
    finally:
        stream.close()


def test_disabled_server_never_decides(keda_contract: KedaContract) -> None:
    settings = Settings(enabled=False, grpc_address="127.0.0.1:0")
    with running_server(settings) as srv, grpc.insecure_channel(srv.grpc_target) as channel:
        keda = KedaScalerClient(channel, keda_contract)
        for method, call in _calls(keda, {}).items():
            if method in {"GetMetricSpec", "StreamIsActive"}:
                continue
            code, details = _code(call)
            assert code == grpc.StatusCode.UNAVAILABLE and "disabled" in details, method


def test_tokens_apply_to_the_scaler(start: Callable[..., StatusServer], keda_contract: KedaContract) -> None:
    server = start(tokens=TOKENS)
    with grpc.insecure_channel(server.grpc_target) as channel:
        for token in (None, "not-a-token"):
            for method, call in _calls(KedaScalerClient(channel, keda_contract, token=token), {}).items():
                code, _ = _code(call)
                assert code == grpc.StatusCode.UNAUTHENTICATED, (method, token)
        viewer = KedaScalerClient(channel, keda_contract, token=VIEWER_TOKEN)
        assert viewer.desired({}) == CANNED_DESIRED


def test_rate_limits_apply_to_the_scaler(start: Callable[..., StatusServer], keda_contract: KedaContract) -> None:
    server = start(rate_limit=0.01, rate_burst=3)
    with grpc.insecure_channel(server.grpc_target) as channel:
        keda = KedaScalerClient(channel, keda_contract)
        codes = []
        for _ in range(5):
            try:
                keda.is_active({})
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    assert codes[:3] == [grpc.StatusCode.OK] * 3
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes[3:]


def test_mutual_tls_is_how_keda_authenticates(
    start: Callable[..., StatusServer], keda_contract: KedaContract, tmp_path: Path
) -> None:
    ca = CertificateAuthority(tmp_path)
    server_pair = ca.issue("celery-status", server=True)
    keda_pair = ca.issue("keda-operator")
    server = start(
        tokens=TOKENS,
        tls_cert=str(server_pair.cert),
        tls_key=str(server_pair.key),
        tls_client_ca=str(ca.cert),
    )
    root = ca.cert.read_bytes()
    # KEDA's TriggerAuthentication: caCert, tlsClientCert, tlsClientKey; no bearer token.
    with_cert = grpc.ssl_channel_credentials(root, keda_pair.key.read_bytes(), keda_pair.cert.read_bytes())
    with grpc.secure_channel(server.grpc_target, with_cert) as channel:
        keda = KedaScalerClient(channel, keda_contract)
        assert keda.desired({}) == CANNED_DESIRED and keda.is_active({}) is True
    with grpc.secure_channel(server.grpc_target, grpc.ssl_channel_credentials(root)) as channel:
        code, _ = _code(lambda: KedaScalerClient(channel, keda_contract).is_active({}, timeout=3))
        assert code == grpc.StatusCode.UNAVAILABLE


def test_health_and_reflection_list_the_scaler(server: StatusServer) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service="externalscaler.ExternalScaler"), timeout=2)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="externalscaler.ExternalScaler"),
        ]
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = list(reflection.ServerReflectionInfo(iter(requests), timeout=5))
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"externalscaler.ExternalScaler", "celerystatus.v1.CeleryStatusService"} <= names
    (serialized,) = answers[1].file_descriptor_response.file_descriptor_proto
    assert descriptor_pb2.FileDescriptorProto.FromString(serialized).package == "externalscaler"


def test_a_snapshot_too_old_is_not_trusted(server: StatusServer, keda: KedaScalerClient) -> None:
    # A collector stuck without publishing leaves an ever older "good" snapshot.
    assert keda.desired({}) == CANNED_DESIRED
    server.store.publish(canned(active_tasks=0), observed_monotonic=time.monotonic() - 3600)
    assert keda.desired({}) == CANNED_DESIRED, "held, not recomputed from the old snapshot"
    code, details = _code(lambda: keda.desired({"metric": "waiting"}))
    assert code == grpc.StatusCode.UNAVAILABLE and "old" in details


async def test_the_documented_autoscaler_loop_runs_on_the_sdk(server: StatusServer) -> None:
    """docs/autoscaling.md's loop for teams without KEDA, as written, against the canned cluster."""
    text = (REPO_ROOT / "docs" / "autoscaling.md").read_text(encoding="utf-8")
    section = text.split("## Without KEDA", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert code.rstrip().endswith("asyncio.run(main())")
    namespace: dict[str, Any] = {"__name__": "autoscaler_example"}
    exec(compile(code.rstrip().removesuffix("asyncio.run(main())"), "autoscaling.md", "exec"), namespace)
    calls: list[dict[str, int]] = []
    namespace["scale_celery_workers"] = lambda **change: calls.append(change)
    from celerystatus.aio import AsyncCeleryStatusClient

    async with AsyncCeleryStatusClient(server.grpc_target) as client:
        # 2 workers of 2 slots, demand 4 (1 active + 3 waiting): ceil(4 / 1.6) = 3 workers.
        await namespace["check_and_scale"](client)
        assert calls == [{"increase": 1}]
        server.store.publish(canned(stale=True, error="round timed out"))
        await namespace["check_and_scale"](client)
        assert calls == [{"increase": 1}], "a stale snapshot changes nothing"


def test_gauge_scaler_and_sdk_agree(start: Callable[..., StatusServer], keda_contract: KedaContract) -> None:
    """One computation: the same snapshot gives the same count through /metrics, KEDA and the SDK."""
    server = start(http_address="127.0.0.1:0")

    def gauge() -> float | None:
        text = httpx.get(f"http://127.0.0.1:{server.http_port}/metrics", timeout=5).text
        values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        return values.get("celery_workers_desired") if values.get("celery_workers") == 2 else None

    from_metrics = wait_for(gauge, timeout=15, message="bridge has the canned snapshot")
    with grpc.insecure_channel(server.grpc_target) as channel:
        # saturation with a target of 0.8 is scaling_advice's default utilisation.
        from_keda = KedaScalerClient(channel, keda_contract).desired({"metric": "saturation", "targetPerWorker": "0.8"})
    with CeleryStatusClient(server.grpc_target) as sdk:
        from_sdk = sdk.scaling_advice(0, 100).desired_workers
    # 2 workers of 2 slots, demand 4: ceil(4 / (2 * 0.8)) = 3.
    assert from_metrics == from_keda == from_sdk == 3
