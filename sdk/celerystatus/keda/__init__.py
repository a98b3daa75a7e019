"""Generated protobuf and gRPC modules for KEDA's ``externalscaler`` contract.

``externalscaler_pb2`` and ``externalscaler_pb2_grpc`` are produced from
``protos/celerystatus/keda/externalscaler.proto`` when the distribution is
built or installed; they are not kept in version control. The status server
serves this contract so KEDA can scale Celery workers (docs/autoscaling.md).
"""
