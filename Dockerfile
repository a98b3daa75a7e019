# celery-status: the status service (gRPC + JSON bridge + metrics), installed from its wheel.
#   docker build -t celery-status:0.1.0 .        (podman build works the same)
#   docker run -e CELERY_STATUS_BROKER_URL=redis://redis:6379/0 \
#       -e CELERY_STATUS_TOKENS=<sha256>:viewer:grafana -p 50051:50051 -p 8080:8080 celery-status:0.1.0
# It listens on 0.0.0.0, so it refuses to start without credentials (tokens,
# or --allow-unauthenticated on purpose): see docs/security.md.
#
# BASE_IMAGE needs python3 (>= 3.10) with venv, bash, groupadd/useradd. The
# default is the official slim image; where no container registry is reachable,
# .ci/build-image builds on a Debian base it makes with debootstrap instead.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

# -- build: the project's wheel and wheels of everything it needs ------------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY protos/ protos/
COPY sdk/ sdk/
COPY server/ server/
COPY router/ router/
# The build backend generates the protobuf modules with the pinned grpcio-tools
# (pyproject.toml's build-system). Dependencies must come as binary wheels:
# the runtime stage has no compiler to build one.
RUN python3 -m venv /opt/pip \
    && /opt/pip/bin/pip wheel --only-binary=:all: --no-binary=celery-status --wheel-dir /wheels ".[server]"

# -- runtime: the wheels installed in a venv; no compiler, sources or build tools ---
FROM ${BASE_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/celery-status/bin:$PATH \
    CELERY_STATUS_GRPC_ADDRESS=0.0.0.0:50051 \
    CELERY_STATUS_HTTP_ADDRESS=0.0.0.0:8080
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN groupadd --system --gid 10001 celery-status \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin celery-status
COPY --from=build /wheels /tmp/wheels
# Versions are those the build stage resolved (--no-index: nothing else is reachable).
# hadolint ignore=DL3013
RUN python3 -m venv /opt/celery-status \
    && wheel="$(ls /tmp/wheels/celery_status-*.whl)" \
    && pip install --no-index --find-links=/tmp/wheels "${wheel}[server]" \
    && rm -rf /tmp/wheels \
    && celery-status --version \
    && for compiler in cc gcc g++ clang; do \
        if command -v "$compiler"; then echo "$compiler in the runtime image" >&2; exit 1; fi; \
    done
USER 10001:10001
EXPOSE 50051 8080
# /livez answers whenever the process runs; it never looks at Celery or the broker.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ['CELERY_STATUS_HTTP_ADDRESS'].rpartition(':')[2]; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/livez', timeout=4).status != 200)"]
ENTRYPOINT ["celery-status"]
CMD ["serve"]
