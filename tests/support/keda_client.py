"""KEDA's side of the external scaler contract, generated from our proto at test time.

protoc (from grpcio-tools) compiles ``protos/celerystatus/keda/externalscaler.proto``
into a descriptor set in a temporary directory, and the message classes are
built from it in a private descriptor pool. They share nothing with the
server's build-time modules, so a field renumbered or renamed on one side
would show up as a wrong answer here, as it would for KEDA.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tests.support.workers import REPO_ROOT

__all__ = ["PROTO", "KedaContract", "KedaScalerClient", "StreamRecorder"]

PROTO_ROOT = REPO_ROOT / "protos"
PROTO = "celerystatus/keda/externalscaler.proto"
SERVICE = "externalscaler.ExternalScaler"


@dataclass(frozen=True)
class KedaContract:
    """Descriptors and message classes compiled from the proto."""

    file: descriptor_pb2.FileDescriptorProto
    classes: Mapping[str, Any]

    @classmethod
    def compile(cls, out_dir: Path) -> KedaContract:
        from grpc_tools import protoc

        out = out_dir / "externalscaler.pb"
        rc = protoc.main(["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"--descriptor_set_out={out}", PROTO])
        if rc != 0:
            raise RuntimeError(f"protoc failed on {PROTO} (exit {rc})")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
        pool = descriptor_pool.DescriptorPool()
        for proto in files.file:
            pool.Add(proto)
        (file,) = files.file
        classes = {
            m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{file.package}.{m.name}"))
            for m in file.message_type
        }
        return cls(file, classes)

    def new(self, message: str, /, **fields: Any) -> Any:
        return self.classes[message](**fields)


class KedaScalerClient:
    """Calls the four methods the way KEDA's external scaler does."""

    def __init__(self, channel: grpc.Channel, contract: KedaContract, *, token: str | None = None) -> None:
        self.contract = contract
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None

        def method(name: str, request: str, response: str, *, stream: bool = False) -> Any:
            factory = channel.unary_stream if stream else channel.unary_unary
            return factory(
                f"/{SERVICE}/{name}",
                request_serializer=lambda msg: msg.SerializeToString(),
                response_deserializer=contract.classes[response].FromString,
            )

        self._is_active = method("IsActive", "ScaledObjectRef", "IsActiveResponse")
        self._stream = method("StreamIsActive", "ScaledObjectRef", "IsActiveResponse", stream=True)
        self._spec = method("GetMetricSpec", "ScaledObjectRef", "GetMetricSpecResponse")
        self._metrics = method("GetMetrics", "GetMetricsRequest", "GetMetricsResponse")

    def ref(self, metadata: Mapping[str, str]) -> Any:
        return self.contract.new("ScaledObjectRef", name="workers", namespace="celery", scalerMetadata=dict(metadata))

    def is_active(self, metadata: Mapping[str, str], timeout: float = 5.0) -> bool:
        return bool(self._is_active(self.ref(metadata), timeout=timeout, metadata=self._metadata).result)

    def stream_is_active(self, metadata: Mapping[str, str]) -> Any:
        """The call: iterate it for booleans' messages, ``cancel()`` it when done."""
        return self._stream(self.ref(metadata), metadata=self._metadata)

    def metric_spec(self, metadata: Mapping[str, str], timeout: float = 5.0) -> list[tuple[str, int, float]]:
        reply = self._spec(self.ref(metadata), timeout=timeout, metadata=self._metadata)
        return [(s.metricName, s.targetSize, s.targetSizeFloat) for s in reply.metricSpecs]

    def metrics(
        self, metadata: Mapping[str, str], metric_name: str, timeout: float = 5.0
    ) -> list[tuple[str, int, float]]:
        request = self.contract.new("GetMetricsRequest", scaledObjectRef=self.ref(metadata), metricName=metric_name)
        reply = self._metrics(request, timeout=timeout, metadata=self._metadata)
        return [(v.metricName, v.metricValue, v.metricValueFloat) for v in reply.metricValues]

    def desired(self, metadata: Mapping[str, str], timeout: float = 5.0) -> int:
        """The value the HPA divides by the target (1 per replica): the desired workers."""
        ((name, _, _),) = self.metric_spec(metadata, timeout)
        ((_, value, value_float),) = self.metrics(metadata, name, timeout)
        assert value == int(value_float)
        return value


class StreamRecorder:
    """Reads a StreamIsActive call in a thread; ``received`` is every result so far."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.received: list[bool] = []
        self.error: grpc.RpcError | None = None
        self._thread = threading.Thread(target=self._read, name="keda-stream", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self._messages():
                self.received.append(bool(message.result))
        except grpc.RpcError as exc:
            self.error = exc

    def _messages(self) -> Iterator[Any]:
        yield from self.call

    def close(self) -> None:
        self.call.cancel()
        self._thread.join(10)
