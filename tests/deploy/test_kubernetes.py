"""deploy/kubernetes/: schema-valid, consistent, and the Deployment's container really starts.

Every file is validated with ``kubernetes-validate --strict`` against a current
Kubernetes; the ServiceMonitor (a CRD) against the prometheus-operator models
generated from its published CRD, with unknown fields rejected. Then the
container's args and environment, taken from the manifests, are run against a
real Redis and probed the way the kubelet would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc

from celerystatus_server.local_redis import free_port
from tests.support.waiting import wait_for

from .conftest import DEPLOY, run, tool

K8S = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.37.0"
CRDS = {"ServiceMonitor", "Kustomization"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> dict[str, dict[str, Any]]:
    """kind/name -> document, for every resource file."""
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in documents(path):
            if doc["kind"] != "Kustomization":
                found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def core_manifests() -> list[Path]:
    """Files of built-in kinds; the CRDs (ServiceMonitor, Kustomization) have their own tests."""
    return [path for path in sorted(K8S.glob("*.yaml")) if not {doc["kind"] for doc in documents(path)} <= CRDS]


def test_every_manifest_is_checked() -> None:
    checked = {path.name for path in core_manifests()} | {"servicemonitor.yaml", "kustomization.yaml"}
    assert checked == {path.name for path in K8S.glob("*.yaml")}


@pytest.mark.parametrize("path", core_manifests(), ids=lambda p: p.name)
def test_manifest_validates_strictly(path: Path) -> None:
    result = run([tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(path)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "passed" in output and "WARN" not in output, output


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    # The parametrized check above would be worthless if --strict let typos through.
    service = documents(K8S / "service.yaml")[0]
    service["spec"]["portz"] = []
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(service))
    result = run([tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(bad)])
    assert result.returncode != 0, result.stdout + result.stderr


def test_service_monitor_matches_the_prometheus_operator_schema(tmp_path: Path) -> None:
    python = tool("python", tools_venv_only=True)
    checker = str(Path(__file__).with_name("crd_schema.py"))
    result = run([python, checker, str(K8S / "servicemonitor.yaml")])
    assert result.returncode == 0, result.stdout + result.stderr
    (doc,) = documents(K8S / "servicemonitor.yaml")
    (endpoint,) = doc["spec"]["endpoints"]
    service = manifests()["Service/celery-status"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert doc["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    credentials = endpoint["authorization"]["credentials"]
    assert credentials["key"] in manifests()[f"Secret/{credentials['name']}"]["stringData"]

    # The check above would be worthless if it let a typo through.
    endpoint["bearerTokenFiel"] = "/x"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = run([python, checker, str(bad)])
    assert result.returncode == 1 and "bearerTokenFiel: unknown field" in result.stdout, result.stdout


def test_kustomization_lists_every_file_and_names_the_image() -> None:
    (kustomization,) = documents(K8S / "kustomization.yaml")
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    deployment = manifests()["Deployment/celery-status"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    image_names = {image["name"] for image in kustomization["images"]}
    assert container["image"].split(":")[0] in image_names


def test_selectors_match_the_pods() -> None:
    found = manifests()
    pod_labels = found["Deployment/celery-status"]["spec"]["template"]["metadata"]["labels"]
    for key in ("Service/celery-status", "PodDisruptionBudget/celery-status"):
        spec = found[key]["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        assert selector.items() <= pod_labels.items(), key
    policy = found["NetworkPolicy/celery-status"]["spec"]["podSelector"]["matchLabels"]
    assert policy.items() <= pod_labels.items()
    assert found["PodDisruptionBudget/celery-status"]["spec"]["minAvailable"] < \
        found["Deployment/celery-status"]["spec"]["replicas"]  # fmt: skip


def test_container_is_locked_down() -> None:
    pod = manifests()["Deployment/celery-status"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"]["memory"]
    assert container["resources"]["requests"]["cpu"]


# -- the container, run as the manifests describe it -----------------------------


def _container_command(grpc_port: int, http_port: int, broker_url: str, tmp: Path) -> tuple[list[str], dict[str, str]]:
    """The Deployment's args and env, resolved from the example Secret, on free ports."""
    found = manifests()
    (container,) = found["Deployment/celery-status"]["spec"]["template"]["spec"]["containers"]
    ports = {"50051": str(grpc_port), "8080": str(http_port)}
    args = [arg.rsplit(":", 1)[0] + ":" + ports[arg.rsplit(":", 1)[1]] if arg.startswith("0.0.0.0:") else arg
            for arg in container["args"]]  # fmt: skip
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env: dict[str, str] = {}
    for volume in found["Deployment/celery-status"]["spec"]["template"]["spec"]["volumes"]:
        if "secret" not in volume:
            continue
        secret = found[f"Secret/{volume['secret']['secretName']}"]["stringData"]
        for item in volume["secret"]["items"]:
            target = tmp / mounts[volume["name"]].lstrip("/") / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(secret[item["key"]])
    for variable in container["env"]:
        if "value" in variable:
            value = variable["value"]
            env[variable["name"]] = str(tmp / value.lstrip("/")) if value.startswith("/etc/") else value
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = found[f"Secret/{ref['name']}"]["stringData"][ref["key"]]
    # The example points at a Redis named "redis"; here it is the test's.
    env["CELERY_STATUS_BROKER_URL"] = broker_url
    return [str(Path(sys.executable).with_name("celery-status")), *args], env


@pytest.fixture
def container(redis_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, int, dict[str, str]]]:
    grpc_port, http_port = free_port(), free_port()
    command, env = _container_command(grpc_port, http_port, redis_url, tmp_path)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_STATUS_")}
    process = subprocess.Popen(command, env={**clean, **env}, stdout=subprocess.DEVNULL,
                               stderr=open(tmp_path / "stderr", "wb"))  # fmt: skip
    try:
        yield process, grpc_port, http_port, {**clean, **env}
    finally:
        process.terminate()
        process.wait(15)


def _health(port: int, service: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        status: int = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status
        return status


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_the_deployment_container_starts_and_passes_its_probes(container: Any, redis_url: str) -> None:
    process, grpc_port, http_port, _ = container
    deployment = manifests()["Deployment/celery-status"]
    (spec,) = deployment["spec"]["template"]["spec"]["containers"]
    # startupProbe: grpc health, service "".
    assert spec["startupProbe"]["grpc"]["port"] == 50051
    wait_for(lambda: _health(grpc_port, "") == health_pb2.HealthCheckResponse.SERVING,
             timeout=30, ignore=(grpc.RpcError,), message="startup probe")  # fmt: skip
    assert process.poll() is None
    # readinessProbe: grpc health of the service itself.
    service = spec["readinessProbe"]["grpc"]["service"]
    assert _health(grpc_port, service) == health_pb2.HealthCheckResponse.SERVING
    # livenessProbe: GET /livez on the http port.
    assert spec["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert _http_status(f"http://127.0.0.1:{http_port}/livez") == 200
    # The secure default holds: the data needs a token.
    assert _http_status(f"http://127.0.0.1:{http_port}/api/celery-status") == 401
    assert _http_status(f"http://127.0.0.1:{http_port}/metrics") == 401


@pytest.mark.slow
def test_without_the_tokens_secret_the_container_refuses_to_start(redis_url: str, tmp_path: Path) -> None:
    # The contrast that makes the test above meaningful: the same args without
    # credentials exit 2, which is why the manifests mount the tokens Secret.
    command, env = _container_command(free_port(), free_port(), redis_url, tmp_path)
    env.pop("CELERY_STATUS_TOKENS_FILE")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_STATUS_")}
    result = subprocess.run(command, env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
