"""Bad input gets its error code, the connection stays usable and nothing is half-stored."""

from __future__ import annotations

import time

import jwt
import pytest
import socketio

from tests.helpers import SECRET, LiveServer, mint

BAD_PAYLOADS = [
    ({}, "invalid"),
    ({"channel": "general"}, "invalid"),
    ({"channel": "general", "text": 5}, "invalid"),
    ({"channel": "general", "text": "x", "extra": 1}, "invalid"),
    ({"channel": ["general"], "text": "x"}, "invalid"),
    ({"channel": "general", "text": "   "}, "invalid"),
    ({"channel": "Bad Channel!", "text": "x"}, "invalid"),
    ({"channel": "general", "text": "x", "client_id": ""}, "invalid"),
    ({"channel": "general", "text": "x", "thread_id": 7}, "invalid"),
    ({"channel": "nope", "text": "x"}, "not_found"),
    ({"channel": "general", "text": "x" * 4001}, "too_large"),
    ({"channel": "general", "text": "x" * 65_000}, "too_large"),
    ({"channel": "general", "text": "x", "client_id": "c" * 129}, "too_large"),
]


@pytest.mark.parametrize(("payload", "code"), BAD_PAYLOADS)
async def test_bad_message_payloads(server: LiveServer, payload: dict, code: str) -> None:
    alice = await server.client("alice")
    ack = await alice.call("message:send", payload)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert ack["error"]["message"]
    history = await alice.ok("channel:join", {"channel": "general"})
    assert history["messages"] == [] and history["last_seq"] == 0
    assert (await alice.ok("message:send", {"channel": "general", "text": "fine"}))["seq"] == 1


async def test_no_payload_and_wrong_shapes(server: LiveServer) -> None:
    alice = await server.client("alice")
    for event in ("message:send", "channel:join", "typing", "read", "reaction:add",
                  "message:edit", "message:delete", "dm:open", "presence:set"):
        ack = await alice.call(event)
        assert ack["error"]["code"] == "invalid", (event, ack)
        ack = await alice.call(event, "a string")
        assert ack["error"]["code"] == "invalid", (event, ack)
        ack = await alice.call(event, [1, 2])
        assert ack["error"]["code"] == "invalid", (event, ack)
    unknown = await alice.call("no:such:event", {"x": 1})
    assert unknown["error"]["code"] == "not_found"
    extra_args = await alice.sio.call("message:send", ({"channel": "general", "text": "a"}, 2),
                                      timeout=5)
    assert extra_args["error"]["code"] == "invalid"
    assert alice.sio.connected


async def test_frame_near_64k_is_answered_not_dropped(server: LiveServer) -> None:
    alice = await server.client("alice")
    # python-socketio's client escapes non-ASCII as \uXXXX: 10,000 "é" make a ~60 KiB frame
    ack = await alice.call("message:send", {"channel": "general", "text": "é" * 10_000,
                                            "client_id": "z" * 128})
    assert ack["error"]["code"] == "too_large"
    assert alice.sio.connected


async def test_rate_limit_answers_retry_after(tmp_path) -> None:
    from tests.helpers import make_settings, start_server

    live = await start_server(make_settings(tmp_path, message_rate_per_s=1, message_burst=3))
    try:
        alice = await live.client("alice")
        acks = [await alice.call("message:send", {"channel": "general", "text": f"m{i}"})
                for i in range(5)]
        assert [a["ok"] for a in acks] == [True, True, True, False, False]
        assert acks[3]["error"]["code"] == "rate_limited"
        assert acks[3]["error"]["retry_after_ms"] > 0
        second_tab = await live.client("alice")
        refused = await second_tab.call("message:send", {"channel": "general", "text": "x"})
        assert refused["error"]["code"] == "rate_limited"
        other = await live.client("bob")
        assert (await other.call("message:send", {"channel": "general", "text": "x"}))["ok"]
    finally:
        await live.stop()


def _token(claims: dict, algorithm: str = "HS256", key: str = SECRET) -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _none_token() -> str:
    import base64
    import json

    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return b64({"alg": "none", "typ": "JWT"}) + "." + b64(
        {"sub": "mallory", "roles": ["admin"], "exp": int(time.time()) + 600}) + "."


BAD_TOKENS = [
    None,
    "",
    "not-a-jwt",
    _token({"sub": "a", "exp": int(time.time()) - 60}),
    _token({"sub": "a"}),
    _token({"sub": "a", "exp": int(time.time()) + 60}, key="another-secret-" + "y" * 40),
    _token({"sub": "a", "exp": int(time.time()) + 60}, algorithm="HS512"),
    _none_token(),
]


@pytest.mark.parametrize("token", BAD_TOKENS)
async def test_bad_tokens_are_refused(server: LiveServer, token: str | None) -> None:
    client = await server.client(token=token, connect=False)
    with pytest.raises(socketio.exceptions.ConnectionError) as refused:
        await client.connect()
    assert refused.value is not None
    error = client.events["connect_error"][0]
    assert error["message"] == "unauthorized" and error["data"]["code"] == "unauthorized"


async def test_roles_checked_per_event_and_http(server: LiveServer) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        body = {"id": "secret-club", "kind": "private", "read_roles": ["moderator"]}
        async with http.post(server.url + "/api/v1/channels", json=body,
                             headers=server.headers("alice")) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
        async with http.post(server.url + "/api/v1/channels", json=body,
                             headers=server.headers("root", "admin")) as r:
            assert r.status == 201
    member = await server.client("alice")
    mod = await server.client("mo", roles="moderator")
    assert (await member.call("channel:join", {"channel": "secret-club"}))["error"]["code"] \
        == "forbidden"
    assert (await member.call("message:send", {"channel": "secret-club", "text": "x"})
            )["error"]["code"] == "forbidden"
    await mod.ok("channel:join", {"channel": "secret-club"})
    await mod.ok("message:send", {"channel": "secret-club", "text": "mods only"})


async def test_expired_token_mid_session_is_refused_and_disconnected(server: LiveServer
                                                                      ) -> None:
    import asyncio
    import time

    import jwt

    token = mint("shorty", ttl=3)  # long enough to connect and join on a busy machine
    client = await server.client(token=token)
    await client.ok("channel:join", {"channel": "general"})
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.2)
    ack = await client.call("message:send", {"channel": "general", "text": "late"})
    assert ack["error"]["code"] == "unauthorized"
    for _ in range(100):
        if not client.sio.connected:
            break
        await asyncio.sleep(0.02)
    assert not client.sio.connected


async def test_foreign_origin_is_refused(server: LiveServer) -> None:
    client = await server.client(connect=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.sio.connect(server.url, auth={"token": mint("alice")},
                                 transports=["websocket"], headers={"Origin": "http://evil.example"},
                                 wait_timeout=5)
    same = await server.client(connect=False)
    await same.sio.connect(server.url, auth={"token": mint("alice")}, transports=["websocket"],
                           headers={"Origin": server.url}, wait_timeout=5)
    assert same.sio.connected
