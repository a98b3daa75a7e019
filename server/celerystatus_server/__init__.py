"""The celery-status server: collector, gRPC service, JSON bridge and CLI.

Kept import-light: workers import ``celerystatus_server.worker_extension``
without the server's dependencies.
"""
