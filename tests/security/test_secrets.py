"""Secrets at rest over real HTTP: API keys shown once, stored as argon2 hashes, traded for a
token, revoked; one-time codes that expire, are single-use and lock after wrong guesses."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiohttp

from realtime.app import STORE
from storage.secrets import MAX_FAILED_ATTEMPTS, MAX_OPEN_CODES, SecretRecords
from tests.helpers import Client, LiveServer


async def _call(server: LiveServer, method: str, path: str, *, sub: str = "root",
                roles: str = "admin", headers: dict[str, str] | None = None,
                json: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.url + path, json=json,
                                headers=headers if headers is not None
                                else server.headers(sub, roles)) as r:
            return r.status, await r.json(content_type=None)


def _db(server: LiveServer) -> sqlite3.Connection:
    return sqlite3.connect(server.app[STORE].path)


async def test_api_key_lifecycle(server: LiveServer) -> None:
    status, made = await _call(server, "POST", "/api/v1/admin/api-keys",
                               json={"name": "standup-bot", "roles": ["member"]})
    assert status == 201, made
    key, record = made["key"], made["api_key"]
    assert key.startswith("gvk_") and record["name"] == "standup-bot"
    secret = key.rsplit("_", 1)[-1]
    with _db(server) as conn:
        (hashed,) = conn.execute("SELECT hash FROM api_keys WHERE id = ?",
                                 (record["id"],)).fetchone()
        dump = "\n".join(conn.iterdump())
    assert hashed.startswith("$argon2id$") and secret not in dump and key not in dump
    status, listed = await _call(server, "GET", "/api/v1/admin/api-keys")
    assert status == 200 and [k["id"] for k in listed["api_keys"]] == [record["id"]]
    assert "key" not in listed["api_keys"][0] and "hash" not in listed["api_keys"][0]

    status, token = await _call(server, "POST", "/api/v1/auth/api-key",
                                headers={"X-Api-Key": key})
    assert status == 200, token
    bot = Client(server.url, token["access_token"])
    server.clients.append(bot)
    await bot.connect()
    sent = await bot.ok("message:send", {"channel": "general", "text": "standup at 10"})
    assert sent["author"] == {"id": f"apikey:{record['id']}", "name": "standup-bot"}
    status, _ = await _call(server, "GET", "/api/v1/channels",
                            headers={"Authorization": f"Bearer {token['access_token']}"})
    assert status == 200
    _, listed = await _call(server, "GET", "/api/v1/admin/api-keys")
    assert listed["api_keys"][0]["last_used_at"] is not None

    for wrong in (key[:-1] + ("A" if key[-1] != "A" else "B"), "gvk_nope", ""):
        status, body = await _call(server, "POST", "/api/v1/auth/api-key",
                                   headers={"X-Api-Key": wrong})
        assert status == 401 and body["error"]["code"] == "unauthorized"
    status, revoked = await _call(server, "DELETE", f"/api/v1/admin/api-keys/{record['id']}")
    assert status == 200 and revoked["api_key"]["revoked_at"]
    status, _ = await _call(server, "POST", "/api/v1/auth/api-key", headers={"X-Api-Key": key})
    assert status == 401
    status, body = await _call(server, "DELETE", "/api/v1/admin/api-keys/000000000000000000000000")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_api_keys_are_for_admins_and_validated(server: LiveServer) -> None:
    status, body = await _call(server, "POST", "/api/v1/admin/api-keys", roles="moderator",
                               json={"name": "x"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    for bad in ({"name": ""}, {"name": "x", "roles": ["admin"]}, {"name": "x", "extra": 1},
                {"name": 5}, {"name": "x", "roles": []}):
        status, body = await _call(server, "POST", "/api/v1/admin/api-keys", json=bad)
        assert status == 400 and body["error"]["code"] == "invalid", (bad, body)
    status, _ = await _call(server, "GET", "/api/v1/admin/api-keys", headers={})
    assert status == 401


async def test_room_pin_is_single_use(server: LiveServer) -> None:
    status, issued = await _call(server, "POST", "/api/v1/admin/codes",
                                 json={"purpose": "room_pin", "subject": "standup"})
    assert status == 201, issued
    pin = issued["code"]
    assert len(pin) == 8 and pin.isdigit()
    with _db(server) as conn:
        (hashed,) = conn.execute("SELECT hash FROM one_time_codes").fetchone()
    assert hashed.startswith("$argon2id$") and pin not in hashed
    redeem = {"purpose": "room_pin", "subject": "standup", "code": pin}
    status, body = await _call(server, "POST", "/api/v1/codes/redeem", roles="member",
                               sub="alice", json={**redeem, "subject": "other-room"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, used = await _call(server, "POST", "/api/v1/codes/redeem", roles="member",
                               sub="alice", json=redeem)
    assert status == 200 and used["used_by"] == "alice"
    status, body = await _call(server, "POST", "/api/v1/codes/redeem", roles="member",
                               sub="bob", json=redeem)
    assert status == 403, "a one-time code worked twice"
    status, body = await _call(server, "POST", "/api/v1/admin/codes", roles="member",
                               json={"purpose": "invite", "subject": "general"})
    assert status == 403


async def test_codes_expire_and_lock_after_wrong_guesses(server: LiveServer) -> None:
    records = SecretRecords(server.app[STORE])
    _, expired = await records.issue_code("invite", "general", "root", ttl_s=-1)
    assert await records.redeem_code("invite", "general", expired, "alice") is None
    _, pin = await records.issue_code("room_pin", "town-hall", "root", 600, kind="pin")
    wrong = f"{(int(pin) + 1) % 10**8:08d}"
    for _ in range(MAX_FAILED_ATTEMPTS):
        assert await records.redeem_code("room_pin", "town-hall", wrong, "mallory") is None
    assert await records.redeem_code("room_pin", "town-hall", pin, "mallory") is None
    assert await records.purge_codes(older_than_s=0) == 1


async def test_open_codes_per_subject_are_capped(server: LiveServer) -> None:
    """A redeem checks every open code of its subject: their number is bounded."""
    records = SecretRecords(server.app[STORE])
    for _ in range(MAX_OPEN_CODES):
        await records.issue_code("invite", "general", "root", 600)
    status, body = await _call(server, "POST", "/api/v1/admin/codes",
                               json={"purpose": "invite", "subject": "general"})
    assert status == 409 and body["error"]["code"] == "conflict"
    status, _ = await _call(server, "POST", "/api/v1/admin/codes",
                            json={"purpose": "invite", "subject": "help", "ttl_s": 419.0})
    assert status == 201
