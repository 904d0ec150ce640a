"""REST for the secrets Gigvora issues: API keys for bots (admin creates, lists, revokes; a bot
trades its key for a short-lived access token) and one-time codes (admin issues, members redeem).

Keys and codes are shown once, in the creating response, and stored only as argon2 hashes
(``storage/secrets.py``). These endpoints need the embedded store.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from realtime.chat_models import Label
from realtime.config import resolve_jwt_secret
from realtime.errors import AppError
from realtime.identity import TokenService
from realtime.ops_http import json_response, parse, read_json
from storage.base import Conflict, NotFound
from storage.secrets import SecretRecords

#: lifetime of the access token a bot gets for its API key
API_TOKEN_TTL_S = 900
API_KEY_HEADER = "X-Api-Key"

#: printable, no space at either end (stripping would accept "\t" by the schema, then refuse it)
Name = Label
#: no whitespace, spelled out: ``\S`` differs between Python, Rust (pydantic) and hypothesis
#: (schemathesis) for U+001C-U+001F and U+0085
NO_SPACE = (r"^[^\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029"
            r"\u202f\u205f\u3000]+$")
Subject = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NO_SPACE)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=128)]
#: a bot's key never carries the admin role: admins act as themselves
KeyRole = Literal["member", "agent", "moderator", "operator"]
Purpose = Literal["room_pin", "invite"]
#: strict, but JSON's ``419.0`` is the integer 419 (as JSON Schema says)
WholeNumber = Annotated[int, BeforeValidator(
    lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)]


class ApiKeyCreate(BaseModel):
    """Body of ``POST /api/v1/admin/api-keys``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name
    roles: list[KeyRole] = Field(default_factory=lambda: ["member"], min_length=1,  # type: ignore[arg-type]
                                  max_length=4)


class CodeIssue(BaseModel):
    """Body of ``POST /api/v1/admin/codes``: a PIN for a room, a token for an invite."""

    model_config = ConfigDict(extra="forbid", strict=True)
    purpose: Purpose
    subject: Subject
    ttl_s: WholeNumber = Field(3600, ge=60, le=30 * 86_400)


class CodeRedeem(BaseModel):
    """Body of ``POST /api/v1/codes/redeem``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    purpose: Purpose
    subject: Subject
    code: Code


class SecretViews:
    """API key and one-time code endpoints."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._tokens: TokenService | None = None

    @property
    def records(self) -> SecretRecords:
        """The records (the embedded store only)."""
        if not hasattr(self.ctx.store, "run_write"):
            raise AppError("unavailable", "API keys and one-time codes need the embedded store")
        return SecretRecords(self.ctx.store)

    def admin(self, request: web.Request) -> Any:
        """The caller, who must be an admin."""
        who = self.ctx.authenticate(request)
        if "admin" not in who.roles:
            raise AppError("forbidden", "this endpoint needs the admin role")
        return who

    async def create_key(self, request: web.Request) -> web.Response:
        """``POST /api/v1/admin/api-keys``: the key is in this response and nowhere else."""
        who = self.admin(request)
        body = parse(ApiKeyCreate, await read_json(request))
        record, key = await self.records.create_key(body.name, body.roles, who.sub)
        await self.ctx.audit(who.sub, "api_key.create", "api_key", record["id"],
                             details={"name": record["name"], "roles": record["roles"]})
        return json_response({"api_key": record, "key": key}, status=201)

    async def list_keys(self, request: web.Request) -> web.Response:
        """``GET /api/v1/admin/api-keys``: public records, never a key or hash."""
        self.admin(request)
        return json_response({"api_keys": await self.records.keys()})

    async def revoke_key(self, request: web.Request) -> web.Response:
        """``DELETE /api/v1/admin/api-keys/{key_id}``."""
        who = self.admin(request)
        try:
            record = await self.records.revoke_key(request.match_info["key_id"], who.sub)
        except NotFound:
            raise AppError("not_found", "no such API key") from None
        await self.ctx.audit(who.sub, "api_key.revoke", "api_key", record["id"])
        return json_response({"api_key": record})

    async def token(self, request: web.Request) -> web.Response:
        """``POST /api/v1/auth/api-key``: a valid key (``X-Api-Key``) buys an access token."""
        key = request.headers.get(API_KEY_HEADER, "")
        record = await self.records.verify_key(key) if key else None
        if record is None:
            raise AppError("unauthorized", "a valid, unrevoked API key is required")
        if self._tokens is None:
            self._tokens = TokenService(resolve_jwt_secret(self.ctx.settings))
        token = self._tokens.mint(f"apikey:{record['id']}", record["name"], record["roles"],
                                  ttl=API_TOKEN_TTL_S)
        return json_response({"access_token": token, "token_type": "bearer",
                              "expires_in": API_TOKEN_TTL_S})

    async def issue_code(self, request: web.Request) -> web.Response:
        """``POST /api/v1/admin/codes``: the code is in this response and nowhere else."""
        who = self.admin(request)
        body = parse(CodeIssue, await read_json(request))
        try:
            record, code = await self.records.issue_code(
                body.purpose, body.subject, who.sub, body.ttl_s,
                kind="pin" if body.purpose == "room_pin" else "token")
        except Conflict as error:
            raise AppError("conflict", str(error)) from None
        return json_response({**record, "code": code}, status=201)

    async def redeem_code(self, request: web.Request) -> web.Response:
        """``POST /api/v1/codes/redeem`` (any signed-in user): once per code."""
        who = self.ctx.authenticate(request)
        body = parse(CodeRedeem, await read_json(request))
        used = await self.records.redeem_code(body.purpose, body.subject, body.code, who.sub)
        if used is None:
            raise AppError("forbidden", "the code is wrong, expired, used or locked")
        return json_response(used)


def secret_routes(ctx: Any) -> list[web.RouteDef]:
    """The routes of this module."""
    views = SecretViews(ctx)
    return [web.post("/api/v1/admin/api-keys", views.create_key),
            web.get("/api/v1/admin/api-keys", views.list_keys),
            web.delete("/api/v1/admin/api-keys/{key_id}", views.revoke_key),
            web.post("/api/v1/auth/api-key", views.token),
            web.post("/api/v1/admin/codes", views.issue_code),
            web.post("/api/v1/codes/redeem", views.redeem_code)]
