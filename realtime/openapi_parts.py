"""Building blocks for a plugin's part of the OpenAPI document (hook ``gigvora_openapi``).

A part is ``{"paths": {...}, "schemas": {...}}``: OpenAPI 3.1 path items, and the component
schemas they reference as ``#/components/schemas/<Name>``. Schemas come from the same pydantic
models the views validate with (:func:`model_schemas`, nested ``$defs`` hoisted); every error
answer is the shared ``Error`` schema (``{"error": {"code", "message"}}``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

REF = "#/components/schemas/{model}"
ERROR: dict[str, Any] = {"$ref": "#/components/schemas/Error"}
#: ``security`` of an operation that needs an access token (JWT).
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
OBJECT: dict[str, Any] = {"type": "object"}


def model_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    """``{name: schema}`` of ``models`` and every model they nest (hoisted from ``$defs``)."""
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def ref(name: str) -> dict[str, Any]:
    """A reference to component schema ``name``."""
    return {"$ref": REF.format(model=name)}


def errors(*codes: int) -> dict[str, Any]:
    """Responses ``codes`` with the shared ``Error`` body."""
    return {str(code): {"description": "error",
                        "content": {"application/json": {"schema": ERROR}}} for code in codes}


def ok(schema: dict[str, Any], status: int = 200) -> dict[str, Any]:
    """The success response ``status`` with a JSON ``schema``."""
    return {str(status): {"description": "ok", "content": {"application/json": {
        "schema": schema}}}}


def body(name: str) -> dict[str, Any]:
    """A required JSON request body of component schema ``name``."""
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


def path_param(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A path parameter (a string unless ``schema`` says otherwise)."""
    return {"name": name, "in": "path", "required": True,
            "schema": schema or {"type": "string", "minLength": 1}}


def query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The query parameters of a query ``model`` (each optional, as the model's fields)."""
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required,
             "schema": _nullable_away(prop)} for name, prop in schema["properties"].items()]


def _nullable_away(prop: dict[str, Any]) -> dict[str, Any]:
    """A query value is never JSON ``null``: ``anyOf [X, null]`` becomes ``X``."""
    options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        rest = {k: v for k, v in prop.items() if k != "anyOf" and k != "default"}
        return {**rest, **options[0]}
    return {k: v for k, v in prop.items() if k != "default"} if "default" in prop and \
        prop["default"] is None else prop


def linked(responses: dict[str, Any], status: int, operation_id: str, parameter: str,
           field: str = "id") -> dict[str, Any]:
    """``responses`` with an OpenAPI link from response ``status`` to ``operation_id``, its
    ``parameter`` taken from the response body's ``field`` (SDKs and schemathesis follow it)."""
    answer = responses[str(status)]
    answer["links"] = {**answer.get("links", {}), operation_id: {
        "operationId": operation_id, "parameters": {parameter: f"$response.body#/{field}"}}}
    return responses
