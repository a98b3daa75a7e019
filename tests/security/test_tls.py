"""TLS and mutual TLS handshakes with the SDK client, and HTTPS on the bridge."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

import celerystatus
from celerystatus import TLSConfig

from .conftest import SECRET_ARG, VIEWER_TOKEN, StartServer, auth


def _secret_visible(status: celerystatus.CeleryStatus) -> bool:
    return any(SECRET_ARG in t.args for tasks in status.queue_details.active.values() for t in tasks)


async def test_tls_with_token(start_server: StartServer, pki: dict[str, Any]) -> None:
    server = await start_server(tls_cert=str(pki["server"].cert), tls_key=str(pki["server"].key))
    tls = TLSConfig(ca_cert=pki["ca"])
    async with celerystatus.AsyncCeleryStatusClient(server.grpc_target, token=VIEWER_TOKEN, tls=tls) as client:
        status = await client.get_status()
    assert status.workers == 2 and not _secret_visible(status)
    # Plaintext against a TLS port does not get through.
    async with celerystatus.AsyncCeleryStatusClient(server.grpc_target, token=VIEWER_TOKEN, retries=0,
                                                    timeout=2) as plain:
        with pytest.raises(celerystatus.Unavailable):
            await plain.get_status()
    # A client that trusts another CA refuses the server.
    wrong_ca = TLSConfig(ca_cert=pki["forged_client"].cert)
    async with celerystatus.AsyncCeleryStatusClient(server.grpc_target, token=VIEWER_TOKEN, tls=wrong_ca,
                                                    retries=0, timeout=2) as doubtful:
        with pytest.raises(celerystatus.Unavailable):
            await doubtful.get_status()
    # The bridge serves HTTPS with the same certificate, and still reaches the service.
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{server.http_port}", verify=context) as http:
        response = await http.get("/api/celery-status", headers=auth(VIEWER_TOKEN))
    assert response.status_code == 200 and response.json()["workers"] == 2


@pytest.mark.parametrize(
    ("client", "outcome"),
    [
        ("admin_client", "admin"),
        ("viewer_client", "viewer"),
        ("stranger_client", celerystatus.PermissionDenied),
        ("forged_client", celerystatus.Unavailable),
        (None, celerystatus.Unavailable),
    ],
)
async def test_mutual_tls_maps_certificates_to_roles(
    start_server: StartServer, pki: dict[str, Any], client: str | None, outcome: object
) -> None:
    server = await start_server(
        tokens=None,
        tls_cert=str(pki["server"].cert),
        tls_key=str(pki["server"].key),
        tls_client_ca=str(pki["ca"]),
        client_cert_roles=str(pki["roles"]),
    )
    pair = pki[client] if client else None
    tls = TLSConfig(ca_cert=pki["ca"], client_cert=pair.cert if pair else None, client_key=pair.key if pair else None)
    async with celerystatus.AsyncCeleryStatusClient(server.grpc_target, tls=tls, retries=0, timeout=3) as sdk:
        if isinstance(outcome, str):
            status = await sdk.get_status()
            assert _secret_visible(status) is (outcome == "admin")
            found = await sdk.search_tasks(eval_id="eval-1")
            assert [t.id for t in found.tasks] == ["task-1"]
        else:
            with pytest.raises(outcome):  # type: ignore[call-overload]
                await sdk.get_status()


async def test_in_process_bridge_works_behind_mtls(start_server: StartServer, pki: dict[str, Any]) -> None:
    server = await start_server(
        tls_cert=str(pki["server"].cert),
        tls_key=str(pki["server"].key),
        tls_client_ca=str(pki["ca"]),
    )
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{server.http_port}", verify=context) as http:
        response = await http.get("/api/celery-status", headers=auth(VIEWER_TOKEN))
        anonymous = await http.get("/api/celery-status")
    assert response.status_code == 200 and response.json()["connected"] is True
    assert anonymous.status_code == 401
