"""The OpenAPI 3.1 document of the HTTP API, built from the same pydantic models the views use."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from api.secrets import API_KEY_HEADER, ApiKeyCreate, CodeIssue, CodeRedeem
from realtime import __version__
from realtime.chat_models import ChannelCreate, ChannelUpdate

ERROR = {"$ref": "#/components/schemas/Error"}
MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "channel", "seq", "author", "text", "created_at", "deleted", "reactions"],
    "properties": {
        "id": {"type": "string"}, "channel": {"type": "string"}, "seq": {"type": "integer"},
        "author": {"type": "object", "properties": {"id": {"type": "string"},
                                                     "name": {"type": "string"}}},
        "text": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
        "client_id": {"type": "string"}, "thread_id": {"type": "string"},
        "edited_at": {"type": "string", "format": "date-time"}, "deleted": {"type": "boolean"},
        "reactions": {"type": "object",
                      "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": "error",
                        "content": {"application/json": {"schema": ERROR}}} for code in codes}


def _ok(schema: dict[str, Any], status: int = 200, content: str = "application/json"
        ) -> dict[str, Any]:
    return {str(status): {"description": "ok", "content": {content: {"schema": schema}}}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _secret_paths(bearer: list[dict[str, list[str]]]) -> dict[str, Any]:
    """API keys and one-time codes (api/secrets.py)."""
    obj = {"type": "object"}
    return {
        "/api/v1/admin/api-keys": {
            "get": {"summary": "API keys (admin; never the key itself)", "security": bearer,
                    "responses": {**_ok(obj), **_errors(401, 403, 503)}},
            "post": {"summary": "Create an API key (admin; the key is shown once)",
                     "security": bearer, "requestBody": _body("ApiKeyCreate"),
                     "responses": {**_ok(obj, 201), **_errors(400, 401, 403, 413, 503)}}},
        "/api/v1/admin/api-keys/{key_id}": {"delete": {
            "summary": "Revoke an API key (admin)", "security": bearer,
            "parameters": [{"name": "key_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {**_ok(obj), **_errors(401, 403, 404, 503)}}},
        "/api/v1/auth/api-key": {"post": {
            "summary": "Trade an API key for a short-lived access token",
            "security": [{"apiKey": []}],
            "responses": {**_ok({"type": "object", "required": ["access_token"], "properties": {
                "access_token": {"type": "string"}, "token_type": {"type": "string"},
                "expires_in": {"type": "integer"}}}), **_errors(401, 503)}}},
        "/api/v1/admin/codes": {"post": {
            "summary": "Issue a one-time code (admin; shown once)", "security": bearer,
            "requestBody": _body("CodeIssue"),
            "responses": {**_ok(obj, 201), **_errors(400, 401, 403, 409, 413, 503)}}},
        "/api/v1/codes/redeem": {"post": {
            "summary": "Redeem a one-time code (single use)", "security": bearer,
            "requestBody": _body("CodeRedeem"),
            "responses": {**_ok(obj), **_errors(400, 401, 403, 413, 503)}}},
    }


def openapi_document(parts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The document served at ``/api/v1/openapi.json``: the REST API's own paths plus the
    plugins' ``parts`` (hook ``gigvora_openapi``, ``{"paths", "schemas"}``), merged."""
    doc = copy.deepcopy(_api_document())
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    for part in parts or []:
        for path, item in part.get("paths", {}).items():
            clash = paths.setdefault(path, {}).keys() & item.keys()
            if clash:
                raise ValueError(f"OpenAPI: {sorted(clash)} {path} documented twice")
            paths[path].update(item)
        schemas.update(part.get("schemas", {}))
    doc["paths"] = dict(sorted(paths.items()))
    doc["components"]["schemas"] = dict(sorted(schemas.items()))
    return doc


@cache
def _api_document() -> dict[str, Any]:
    """The REST API plugin's own part."""
    channel_create = ChannelCreate.model_json_schema()
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gigvora Live HTTP API", "version": __version__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"},
                                "apiKey": {"type": "apiKey", "in": "header",
                                           "name": API_KEY_HEADER}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Message": MESSAGE_SCHEMA,
                "ChannelCreate": channel_create,
                "ChannelUpdate": ChannelUpdate.model_json_schema(),
                **{name: model.model_json_schema() for name, model in (
                    ("ApiKeyCreate", ApiKeyCreate), ("CodeIssue", CodeIssue),
                    ("CodeRedeem", CodeRedeem))},
            },
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": _ok(
                {"type": "object", "properties": {"status": {"type": "string"}}})}},
            "/readyz": {"get": {"summary": "Readiness (detail with an operator token)",
                                "responses": {
                                    **_ok({"type": "object"}, content="application/health+json"),
                                    "503": {"description": "not ready", "content": {
                                        "application/health+json": {"schema": {
                                            "type": "object"}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (operator)", "security": bearer,
                                 "responses": {**_ok({"type": "string"}, content="text/plain"),
                                               **_errors(401, 403)}}},
            "/api/v1/channels": {
                "get": {"summary": "Channels the caller may read", "security": bearer,
                        "responses": {**_ok({"type": "object"}), **_errors(401)}},
                "post": {"summary": "Create a channel (admin)", "security": bearer,
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/ChannelCreate"}}}},
                         "responses": {**_ok({"type": "object"}, 201),
                                       **_errors(400, 401, 403, 409, 413)}}},
            "/api/v1/channels/{channel}": {"patch": {
                "summary": "Set or clear a channel's category (admin)", "security": bearer,
                "parameters": [{"name": "channel", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ChannelUpdate"}}}},
                "responses": {**_ok({"type": "object"}), **_errors(400, 401, 403, 404, 413)}}},
            "/api/v1/channels/{channel}/messages": {"get": {
                "summary": "History ordered by seq", "security": bearer,
                "parameters": [
                    {"name": "channel", "in": "path", "required": True,
                     "schema": {"type": "string"}},
                    _query("before_seq", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}),
                    _query("after_seq", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                    _query("thread_id", {"type": "string", "minLength": 1, "maxLength": 64})],
                "responses": {**_ok({"type": "object", "properties": {
                    "messages": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/Message"}},
                    "has_more": {"type": "boolean"}}}), **_errors(400, 401, 403, 404, 413)}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document",
                                             "responses": _ok({"type": "object"})}},
            **_secret_paths(bearer),
        },
    }
