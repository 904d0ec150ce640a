"""REST views: parse and authorise, then call the chat service the core hands to plugins."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.openapi import openapi_document
from api.secrets import secret_routes
from realtime.chat_models import ChannelCreate, ChannelUpdate
from realtime.errors import AppError
from realtime.hookspecs import hookimpl
from realtime.ops_http import json_response, parse, read_json

#: the largest seq the store can hold (SQLite's signed 64-bit INTEGER)
MAX_SEQ = 2**63 - 1


class HistoryQuery(BaseModel):
    """Query of ``GET /api/v1/channels/{channel}/messages``."""

    model_config = ConfigDict(extra="forbid")
    before_seq: int | None = Field(None, ge=0, le=MAX_SEQ)
    after_seq: int | None = Field(None, ge=0, le=MAX_SEQ)
    limit: int = Field(50, ge=1, le=500)
    thread_id: str | None = Field(None, min_length=1, max_length=64)


class ApiViews:
    """The channel and history endpoints."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._document: dict[str, Any] | None = None

    @property
    def chat(self) -> Any:
        """The chat service (available once the server booted)."""
        chat = self.ctx.extra.get("chat")
        if chat is None:
            raise AppError("unavailable", "server is starting")
        return chat

    async def list_channels(self, request: web.Request) -> web.Response:
        """``GET /api/v1/channels``."""
        who = self.ctx.authenticate(request)
        return json_response({"channels": await self.chat.visible_channels(who)})

    async def create_channel(self, request: web.Request) -> web.Response:
        """``POST /api/v1/channels`` (admin)."""
        who = self.ctx.authenticate(request)
        if "admin" not in who.roles:
            raise AppError("forbidden", "creating channels needs the admin role")
        body = parse(ChannelCreate, await read_json(request))
        channel = await self.chat.create_channel(body)
        return json_response(channel.public(), status=201)

    async def update_channel(self, request: web.Request) -> web.Response:
        """``PATCH /api/v1/channels/{channel}`` (admin): the channel's category."""
        who = self.ctx.authenticate(request)
        if "admin" not in who.roles:
            raise AppError("forbidden", "changing channels needs the admin role")
        body = parse(ChannelUpdate, await read_json(request))
        channel = await self.chat.set_category(request.match_info["channel"], body.category)
        return json_response(channel.public())

    async def history(self, request: web.Request) -> web.Response:
        """``GET /api/v1/channels/{channel}/messages``."""
        who = self.ctx.authenticate(request)
        query = parse(HistoryQuery, dict(request.query))
        channel = await self.chat.readable(request.match_info["channel"], who)
        messages, has_more = await self.chat.history(
            channel, before_seq=query.before_seq, after_seq=query.after_seq, limit=query.limit,
            thread_id=query.thread_id)
        return json_response({"messages": [m.public() for m in messages], "has_more": has_more})

    async def openapi(self, request: web.Request) -> web.Response:
        """``GET /api/v1/openapi.json`` (built once: plugins are fixed after boot)."""
        if self._document is None:
            self._document = openapi_document(self.ctx.openapi_parts)
        return json_response(self._document)


@hookimpl
def gigvora_http_routes(ctx: Any) -> list[web.RouteDef]:
    """The REST API's routes."""
    views = ApiViews(ctx)
    return [web.get("/api/v1/channels", views.list_channels),
            web.post("/api/v1/channels", views.create_channel),
            web.patch("/api/v1/channels/{channel}", views.update_channel),
            web.get("/api/v1/channels/{channel}/messages", views.history),
            web.get("/api/v1/openapi.json", views.openapi), *secret_routes(ctx)]
