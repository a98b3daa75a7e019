"""Generated protobuf and gRPC modules for the ``celerystatus.v1`` package.

``celery_status_pb2`` and ``celery_status_pb2_grpc`` are produced from
``protos/celerystatus/v1/celery_status.proto`` when the distribution is built
or installed; they are not kept in version control.
"""
