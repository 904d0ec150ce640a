"""HTTP: health, readiness, metrics, channels, OpenAPI, correlation ids, the error shape."""

from __future__ import annotations

import aiohttp

from tests.helpers import LiveServer


async def test_healthz_and_readyz(server: LiveServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/healthz") as r:
            assert r.status == 200 and await r.json() == {"status": "pass"}
        async with http.get(server.url + "/readyz") as r:
            assert r.status == 200 and await r.json() == {"status": "pass"}
        async with http.get(server.url + "/readyz", headers=server.headers("al")) as r:
            assert await r.json() == {"status": "pass"}  # members get no detail
        async with http.get(server.url + "/readyz",
                            headers=server.headers("ops", "operator")) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("application/health+json")
            detail = await r.json(content_type=None)
    assert detail["status"] == "pass"
    assert {"lifecycle:state", "store:roundtrip", "fanout:outbound", "eventloop:lag"} <= set(
        detail["checks"])
    assert detail["checks"]["store:roundtrip"][0]["writeQueueDepth"] == 0


async def test_metrics_need_operator(server: LiveServer) -> None:
    alice = await server.client("alice")
    await alice.ok("message:send", {"channel": "general", "text": "count me"})
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/metrics") as r:
            assert r.status == 401
        async with http.get(server.url + "/metrics", headers=server.headers()) as r:
            assert r.status == 403
        async with http.get(server.url + "/metrics",
                            headers=server.headers("ops", "operator")) as r:
            text = await r.text()
    assert 'gigvora_events_total{event="message:send",outcome="ok"} 1.0' in text
    assert "gigvora_store_commit_seconds_bucket" in text
    assert 'gigvora_connections{namespace="/"} 1.0' in text
    assert "gigvora_fanout_deliveries_total" in text


async def test_channels_list_create_and_conflict(server: LiveServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/api/v1/channels", headers=server.headers()) as r:
            ids = [c["id"] for c in (await r.json())["channels"]]
        assert ids == ["announcements", "general", "help"]
        admin = server.headers("root", "admin")
        body = {"id": "jobs", "name": "Jobs", "kind": "announcement"}
        async with http.post(server.url + "/api/v1/channels", json=body, headers=admin) as r:
            assert r.status == 201 and (await r.json())["kind"] == "announcement"
        async with http.post(server.url + "/api/v1/channels", json=body, headers=admin) as r:
            assert r.status == 409 and (await r.json())["error"]["code"] == "conflict"
        for bad in ({"id": "x", "kind": "secret"}, {"id": "UPPER"}, {"id": "a", "extra": 1},
                    {"id": "a", "read_roles": ["king"]}, [1]):
            async with http.post(server.url + "/api/v1/channels", json=bad,
                                 headers=admin) as r:
                assert r.status == 400, bad
        async with http.post(server.url + "/api/v1/channels", data=b"\xff\xfe",
                             headers=admin) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid"


async def test_request_ids_echoed_and_generated(server: LiveServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/healthz", headers={"X-Request-ID": "abc-123"}) as r:
            assert r.headers["X-Request-ID"] == "abc-123"
        async with http.get(server.url + "/healthz", headers={"X-Request-ID": "<bad id>"}) as r:
            assert r.headers["X-Request-ID"] != "<bad id>" and len(r.headers["X-Request-ID"]) == 32
        async with http.get(server.url + "/nowhere") as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


async def test_openapi_document(server: LiveServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/api/v1/openapi.json") as r:
            doc = await r.json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/v1/channels", "/api/v1/channels/{channel}/messages", "/healthz",
            "/readyz", "/metrics"} <= set(doc["paths"])


async def test_channel_categories(server: LiveServer) -> None:
    admin = server.headers("root", "admin")
    url = server.url + "/api/v1/channels"
    async with aiohttp.ClientSession() as http:
        body = {"id": "gigs", "name": "Gigs", "category": "Work"}
        async with http.post(url, json=body, headers=admin) as r:
            assert r.status == 201 and (await r.json())["category"] == "Work"
        async with http.patch(url + "/help", json={"category": "Support"}, headers=admin) as r:
            assert r.status == 200 and (await r.json())["category"] == "Support"
        async with http.get(url, headers=server.headers()) as r:
            listed = {c["id"]: c["category"] for c in (await r.json())["channels"]}
        assert listed == {"announcements": None, "general": None, "gigs": "Work",
                          "help": "Support"}
        async with http.patch(url + "/help", json={"category": None}, headers=admin) as r:
            assert r.status == 200 and (await r.json())["category"] is None
        async with http.patch(url + "/help", json={"category": "Nope"},
                              headers=server.headers()) as r:
            assert r.status == 403
        async with http.patch(url + "/missing", json={"category": "X"}, headers=admin) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
        for bad in ({}, {"category": ""}, {"category": " Work"}, {"category": "a\nb"},
                    {"category": "x" * 65}, {"category": 3}, {"category": "W", "name": "n"}):
            async with http.patch(url + "/gigs", json=bad, headers=admin) as r:
                assert r.status == (413 if bad.get("category") == "x" * 65 else 400), bad
        async with http.get(url, headers=server.headers()) as r:
            listed = {c["id"]: c["category"] for c in (await r.json())["channels"]}
        assert listed["gigs"] == "Work" and listed["help"] is None  # refusals changed nothing
    member = await server.client("ada")
    channels = (await member.ok("channel:list", {}))["channels"]
    assert {c["id"]: c["category"] for c in channels}["gigs"] == "Work"
