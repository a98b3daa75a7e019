"""How the bridge serves the page: headers, feature detection, offline docs, files in the wheel."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest
import tomllib
from fastapi import FastAPI

from celerystatus_server.bridge import BridgeSecurity, create_app
from celerystatus_server.bridge.dashboard import STATIC_DIR
from celerystatus_server.security.policy import SecurityPolicy
from celerystatus_server.security.tokens import TokenStore, hash_token
from tests.support.workers import REPO_ROOT


def client(app: FastAPI) -> httpx.AsyncClient:
    # The page's routes need no backend, so the app's lifespan is not run.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridge")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with client(create_app("127.0.0.1:1")) as c:
        yield c


async def test_page_is_served_with_a_strict_policy(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    # Everything the page loads is on this origin: no CDN, no inline script.
    assert not re.search(r"(src|href)=\"(https?:)?//", response.text)
    assert "<script>" not in response.text


async def test_modules_are_served_as_javascript(http: httpx.AsyncClient) -> None:
    for path in sorted((STATIC_DIR / "js").glob("*.js")):
        response = await http.get(f"/ui/js/{path.name}")
        assert response.status_code == 200, path.name
        # Browsers refuse to run a module served with any other type.
        assert response.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
        assert "no-cache" in response.headers["cache-control"]
        # Imports stay relative to this origin.
        for target in re.findall(r'from "([^"]+)"', response.text):
            assert target.startswith("./") and (STATIC_DIR / "js" / target[2:]).is_file(), target


async def test_config_reports_optional_apis_from_the_routes() -> None:
    app = create_app("127.0.0.1:1")
    async with client(app) as http:
        config = (await http.get("/ui/config.json")).json()
        assert config["auth_required"] is False
        # This bridge routes every optional API; a bridge without one would say false for it.
        assert config["features"] == {"history": True, "trends": True, "alerts": True}
        app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", "") != "/api/alerts"]
        config = (await http.get("/ui/config.json")).json()
        assert config["features"] == {"history": True, "trends": True, "alerts": False}


async def test_config_says_when_a_token_is_needed() -> None:
    policy = SecurityPolicy.build(tokens=TokenStore.load(None, f"{hash_token('t0k3n-abc')}:viewer:board"))
    async with client(create_app("127.0.0.1:1", security=BridgeSecurity(policy=policy))) as http:
        response = await http.get("/ui/config.json")
        # Reachable without a token (the page must learn that it needs one), and telling nothing else.
        assert response.status_code == 200 and response.json()["auth_required"] is True
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/api/celery-status")).status_code == 401


async def test_docs_use_local_assets_only(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
    for asset in assets:
        assert (await http.get(asset)).status_code == 200, asset
    assert "openapi" in (await http.get("/openapi.json")).json()
    # The page itself and its config are not API operations.
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert "/" not in paths and "/ui/config.json" not in paths


def test_every_static_file_ships_in_the_wheel() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["celerystatus_server"]
    package_root = STATIC_DIR.parent.parent
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files
    for path in files:
        relative = path.relative_to(package_root).as_posix()
        assert any(fnmatch(relative, pattern) and relative.count("/") == pattern.count("/") for pattern in patterns), (
            f"{relative} is not in [tool.setuptools.package-data]"
        )


def test_no_third_party_bundle_in_the_repository() -> None:
    for path in Path(STATIC_DIR).rglob("*"):
        if path.is_file():
            assert not path.name.endswith((".min.js", ".min.css", ".map")), path
            assert path.stat().st_size < 64 * 1024, f"{path} looks like a bundle"
