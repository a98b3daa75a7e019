"""The proto is KEDA's external scaler contract, field for field."""

from __future__ import annotations

from google.protobuf import descriptor_pb2

from tests.support.keda_client import KedaContract

F = descriptor_pb2.FieldDescriptorProto
STRING, BOOL, INT64, DOUBLE, MESSAGE = F.TYPE_STRING, F.TYPE_BOOL, F.TYPE_INT64, F.TYPE_DOUBLE, F.TYPE_MESSAGE
OPTIONAL, REPEATED = F.LABEL_OPTIONAL, F.LABEL_REPEATED

# As kedacore/keda pkg/scalers/externalscaler/externalscaler.proto defines them:
# (name, number, type, label, message type).
KEDA_MESSAGES = {
    "ScaledObjectRef": [
        ("name", 1, STRING, OPTIONAL, ""),
        ("namespace", 2, STRING, OPTIONAL, ""),
        ("scalerMetadata", 3, MESSAGE, REPEATED, ".externalscaler.ScaledObjectRef.ScalerMetadataEntry"),
    ],
    "IsActiveResponse": [("result", 1, BOOL, OPTIONAL, "")],
    "GetMetricSpecResponse": [("metricSpecs", 1, MESSAGE, REPEATED, ".externalscaler.MetricSpec")],
    "MetricSpec": [
        ("metricName", 1, STRING, OPTIONAL, ""),
        ("targetSize", 2, INT64, OPTIONAL, ""),
        ("targetSizeFloat", 3, DOUBLE, OPTIONAL, ""),
    ],
    "GetMetricsRequest": [
        ("scaledObjectRef", 1, MESSAGE, OPTIONAL, ".externalscaler.ScaledObjectRef"),
        ("metricName", 2, STRING, OPTIONAL, ""),
    ],
    "GetMetricsResponse": [("metricValues", 1, MESSAGE, REPEATED, ".externalscaler.MetricValue")],
    "MetricValue": [
        ("metricName", 1, STRING, OPTIONAL, ""),
        ("metricValue", 2, INT64, OPTIONAL, ""),
        ("metricValueFloat", 3, DOUBLE, OPTIONAL, ""),
    ],
}
KEDA_METHODS = {
    "IsActive": (".externalscaler.ScaledObjectRef", ".externalscaler.IsActiveResponse", False),
    "StreamIsActive": (".externalscaler.ScaledObjectRef", ".externalscaler.IsActiveResponse", True),
    "GetMetricSpec": (".externalscaler.ScaledObjectRef", ".externalscaler.GetMetricSpecResponse", False),
    "GetMetrics": (".externalscaler.GetMetricsRequest", ".externalscaler.GetMetricsResponse", False),
}


def test_package_messages_and_fields_are_kedas(keda_contract: KedaContract) -> None:
    file = keda_contract.file
    assert file.package == "externalscaler"
    messages = {
        m.name: [(f.name, f.number, f.type, f.label, f.type_name) for f in m.field] for m in file.message_type
    }
    assert messages == KEDA_MESSAGES
    (ref,) = [m for m in file.message_type if m.name == "ScaledObjectRef"]
    (entry,) = ref.nested_type
    assert entry.options.map_entry
    assert [(f.name, f.number, f.type) for f in entry.field] == [("key", 1, STRING), ("value", 2, STRING)]


def test_service_and_methods_are_kedas(keda_contract: KedaContract) -> None:
    (service,) = keda_contract.file.service
    assert service.name == "ExternalScaler"
    methods = {m.name: (m.input_type, m.output_type, m.server_streaming) for m in service.method}
    assert methods == KEDA_METHODS
    assert not any(m.client_streaming for m in service.method)
