"""Recovery after a reconnect: ``since_seq`` returns exactly the messages missed."""

from __future__ import annotations

import aiohttp

from tests.helpers import LiveServer, make_settings, start_server


async def test_rejoin_with_since_seq_gets_exactly_the_missed(server: LiveServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await bob.ok("channel:join", {"channel": "general"})
    for i in range(3):
        await alice.ok("message:send", {"channel": "general", "text": f"before {i}"})
    await bob.wait_for("message:new", lambda m: m["seq"] == 3)
    last_seen = max(m["seq"] for m in bob.events["message:new"])
    await bob.close()
    for i in range(5):
        await alice.ok("message:send", {"channel": "general", "text": f"missed {i}"})
    bob2 = await server.client("bob")
    rejoined = await bob2.ok("channel:join", {"channel": "general", "since_seq": last_seen})
    assert [m["seq"] for m in rejoined["messages"]] == [4, 5, 6, 7, 8]
    assert [m["text"] for m in rejoined["messages"]] == [f"missed {i}" for i in range(5)]
    assert rejoined["last_seq"] == 8 and rejoined["has_more"] is False
    await alice.ok("message:send", {"channel": "general", "text": "live again"})
    await bob2.wait_for("message:new", lambda m: m["seq"] == 9)


async def test_recovery_pages_through_history_when_far_behind(tmp_path) -> None:
    live = await start_server(make_settings(tmp_path, message_rate_per_s=0, history_limit=10))
    try:
        alice = await live.client("alice")
        for i in range(25):
            await alice.ok("message:send", {"channel": "help", "text": f"m{i}"})
        bob = await live.client("bob")
        page = await bob.ok("channel:join", {"channel": "help", "since_seq": 2})
        assert [m["seq"] for m in page["messages"]] == list(range(3, 13))
        assert page["has_more"] is True and page["last_seq"] == 25
        seen = [m["seq"] for m in page["messages"]]
        async with aiohttp.ClientSession() as http:
            while True:
                async with http.get(f"{live.url}/api/v1/channels/help/messages",
                                    params={"after_seq": seen[-1], "limit": 10},
                                    headers=live.headers("bob")) as r:
                    body = await r.json()
                seen += [m["seq"] for m in body["messages"]]
                if not body["has_more"]:
                    break
        assert seen == list(range(3, 26))
        latest = await bob.ok("channel:join", {"channel": "help"})
        assert [m["seq"] for m in latest["messages"]] == list(range(16, 26))
        assert latest["has_more"] is True
    finally:
        await live.stop()


async def test_history_endpoint_orders_and_pages_backwards(server: LiveServer) -> None:
    alice = await server.client("alice")
    for i in range(7):
        await alice.ok("message:send", {"channel": "general", "text": f"m{i}"})
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/v1/channels/general/messages"
        async with http.get(url, params={"limit": 3}, headers=server.headers()) as r:
            assert [m["seq"] for m in (await r.json())["messages"]] == [5, 6, 7]
        async with http.get(url, params={"before_seq": 5, "limit": 3},
                            headers=server.headers()) as r:
            assert [m["seq"] for m in (await r.json())["messages"]] == [2, 3, 4]
        async with http.get(url, params={"limit": "lots"}, headers=server.headers()) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid"
        async with http.get(url) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
        async with http.get(f"{server.url}/api/v1/channels/nope/messages",
                            headers=server.headers()) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
