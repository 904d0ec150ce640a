"""A naive python-socketio server with the same event contract as ``server.js``: the floor.

It is the obvious way to write the server with python-socketio (aiohttp + uvloop + orjson, in
memory, ``sio.emit(..., room=channel)`` per message) and shows what Gigvora's fast path has to
beat. Used by ``fanout.py --targets node,naive,gigvora``. Usage::

    python benchmarks/reference/naive_socketio.py [PORT]     (or env PORT; HOST 127.0.0.1)

Needs python-socketio, aiohttp, uvloop and orjson (all Gigvora dependencies).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import sys
import uuid
from typing import Any

import orjson
import socketio
import uvloop
from aiohttp import web

MAX_TEXT_CHARS = 4000


class OrjsonShim:
    """The ``json`` interface python-socketio expects, backed by orjson."""

    @staticmethod
    def dumps(obj: Any, **_kw: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(data: str | bytes, **_kw: Any) -> Any:
        return orjson.loads(data)


def identity(token: object, fallback: str) -> dict[str, str]:
    """Unverified ``sub``/``name`` of a JWT-looking token, else the socket id."""
    if isinstance(token, str) and token.count(".") == 2:
        try:
            part = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            if isinstance(claims.get("sub"), str):
                return {"id": claims["sub"], "name": str(claims.get("name", claims["sub"]))}
        except (ValueError, AttributeError):
            pass
    return {"id": fallback, "name": fallback}


def invalid(message: str) -> dict[str, Any]:
    """The ack of a malformed payload."""
    return {"ok": False, "error": {"code": "invalid", "message": message}}


def build_server() -> web.Application:
    """The aiohttp application with the Socket.IO server attached."""
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        transports=["websocket"],
        json=OrjsonShim,
        cors_allowed_origins="*",
        max_http_buffer_size=64 * 1024,
    )
    users: dict[str, dict[str, str]] = {}
    seqs: dict[str, int] = {}
    by_client_id: dict[tuple[str, str], dict[str, Any]] = {}

    @sio.event
    async def connect(sid: str, _environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        users[sid] = identity(token, sid)

    @sio.event
    async def disconnect(sid: str, *_args: Any) -> None:
        users.pop(sid, None)

    @sio.on("channel:join")
    async def join(sid: str, data: Any = None) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("channel"), str):
            return invalid("channel is required")
        await sio.enter_room(sid, data["channel"])
        channel = data["channel"]
        return {
            "ok": True,
            "data": {
                "channel": channel,
                "last_seq": seqs.get(channel, 0),
                "messages": [],
                "has_more": False,
            },
        }

    @sio.on("message:send")
    async def send(sid: str, data: Any = None) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("channel"), str):
            return invalid("channel is required")
        text = data.get("text")
        if not isinstance(text, str) or not text:
            return invalid("text is required")
        if len(text) > MAX_TEXT_CHARS:
            return {"ok": False, "error": {"code": "too_large", "message": "text too long"}}
        author = users[sid]
        client_id = data.get("client_id") if isinstance(data.get("client_id"), str) else None
        key = (author["id"], client_id) if client_id is not None else None
        if key is not None and key in by_client_id:
            return {"ok": True, "data": by_client_id[key]}
        channel = data["channel"]
        seqs[channel] = seq = seqs.get(channel, 0) + 1
        message = {
            "id": str(uuid.uuid4()),
            "channel": channel,
            "seq": seq,
            "author": author,
            "text": text,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "client_id": client_id,
            "deleted": False,
            "reactions": {},
        }
        if key is not None:
            by_client_id[key] = message
        await sio.emit("message:new", message, room=channel)
        return {"ok": True, "data": message}

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "pass"})

    app = web.Application()
    sio.attach(app)
    app.router.add_get("/healthz", healthz)
    return app


if __name__ == "__main__":
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8091"))
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(build_server(), host=os.environ.get("HOST", "127.0.0.1"), port=port, print=None)
