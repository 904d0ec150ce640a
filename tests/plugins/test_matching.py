"""The matching marketplace plugin over a real server and real Socket.IO clients: loaded from its
entry point only with ``plugins_allow=["matching"]``; gigs posted in chat reach subscribers
(``gigs:match``), are listed by ``GET /api/v1/gigs``, subscriptions survive a restart, bad
payloads change nothing, and without the allow-list nothing of it exists."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from plugins.matching import plugin as matching
from realtime.app import HUB, PLUGIN_CTX, STORE
from realtime.contracts import build, files, socketio_contract
from realtime.errors import AppError
from realtime.plugins import PluginContext
from tests.helpers import REPO, LiveServer, make_settings, start_server
from tests.ops.test_openapi_paths import documented, fetch, served

GIG = "Gig: landing page for a bakery #python #React"


def settings(tmp_path: Path, allow: bool = True, **extra: Any) -> Any:
    """A test server's settings, the matching plugin allowed (or not); moderation off, as
    in the core tests (tests/moderation cover it with other plugins)."""
    return make_settings(tmp_path, message_rate_per_s=1000, message_burst=1000,
                         plugins_disable=["moderation"],  # tests/moderation covers it
                         plugins_allow=["matching"] if allow else [], **extra)


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """A live server with the matching plugin (and every built-in) on."""
    server = await start_server(settings(tmp_path))
    yield server
    await server.stop()


async def get(server: LiveServer, query: str = "", sub: str | None = "dana"
              ) -> tuple[int, Any]:
    """``GET /api/v1/gigs<query>`` as ``sub`` (None: no token)."""
    headers = server.headers(sub) if sub else {}
    async with aiohttp.ClientSession() as http, http.get(
            f"{server.url}/api/v1/gigs{query}", headers=headers) as response:
        return response.status, await response.json()


async def post(client: Any, text: str, channel: str = "gigs") -> dict[str, Any]:
    """Send ``text`` to ``channel``; the stored message."""
    sent: dict[str, Any] = await client.ok("message:send", {"channel": channel, "text": text})
    return sent


async def settle() -> None:
    """Give the post-store hooks (a task after the fan-out) time to run."""
    await asyncio.sleep(0.3)


async def test_a_gig_reaches_its_subscribers_on_every_socket_but_not_its_author(
        live: LiveServer) -> None:
    bob, bob_phone = await live.client("bob"), await live.client("bob")
    carol, alice = await live.client("carol"), await live.client("alice")
    assert await bob.ok("gigs:subscribe", {"skills": ["react", "python", "python"]}) == {
        "skills": ["python", "react"]}
    await carol.ok("gigs:subscribe", {"skills": ["rust"]})
    await alice.ok("gigs:subscribe", {"skills": ["python"]})
    await alice.ok("channel:join", {"channel": "gigs"})
    sent = await post(alice, GIG)
    for socket in (bob, bob_phone):
        match = await socket.wait_for("gigs:match")
        assert match["skills"] == ["python", "react"]
        gig = match["gig"]
        assert gig["message_id"] == sent["id"] and gig["seq"] == sent["seq"]
        assert gig["channel"] == "gigs" and gig["author"] == {"id": "alice", "name": "Alice"}
        assert gig["skills"] == ["python", "react"] and gig["title"] == GIG[5:]
        assert gig["created_at"] == sent["created_at"] and gig["id"]
    await settle()
    assert alice.events["gigs:match"] == [] and carol.events["gigs:match"] == []
    assert len(bob.events["gigs:match"]) == 1


async def test_messages_that_are_not_gigs_trigger_nothing(live: LiveServer) -> None:
    bob, alice = await live.client("bob"), await live.client("alice")
    await bob.ok("gigs:subscribe", {"skills": ["python"]})
    for text in ("hello #python", "Gig: no tags at all", "a Gig: #python later in the text"):
        await post(alice, text)
    await post(alice, "Gig: wrong channel #python", channel="general")
    root = await post(alice, "what about this?")
    await alice.ok("message:send", {"channel": "gigs", "text": "Gig: a reply #python",
                                    "thread_id": root["id"]})
    await settle()
    assert bob.events["gigs:match"] == []
    assert await get(live) == (200, {"gigs": []})


async def test_rest_lists_recent_gigs_and_filters_by_skill(live: LiveServer) -> None:
    alice = await live.client("alice")
    first = await post(alice, "Gig: API in FastAPI #python")
    second = await post(alice, "Gig: dashboard #react #typescript")
    third = await post(alice, "Gig: scraper #Python #c++")
    await settle()
    status, body = await get(live)
    assert status == 200
    assert [g["message_id"] for g in body["gigs"]] == [third["id"], second["id"], first["id"]]
    assert set(body["gigs"][0]) == {"id", "message_id", "channel", "seq", "author", "title",
                                    "skills", "created_at"}
    assert body["gigs"][0]["skills"] == ["python", "c++"]
    _, python = await get(live, "?skill=python")
    assert [g["message_id"] for g in python["gigs"]] == [third["id"], first["id"]]
    _, one = await get(live, "?skill=python&limit=1")
    assert [g["message_id"] for g in one["gigs"]] == [third["id"]]
    _, cpp = await get(live, "?skill=c%2B%2B")
    assert [g["message_id"] for g in cpp["gigs"]] == [third["id"]]
    assert (await get(live, "?skill=go"))[1] == {"gigs": []}
    await alice.ok("message:delete", {"id": first["id"]})  # a deleted message is no gig
    _, python = await get(live, "?skill=python")
    assert [g["message_id"] for g in python["gigs"]] == [third["id"]]


async def test_rest_refusals_use_the_shared_error_shape(live: LiveServer) -> None:
    status, body = await get(live, sub=None)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    for query, code, wanted in (("?skill=Py%20thon", 400, "invalid"),
                                ("?limit=0", 400, "invalid"), ("?limit=many", 400, "invalid"),
                                ("?other=1", 400, "invalid"),
                                ("?skill=" + "x" * 33, 413, "too_large")):
        status, body = await get(live, query)
        assert (status, body["error"]["code"]) == (code, wanted), query
        assert set(body["error"]) >= {"code", "message"}


@pytest.mark.parametrize("payload, code", [
    ({"skills": "python"}, "invalid"),
    ({"skills": ["Python"]}, "invalid"),
    ({"skills": ["py thon"]}, "invalid"),
    ({"skills": [""]}, "invalid"),
    ({"skills": [7]}, "invalid"),
    ({"skills": ["python"], "extra": 1}, "invalid"),
    ({}, "invalid"),
    (["python"], "invalid"),
    ({"skills": ["x" * 33]}, "too_large"),
    ({"skills": [f"s{i}" for i in range(21)]}, "too_large"),
])
async def test_bad_subscriptions_are_refused_and_change_nothing(
        live: LiveServer, payload: Any, code: str) -> None:
    bob = await live.client("bob")
    await bob.ok("gigs:subscribe", {"skills": ["python"]})
    ack = await bob.call("gigs:subscribe", payload)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert await bob.ok("gigs:subscription", {}) == {"skills": ["python"]}


async def test_twenty_skills_are_allowed_and_an_empty_list_unsubscribes(
        live: LiveServer) -> None:
    bob, alice = await live.client("bob"), await live.client("alice")
    skills = sorted(f"s{i}" for i in range(20))
    assert await bob.ok("gigs:subscribe", {"skills": skills}) == {"skills": skills}
    assert await bob.ok("gigs:subscribe", {"skills": []}) == {"skills": []}
    await post(alice, "Gig: anything #s1")
    await settle()
    assert bob.events["gigs:match"] == []


async def test_subscriptions_survive_a_restart(tmp_path: Path) -> None:
    first = await start_server(settings(tmp_path))
    try:
        bob = await first.client("bob")
        await bob.ok("gigs:subscribe", {"skills": ["python", "sql"]})
    finally:
        await first.stop()
    second = await start_server(settings(tmp_path))
    try:
        bob, alice = await second.client("bob"), await second.client("alice")
        assert await bob.ok("gigs:subscription", {}) == {"skills": ["python", "sql"]}
        await post(alice, "Gig: reporting #sql")
        match = await bob.wait_for("gigs:match")
        assert match["skills"] == ["sql"] and match["gig"]["title"] == "reporting #sql"
    finally:
        await second.stop()


async def test_a_gig_recorded_once_even_if_the_hook_runs_again(live: LiveServer) -> None:
    bob, alice = await live.client("bob"), await live.client("alice")
    await bob.ok("gigs:subscribe", {"skills": ["python"]})
    sent = await post(alice, "Gig: once #python")
    await bob.wait_for("gigs:match")
    await matching.gigvora_message_stored(live.app[PLUGIN_CTX], sent)  # again: recorded already
    await settle()
    assert len(bob.events["gigs:match"]) == 1
    assert len((await get(live))[1]["gigs"]) == 1


async def test_not_allowed_the_plugin_does_nothing(tmp_path: Path) -> None:
    server = await start_server(settings(tmp_path, allow=False))
    try:
        bob, alice = await server.client("bob"), await server.client("alice")
        for event in ("gigs:subscribe", "gigs:subscription"):
            ack = await bob.call(event, {"skills": ["python"]})
            assert ack["ok"] is False and ack["error"]["code"] == "not_found"
        status, body = await get(server)
        assert status == 404 and body["error"]["code"] == "not_found"
        assert "matching" not in server.app[PLUGIN_CTX].extra
        ack = await alice.call("message:send", {"channel": "gigs", "text": "Gig: x #python"})
        assert ack["error"]["code"] == "not_found"  # no gig channel either
        await post(alice, "Gig: in general #python", channel="general")
        await settle()
        rows = await server.app[STORE].run_read(  # type: ignore[attr-defined]
            lambda conn: conn.execute("SELECT (SELECT count(*) FROM gigs) + "
                                      "(SELECT count(*) FROM gig_subscriptions)").fetchone())
        assert rows == (0,) and bob.events["gigs:match"] == []
        doc = await fetch(server.url)
        assert "/api/v1/gigs" not in doc["paths"] and "GigList" not in doc["components"]["schemas"]
        assert not any(e.startswith("gigs:") for ns in socketio_contract(
            server.app[HUB])["namespaces"].values() for d in ns.values() for e in d)
    finally:
        await server.stop()


async def test_allowed_its_route_is_documented_and_its_events_are_in_the_contract(
        live: LiveServer) -> None:
    doc = await fetch(live.url)
    assert documented(doc) == served(live.app)
    op = doc["paths"]["/api/v1/gigs"]["get"]
    assert op["security"] == [{"bearer": []}] and {"200", "400", "401"} <= set(op["responses"])
    assert {"Gig", "GigList", "GigAuthor"} <= doc["components"]["schemas"].keys()
    root = socketio_contract(live.app[HUB])["namespaces"]["/"]
    subscribe = root["client_to_server"]["gigs:subscribe"]
    assert subscribe["rate_limited"] is True
    assert subscribe["payload"]["properties"]["skills"]["maxItems"] == 20
    assert "gigs:subscription" in root["client_to_server"]
    match = root["server_to_client"]["gigs:match"]["payload"]
    assert set(match["required"]) == {"gig", "skills"}


async def test_contracts_export_with_the_plugin_allowed_has_its_events() -> None:
    contract = await build(("matching",))
    root = contract["socketio"]["namespaces"]["/"]
    assert {"gigs:subscribe", "gigs:subscription"} <= root["client_to_server"].keys()
    assert "gigs:match" in root["server_to_client"]
    assert "/api/v1/gigs" in contract["openapi"]["paths"]
    written = files(contract)
    assert "schemas/root/server_to_client/gigs.match.json" in written
    committed = json.loads((REPO / "docs/contracts/socketio.json").read_text())
    events = {e for ns in committed["namespaces"].values() for d in ns.values() for e in d}
    assert not any(e.startswith("gigs:") for e in events)  # docs/contracts: built-ins only
    assert "/api/v1/gigs" not in json.loads((REPO / "docs/contracts/openapi.json").read_text())[
        "paths"]


async def test_on_a_store_without_run_write_it_stays_off_and_says_so() -> None:
    registered: dict[str, Any] = {}
    ctx = PluginContext(settings=make_settings(Path("/nonexistent")), log=logging.getLogger(),
                        metrics=None, store=object(), authenticate=lambda r: None,
                        emit=lambda *a, **k: None,
                        add_event=lambda ns, name, handler, *a, **k: registered.update(
                            {name: handler}))
    await matching.gigvora_startup(ctx)
    assert set(registered) == {"gigs:subscribe", "gigs:subscription"}
    with pytest.raises(AppError) as refused:
        await registered["gigs:subscription"]("sid", None, None)
    assert refused.value.code == "unavailable" and refused.value.details == {
        "reason": "matching_off"}
    [check] = matching.gigvora_health_checks(ctx)
    assert await check.probe() == {"status": "warn", "gvCode": "MATCHING_OFF"}
    await matching.gigvora_message_stored(ctx, {"channel": "gigs", "text": "Gig: #python"})
