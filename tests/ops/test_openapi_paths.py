"""``GET /api/v1/openapi.json`` documents every REST route the app serves (each plugin adds its
part through ``gigvora_openapi``), so a route without docs fails CI; a plugin switched off, or
the Chatwoot bridge unconfigured, contributes nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from realtime.contracts import export_settings
from tests.helpers import make_settings, mint, start_server

DOCUMENTED_PREFIXES = ("/api/", "/integrations/")


def served(app: web.Application) -> set[tuple[str, str]]:
    """``(path, method)`` of every route under the documented prefixes, aiohttp's
    ``{name:regex}`` written as OpenAPI's ``{name}``."""
    found = set()
    for resource in app.router.resources():
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", resource.canonical)
        if not path.startswith(DOCUMENTED_PREFIXES):
            continue
        for route in resource:
            if route.method not in ("HEAD", "OPTIONS"):
                found.add((path, route.method.lower()))
    return found


async def fetch(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{url}/api/v1/openapi.json",
            headers={"Authorization": f"Bearer {mint('ada')}"}) as response:
        assert response.status == 200
        doc: dict[str, Any] = await response.json()
        return doc


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item
            if path.startswith(DOCUMENTED_PREFIXES)}


async def test_every_route_is_documented_with_every_plugin_on(tmp_path: Path) -> None:
    live = await start_server(export_settings(tmp_path))  # every built-in plugin, Chatwoot too
    try:
        doc = await fetch(live.url)
        routes = served(live.app)
        assert {p for p, _ in routes} >= {"/api/v1/moderation/queue", "/api/v1/rooms/sessions",
                                          "/api/v1/support/analytics",
                                          "/integrations/chatwoot/webhook"}
        assert routes - documented(doc) == set(), "routes missing from the OpenAPI document"
        assert documented(doc) - routes == set(), "documented paths the app does not serve"
        refs = re.findall(r'"#/components/schemas/(\w+)"', str(doc).replace("'", '"'))
        assert set(refs) <= doc["components"]["schemas"].keys()
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if path.startswith("/api/v1/") and path != "/api/v1/openapi.json" \
                        and path != "/api/v1/auth/api-key":
                    assert op["security"] == [{"bearer": []}], (method, path)
                    assert "401" in op["responses"], (method, path)
        webhook = doc["paths"]["/integrations/chatwoot/webhook"]["post"]
        assert webhook["security"] == [] and "202" in webhook["responses"]
        hold = doc["paths"]["/api/v1/moderation/holds/{id}/{decision}"]["post"]
        assert "moderator" in hold["description"]
        assert hold["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ReasonIn"}
    finally:
        await live.stop()


async def test_switched_off_plugins_contribute_nothing(tmp_path: Path) -> None:
    live = await start_server(make_settings(tmp_path, moderation_ml="off",
                                            plugins_disable="moderation"))
    try:
        doc = await fetch(live.url)
        assert documented(doc) == served(live.app)
        assert not any(p.startswith("/api/v1/moderation") for p in doc["paths"])
        assert not any(p.startswith(("/api/v1/support", "/integrations/")) for p in doc["paths"])
        assert "/api/v1/rooms/sessions" in doc["paths"]
        assert "ReportIn" not in doc["components"]["schemas"]
    finally:
        await live.stop()
