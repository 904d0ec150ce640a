"""``gigvora db backup`` while a server writes, and ``gigvora db restore`` refusing, verifying
and bringing the data back."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from storage import schema
from storage.admin import backup_in_thread
from tests.helpers import LiveServer, make_settings, start_server
from tests.ops.helpers import agigvora, gigvora


async def _chatter(server: LiveServer, stop: asyncio.Event, acked: list[int]) -> None:
    """Send messages to ``general`` until ``stop``; count the acknowledged ones in ``acked``."""
    client = await server.client("writer")
    await client.ok("channel:join", {"channel": "general"})
    while not stop.is_set():
        await client.ok("message:send", {"channel": "general", "text": f"m{acked[0]}",
                                         "client_id": f"c{acked[0]}"})
        acked[0] += 1


def _seqs_are_whole(path: Path) -> tuple[int, int]:
    """(messages in general, general's last_seq) of a store file."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        count = conn.execute("SELECT COUNT(*) FROM messages WHERE channel_id = 'general'"
                             ).fetchone()[0]
        last = conn.execute("SELECT last_seq FROM channels WHERE id = 'general'").fetchone()[0]
    return count, last


def count_of(path: Path) -> int:
    """Messages in ``general`` of a store file."""
    return _seqs_are_whole(path)[0]


async def test_online_backup_is_consistent_and_restore_is_guarded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = await start_server(make_settings(data, message_rate_per_s=0,
                                              plugins_disable=["moderation"]))
    stop, acked = asyncio.Event(), [0]
    writer = asyncio.create_task(_chatter(server, stop, acked))
    try:
        while acked[0] < 20 and not writer.done():
            await asyncio.sleep(0.02)
        target = tmp_path / "backups" / "b1.db"
        code, out, err = await agigvora("db", "backup", str(target), data_dir=data)
        assert code == 0, err
        acked_after_backup = acked[0]
        in_thread = await backup_in_thread(data / "gigvora.db", tmp_path / "backups" / "b2.db")
        assert in_thread["rows"]["messages"] >= count_of(target)
        busy = await agigvora("db", "restore", str(target), "--force", data_dir=data)
        assert busy[0] == 1 and "in use by a running server" in busy[2]
    finally:
        stop.set()
        await writer
        await server.stop()
    result = json.loads(out)
    manifest = json.loads((tmp_path / "backups" / "b1.db.manifest.json").read_text())
    assert result["sha256"] == manifest["sha256"]
    assert manifest["migrations"] == [m.version for m in schema.available()]
    count, last = _seqs_are_whole(target)
    assert count == last == manifest["rows"]["messages"] >= 20  # a snapshot: no torn batch
    assert acked_after_backup >= count  # nothing in the copy that was not acknowledged...
    assert acked[0] > count or acked_after_backup == count  # ...and writes went on

    refused = gigvora("db", "restore", str(target), data_dir=data)
    assert refused.returncode == 1 and "--force" in refused.stderr
    restored = gigvora("db", "restore", str(target), "--force", data_dir=data)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["rows"] == manifest["rows"]
    assert _seqs_are_whole(data / "gigvora.db") == (count, count)

    server = await start_server(make_settings(data, plugins_disable=["moderation"]))
    try:
        reader = await server.client("reader")
        joined = await reader.ok("channel:join", {"channel": "general", "since_seq": 0,
                                                  "limit": 500})
        assert joined["last_seq"] == count
        assert [m["seq"] for m in joined["messages"]][:1] == [1]
    finally:
        await server.stop()


def test_restore_refuses_a_damaged_or_unlisted_backup(tmp_path: Path) -> None:
    assert gigvora("seed", "--pack", "demo", data_dir=tmp_path).returncode == 0
    target = tmp_path / "b.db"
    assert gigvora("db", "backup", str(target), data_dir=tmp_path).returncode == 0
    again = gigvora("db", "backup", str(target), data_dir=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr
    raw = bytearray(target.read_bytes())
    raw[-100] ^= 0xFF
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(bytes(raw))
    (tmp_path / "damaged.db.manifest.json").write_text(
        (tmp_path / "b.db.manifest.json").read_text())
    refused = gigvora("db", "restore", str(damaged), "--force", data_dir=tmp_path)
    assert refused.returncode == 1 and "SHA-256" in refused.stderr
    (tmp_path / "b.db.manifest.json").unlink()
    refused = gigvora("db", "restore", str(target), "--force", data_dir=tmp_path)
    assert refused.returncode == 1 and "no manifest" in refused.stderr


def test_mongodb_backups_point_to_the_mongodb_tools(tmp_path: Path) -> None:
    unreachable = "mongodb://localhost:1/gigvora?serverSelectionTimeoutMS=200"
    done = gigvora("db", "backup", str(tmp_path / "x"), data_dir=tmp_path,
                   GIGVORA_STORE_URL=unreachable)
    assert done.returncode == 1 and "mongodump" in done.stderr
    for command in ("migrate", "check"):  # one line, no traceback, when MongoDB is away
        done = gigvora("db", command, data_dir=tmp_path, GIGVORA_STORE_URL=unreachable)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith(f"gigvora db {command}: ")
