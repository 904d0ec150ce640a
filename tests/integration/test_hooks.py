"""The hook API: plugins transform, veto, fail closed, contribute routes/workers/checks."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from realtime import hookspecs
from realtime.health import HealthCheck
from realtime.hookspecs import hookimpl
from realtime.plugins import Verdict
from tests.helpers import REPO, make_settings, start_server


class ShoutyPlugin:
    """Upper-cases 'shout:' messages, blocks 'forbidden', holds 'later', crashes on 'boom'."""

    def __init__(self) -> None:
        self.stored: list[dict[str, Any]] = []
        self.joined: list[str] = []
        self.worker_runs = 0

    @hookimpl
    async def gigvora_message_pre_store(self, draft: dict[str, Any], user: dict[str, Any]
                                        ) -> Verdict | None:
        text = draft["text"]
        if text == "boom":
            raise RuntimeError("plugin bug")
        if text == "slow":
            await asyncio.sleep(5)
        if text == "forbidden":
            return Verdict("block", reason="not here")
        if text == "later":
            return Verdict("hold", reason="needs review", data={"hold_id": "h1"})
        if text.startswith("shout:"):
            return Verdict("transform", text=text.upper())
        return None

    @hookimpl
    def gigvora_message_stored(self, message: dict[str, Any]) -> None:
        self.stored.append(message)

    @hookimpl
    def gigvora_channel_join(self, user: dict[str, Any], channel: str) -> None:
        if channel == "help":
            raise ValueError("a failing notify hook")
        self.joined.append(channel)

    @hookimpl
    def gigvora_http_routes(self, ctx: Any) -> list[web.RouteDef]:
        async def hello(request: web.Request) -> web.Response:
            who = ctx.authenticate(request)
            return web.json_response({"hello": who.sub})
        return [web.get("/plugin/hello", hello)]

    @hookimpl
    def gigvora_background_workers(self) -> list[Any]:
        async def work() -> None:
            while True:
                self.worker_runs += 1
                await asyncio.sleep(0.01)
        return [work]

    @hookimpl
    def gigvora_health_checks(self) -> list[HealthCheck]:
        async def probe() -> dict[str, Any]:
            return {"status": "warn", "gvCode": "SHOUTY_TIRED", "observedValue": 1}
        return [HealthCheck("shouty:mood", "component", probe, critical=False)]


async def test_plugin_hooks_end_to_end(tmp_path: Path) -> None:
    plugin = ShoutyPlugin()
    live = await start_server(make_settings(tmp_path, hook_timeout_s=0.3), plugins=[plugin])
    try:
        alice = await live.client("alice")
        await alice.ok("channel:join", {"channel": "general"})
        sent = await alice.ok("message:send", {"channel": "general", "text": "shout: hi"})
        assert sent["text"] == "SHOUT: HI"
        blocked = await alice.call("message:send", {"channel": "general", "text": "forbidden"})
        assert blocked["error"] == {"code": "moderation_blocked", "message": "not here"}
        held = await alice.ok("message:send", {"channel": "general", "text": "later"})
        assert held == {"status": "held", "reason": "needs review", "hold_id": "h1"}
        for text in ("boom", "slow"):
            ack = await alice.call("message:send", {"channel": "general", "text": text})
            assert ack["error"]["code"] == "unavailable", ack
        history = await alice.ok("channel:join", {"channel": "general"})
        assert [m["text"] for m in history["messages"]] == ["SHOUT: HI"]
        await alice.ok("channel:join", {"channel": "help"})  # its hook raises: contained
        ok = await alice.ok("message:send", {"channel": "general", "text": "still fine"})
        assert ok["seq"] == 2
        await asyncio.sleep(0.05)
        assert [m["text"] for m in plugin.stored] == ["SHOUT: HI", "still fine"]
        assert plugin.joined == ["general", "general"] and plugin.worker_runs > 0
        async with aiohttp.ClientSession() as http:
            async with http.get(live.url + "/plugin/hello", headers=live.headers("zed")) as r:
                assert await r.json() == {"hello": "zed"}
            async with http.get(live.url + "/readyz",
                                headers=live.headers("ops", "operator")) as r:
                detail = await r.json(content_type=None)
            async with http.get(live.url + "/metrics",
                                headers=live.headers("ops", "operator")) as r:
                metrics = await r.text()
        assert r.status == 200 and detail["status"] == "warn"
        assert detail["checks"]["shouty:mood"][0]["gvCode"] == "SHOUTY_TIRED"
        assert 'hook="gigvora_message_pre_store",kind="error"' in metrics
        assert 'hook="gigvora_message_pre_store",kind="timeout"' in metrics
        assert 'hook="gigvora_channel_join",kind="error"' in metrics
    finally:
        await live.stop()


async def test_builtin_api_plugin_can_be_switched_off(tmp_path: Path) -> None:
    live = await start_server(make_settings(tmp_path, plugins_disable=["api"]))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(live.url + "/api/v1/channels", headers=live.headers()) as r:
                assert r.status == 404
            async with http.get(live.url + "/healthz") as r:
                assert r.status == 200
        alice = await live.client("alice")
        await alice.ok("message:send", {"channel": "general", "text": "chat still works"})
    finally:
        await live.stop()


def test_every_hook_is_documented() -> None:
    docs = (REPO / "docs" / "plugins.md").read_text()
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if name.startswith("gigvora_")]
    assert len(hooks) >= 12
    for name in hooks:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Args" in doc and "Returns" in doc and "veto" in doc, name
        assert f"`{name}`" in docs, f"{name} missing from docs/plugins.md"
