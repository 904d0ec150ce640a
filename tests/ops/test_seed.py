"""``gigvora seed [--pack NAME]``: idempotent packs that a server then serves."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import aiohttp

from storage.admin import digest
from storage.seed import PACKS
from tests.helpers import make_settings, mint, start_server
from tests.ops.helpers import gigvora

ROLES = {"member", "agent", "moderator", "admin", "operator"}


def _content(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return digest(conn)


def test_demo_pack_twice_changes_nothing(tmp_path: Path) -> None:
    first = gigvora("seed", "--pack", "demo", data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)
    assert made["messages_created"] == len(PACKS["demo"].messages)
    assert {role for p in made["personas"] for role in p["roles"]} == ROLES
    assert set(made["channels_created"]) == {c.id for c in PACKS["demo"].channels}
    assert made["sessions"] == {"stored": 1, "ids": ["seed-demo-office-hours"]}
    categorised = {ch: c.name for c in PACKS["demo"].categories for ch in c.channels}
    assert sorted(made["categories_set"]) == sorted(categorised)
    with sqlite3.connect(f"file:{tmp_path / 'gigvora.db'}?mode=ro", uri=True) as conn:
        stored = dict(conn.execute("SELECT id, category FROM channels"))
    assert {ch: stored[ch] for ch in categorised} == categorised
    before = _content(tmp_path / "gigvora.db")
    again = json.loads(gigvora("seed", "--pack", "demo", data_dir=tmp_path).stdout)
    assert again["messages_created"] == 0 and again["channels_created"] == []
    assert again["sessions"]["stored"] == 0 and again["categories_set"] == []
    assert _content(tmp_path / "gigvora.db") == before
    core = json.loads(gigvora("seed", data_dir=tmp_path).stdout)
    assert core["pack"] == "core" and core["channels_created"] == []
    assert _content(tmp_path / "gigvora.db") == before
    unknown = gigvora("seed", "--pack", "nope", data_dir=tmp_path)
    assert unknown.returncode == 2 and "core, demo" in unknown.stderr


async def test_a_server_serves_the_seeded_data_by_role(tmp_path: Path) -> None:
    assert gigvora("seed", "--pack", "demo", data_dir=tmp_path).returncode == 0
    server = await start_server(make_settings(tmp_path, plugins_disable=["moderation"]))
    try:
        alan = await server.client("member-alan", token=mint("member-alan", "Alan Turing"))
        intro = await alan.ok("channel:join", {"channel": "introductions"})
        texts = [(m["author"]["id"], m.get("thread_id")) for m in intro["messages"]]
        assert texts[0] == ("member-ada", None)
        assert texts[1] == ("member-alan", intro["messages"][0]["id"])  # a thread reply
        staff = await alan.call("channel:join", {"channel": "staff"})
        assert staff["ok"] is False and staff["error"]["code"] in ("forbidden", "not_found")
        kate = await server.client("moderator-katherine",
                                   token=mint("moderator-katherine", roles="member,moderator"))
        room = await kate.ok("channel:join", {"channel": "staff"})
        assert [m["author"]["id"] for m in room["messages"]] == ["moderator-katherine"]
        async with aiohttp.ClientSession() as http, http.get(
                server.url + "/api/v1/rooms/sessions",
                headers=server.headers("member-alan")) as listed:
            sessions = (await listed.json())["sessions"]
        assert [x["id"] for x in sessions] == ["seed-demo-office-hours"]
    finally:
        await server.stop()


def test_personas_are_the_web_shell_dev_personas() -> None:
    from web_shell.sessions import PERSONAS as SHELL

    assert [(p.id, p.name, tuple(p.roles)) for p in SHELL] == [
        (p.id, p.name, p.roles) for p in PACKS["demo"].personas]
