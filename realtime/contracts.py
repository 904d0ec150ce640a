"""``gigvora contracts export DIR``: the client contract, for the React and Flutter SDKs.

The export boots the real app (``create_app`` and its startup, no listening socket) in a scratch
data directory with every built-in plugin on, so it sees exactly the events the server registers —
plugins add theirs with ``ctx.add_event`` at startup. It writes:

- ``openapi.json``: the HTTP API's OpenAPI document (as ``GET /api/v1/openapi.json`` serves it);
- ``socketio.json``: every namespace's client → server events (roles, rate limit, the payload's
  JSON Schema from the model registered on the hub) and server → client events (the models of
  ``realtime/contract_models.py``), the acknowledgement envelope, and the transport;
- ``schemas/<namespace>/<direction>/<event>.json``: each payload as a standalone JSON Schema.

Both documents carry ``CONTRACT_VERSION`` (bump the major version for a breaking change) and a
``fingerprint`` of their content. ``tests/ops/test_contracts.py`` fails when the code and the
committed ``docs/contracts/`` drift.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pydantic import BaseModel

from realtime import __version__
from realtime.contract_models import EMITTED
from realtime.hub import Hub

CONTRACT_VERSION = "1.2.0"
REGENERATE = "run `gigvora contracts export docs/contracts` and commit docs/contracts/"
JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
OPENAPI_PATH = "/api/v1/openapi.json"
ACK_SCHEMA: dict[str, Any] = {"oneOf": [
    {"type": "object", "required": ["ok", "data"],
     "properties": {"ok": {"const": True}, "data": {}}},
    {"type": "object", "required": ["ok", "error"],
     "properties": {"ok": {"const": False}, "error": {
         "type": "object", "required": ["code", "message"],
         "properties": {"code": {"type": "string", "examples": [
             "unauthorized", "forbidden", "not_found", "invalid", "rate_limited",
             "moderation_blocked", "too_large", "unavailable", "conflict", "internal"]},
             "message": {"type": "string"},
             "retry_after_ms": {"type": "integer"}}}}}]}


def _fingerprint(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k not in ("fingerprint", "server_version")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _schema(model: type[BaseModel] | None) -> dict[str, Any] | None:
    return None if model is None else model.model_json_schema()


def socketio_contract(hub: Hub) -> dict[str, Any]:
    """The Socket.IO contract of the events registered on ``hub``."""
    namespaces: dict[str, dict[str, Any]] = {}
    for (namespace, name), spec in sorted(hub.events.items()):
        ns = namespaces.setdefault(namespace, {"client_to_server": {}, "server_to_client": {}})
        ns["client_to_server"][name] = {
            "roles": sorted(spec.roles) if spec.roles else None,
            "rate_limited": spec.limited, "payload": _schema(spec.model),
            "ack": {"$ref": "#/ack"}}
    for item in EMITTED:
        found = namespaces.get(item.namespace)
        if found is None or (item.requires and item.requires not in found["client_to_server"]):
            continue  # the feature emitting it is not loaded
        found["server_to_client"][item.event] = {"payload": _schema(item.model)}
    doc: dict[str, Any] = {
        "contract_version": CONTRACT_VERSION, "server_version": __version__,
        "transport": {"protocol": "Socket.IO v5 (Engine.IO v4)", "path": "/socket.io/",
                      "auth": {"token": "an access token (JWT)"},
                      "acks": "every client → server event takes an acknowledgement"},
        "ack": ACK_SCHEMA,
        "namespaces": {ns: {d: dict(sorted(v[d].items())) for d in v}
                       for ns, v in sorted(namespaces.items())}}
    doc["fingerprint"] = _fingerprint(doc)
    return doc


async def openapi_contract(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document the app serves, with the contract version."""
    for resource in app.router.resources():
        if resource.canonical != OPENAPI_PATH:
            continue
        for route in resource:
            if route.method == "GET":
                response = await route.handler(make_mocked_request("GET", OPENAPI_PATH,
                                                                   app=app))
                assert isinstance(response, web.Response) and response.body is not None
                doc: dict[str, Any] = json.loads(bytes(response.body))  # type: ignore[arg-type]
                doc["info"]["x-contract-version"] = CONTRACT_VERSION
                return doc
    raise RuntimeError(f"no {OPENAPI_PATH} route: is the api plugin disabled?")


def export_settings(data_dir: Path, plugins_allow: tuple[str, ...] = ()) -> Any:
    """Settings that load every built-in feature (the Chatwoot bridge needs a configuration to
    register its events; nothing is contacted) without ML models or real secrets, plus the
    entry-point plugins named in ``plugins_allow`` (none for the committed contract)."""
    from realtime.config import load_settings

    return load_settings(environ={}, data_dir=data_dir, jwt_secret="contract-export-" + "x" * 32,
                         plugins_allow=list(plugins_allow),
                         port=0, moderation_ml="off", log_level="warning",
                         chatwoot_base_url="http://127.0.0.1:9", chatwoot_api_token="export",
                         chatwoot_account_id=1, chatwoot_inbox_id=1,
                         chatwoot_webhook_secret="export-" + "x" * 32)


async def build(plugins_allow: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Boot the app (no listening socket) and return ``{"openapi": …, "socketio": …}``."""
    from realtime.app import HUB, create_app

    with tempfile.TemporaryDirectory(prefix="gigvora-contracts-") as scratch:
        app = create_app(export_settings(Path(scratch), plugins_allow))
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await runner.setup()  # startup: plugins bind their events
        try:
            return {"openapi": await openapi_contract(app),
                    "socketio": socketio_contract(app[HUB])}
        finally:
            await runner.cleanup()


def _slug(name: str) -> str:
    return name.strip("/").replace("/", "_").replace(":", ".") or "root"


def files(contract: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every exported file, by path relative to the export directory, with its text."""
    def dump(doc: Any) -> str:
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    out = {"openapi.json": dump(contract["openapi"]), "socketio.json": dump(contract["socketio"])}
    for namespace, ns in contract["socketio"]["namespaces"].items():
        for direction, events in ns.items():
            for event, spec in events.items():
                if spec["payload"] is None:
                    continue
                schema = {"$schema": JSON_SCHEMA, "$id": f"gigvora-live/{CONTRACT_VERSION}/"
                          f"{_slug(namespace)}/{direction}/{event}",
                          **spec["payload"], "title": spec["payload"].get("title", event)}
                out[f"schemas/{_slug(namespace)}/{direction}/{_slug(event)}.json"] = dump(schema)
    return out


async def export(directory: str | Path, plugins_allow: tuple[str, ...] = ()) -> dict[str, Any]:
    """Write the contract to ``directory`` (its ``schemas/`` is replaced, so removed events
    disappear) and say what was written. ``plugins_allow``: entry-point plugins to load too
    (e.g. ``("matching",)`` for an SDK with the marketplace events; docs/contracts has none)."""
    target = Path(directory)
    written = files(await build(plugins_allow))
    shutil.rmtree(target / "schemas", ignore_errors=True)
    for relative, text in written.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    socketio = json.loads(written["socketio.json"])
    return {"dir": str(target), "contract_version": CONTRACT_VERSION,
            "fingerprint": socketio["fingerprint"], "files": len(written),
            "events": sum(len(e) for ns in socketio["namespaces"].values()
                          for e in ns.values())}
