"""The matching plugin's part of the OpenAPI document (hook ``gigvora_openapi``), built from
the models ``plugins/matching/plugin.py``'s view validates with and answers."""

from __future__ import annotations

from typing import Any

from plugins.matching.models import GigList, GigQuery
from realtime.openapi_parts import BEARER, errors, model_schemas, ok, query_params, ref

PATH = "/api/v1/gigs"


def openapi_part() -> dict[str, Any]:
    """``{"paths", "schemas"}`` of ``GET /api/v1/gigs``."""
    return {"paths": {PATH: {"get": {
        "summary": "Recent gigs posted in chat, newest first",
        "description": "Any signed-in user (gigs of channels the caller may read). A gig is a "
                       "message of the gig channel starting with `Gig:` and carrying `#skill` "
                       "tags. `skill` (lower case, `[a-z0-9+#.-]`, 1-32) keeps gigs tagged "
                       "with it; `limit` 1-100 (default 20). 503 `unavailable` while starting "
                       "or on a store the plugin cannot use. Only with "
                       "`GIGVORA_PLUGINS_ALLOW=matching`.",
        "operationId": "listGigs", "tags": ["gigs"], "security": BEARER,
        "parameters": query_params(GigQuery),
        "responses": {**ok(ref("GigList")), **errors(400, 401, 413, 503)}}}},
        "schemas": model_schemas(GigList)}
