"""Media worker processes (``media_workers=2``): real aiortc peers, the real server, the peer
connections in child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rooms import workers as media_workers
from rooms.service import NS
from rooms.workers import RemotePublication, WorkerPool
from tests.helpers import Client, ServerProcess, mint
from tests.rooms.conftest import ROOM, Member, Rooms, StartRooms, flowing, measure, wait_until


def pool(rooms: Rooms) -> WorkerPool:
    """The server's media backend (a pool of workers)."""
    backend = rooms.service.sfu
    assert isinstance(backend, WorkerPool)
    return backend


async def readiness(rooms: Rooms) -> dict[str, Any]:
    """The ``rooms:media`` readiness check."""
    live = rooms.live
    async with live.clients[0].http.get(f"{live.url}/readyz",
                                        headers=live.headers("ops", "operator")) as response:
        detail = await response.json(content_type=None)
    return dict(detail["checks"]["rooms:media"][0])


async def watching(rooms: Rooms) -> tuple[Member, Member]:
    """Alice publishes audio and video in ``ROOM``; Bob subscribes and receives both."""
    alice, bob = await rooms.member("alice"), await rooms.member("bob")
    await alice.join()
    await alice.publish(["audio", "video"])
    await bob.join()
    await bob.subscribe(alice.participant_id)
    await flowing(bob, alice.participant_id)
    return alice, bob


async def test_workers_forward_30fps_and_pin_rooms_to_different_workers(
        start_rooms: StartRooms) -> None:
    """publish → subscribe through a worker: video ≥ 25 fps, audio ≥ 45 frames/s; a second
    room lands on the other worker; readiness shows both workers running."""
    rooms = await start_rooms(media_workers=2)
    alice, bob, carol, dave = [await rooms.member(n) for n in ("alice", "bob", "carol", "dave")]
    await alice.join()
    await alice.publish(["audio", "video"])
    await bob.join()
    await bob.subscribe(alice.participant_id)
    audio, video = await flowing(bob, alice.participant_id)
    fps = await measure([audio, video], 3.0)
    print(f"\nmedia worker 1→1: audio {fps[0]} frames/s, video {fps[1]} fps")
    assert fps[1] >= 25, fps
    assert fps[0] >= 45, fps
    await carol.join("studio")
    await carol.publish(["audio", "video"], room="studio")
    await dave.join("studio")
    await dave.subscribe(carol.participant_id, room="studio")
    await flowing(dave, carol.participant_id)
    workers = pool(rooms).pins
    assert workers[ROOM] is not workers["studio"]
    assert {workers[ROOM].pid, workers["studio"].pid}.isdisjoint({os.getpid(), None})
    publication = rooms.service.publications[alice.participant_id]
    assert isinstance(publication, RemotePublication)  # no peer connection in this process
    check = await readiness(rooms)
    assert check["status"] == "pass" and check["media_workers"] == 2
    assert [(w["state"], w["rooms"]) for w in check["workers"]] == [("running", 1)] * 2


async def test_workers_host_mute_and_kick_close_the_kicked_peer(start_rooms: StartRooms
                                                                ) -> None:
    """Controls with media in a worker: a host mute stops forwarding and an unmute resumes it;
    a kick closes the kicked peer's connections, its viewer's copies end, and the worker
    forgets its connections."""
    rooms = await start_rooms(media_workers=2)
    alice, bob, carol = [await rooms.member(n) for n in ("alice", "bob", "carol")]
    await alice.join()
    await alice.publish(["audio", "video"])
    await bob.join()
    await bob.publish(["audio", "video"])
    await carol.join()
    await carol.subscribe(bob.participant_id)
    await bob.subscribe(alice.participant_id)
    seen = await flowing(carol, bob.participant_id)
    await flowing(bob, alice.participant_id)
    worker = pool(rooms).pins[ROOM]
    assert len(worker.watchers) == 4  # two publications, two subscriptions
    video = next(c for c in seen if c.kind == "video")
    await alice.ok("room:mute", {"room": ROOM, "muted": True, "kinds": ["video"],
                                 "participant_id": bob.participant_id})
    await asyncio.sleep(0.3)
    stopped = time.monotonic()
    await asyncio.sleep(0.7)
    assert video.count_after(stopped) == 0  # not forwarded while host-muted
    await alice.ok("room:mute", {"room": ROOM, "muted": False, "kinds": ["video"],
                                 "participant_id": bob.participant_id})
    resumed = time.monotonic()
    await wait_until(lambda: video.count_after(resumed) > 5, timeout=5)  # at a new keyframe
    await alice.ok("room:kick", {"room": ROOM, "participant_id": bob.participant_id})
    await bob.client.wait_for("room:kicked")
    left = await carol.client.wait_for("room:left")
    assert (left["participant_id"], left["reason"]) == (bob.participant_id, "kicked")
    # the kicked client's peer connections are closed by the worker (DTLS close)
    pcs = [bob.peers.publisher, *bob.peers.subscriptions.values()]
    await wait_until(lambda: all(pc.connectionState == "closed" for pc in pcs), timeout=8)
    await wait_until(lambda: all(c.ended for c in seen), timeout=5)
    after = time.monotonic()
    await asyncio.sleep(0.5)
    assert all(c.count_after(after) == 0 for c in seen)
    assert list(worker.watchers) == [f"p:{alice.participant_id}"]


async def test_workers_telemetry_flows_back(start_rooms: StartRooms) -> None:
    """The worker's samples reach the telemetry REST document and Prometheus."""
    rooms = await start_rooms(media_workers=2, telemetry_interval_s=0.5)
    alice, bob = await watching(rooms)
    live, http = rooms.live, rooms.live.clients[0].http
    url = f"{live.url}/api/v1/rooms/{ROOM}/telemetry"
    doc: dict[str, Any] = {}
    for _ in range(80):
        async with http.get(url, headers=live.headers("alice")) as response:
            doc = await response.json()
        subs = [p["subscriptions"] for p in doc["participants"] if p["subscriptions"]]
        if doc["bitrate_in_bps"] > 0 and subs and subs[0][0]["tracks"][0]["bitrate_bps"] > 0:
            break
        await asyncio.sleep(0.1)
    by_id = {p["participant_id"]: p for p in doc["participants"]}
    video_in = next(t for t in by_id[alice.participant_id]["publish"]["tracks"]
                    if t["kind"] == "video")
    video_out = next(t for t in by_id[bob.participant_id]["subscriptions"][0]["tracks"]
                     if t["kind"] == "video")
    print("\nworker telemetry:", video_in, video_out)
    assert video_in["bitrate_bps"] > 5_000 and video_in["fps"] >= 20
    assert video_out["bitrate_bps"] > 5_000 and video_out["fps"] > 0
    async with http.get(f"{live.url}/metrics", headers=live.headers("olga", "operator")) as r:
        text = await r.text()
    assert 'gigvora_rooms_forwarded_streams{kind="video"} 1.0' in text
    forwarded = next(line for line in text.splitlines()
                     if line.startswith('gigvora_rooms_forwarded_frames_total{kind="video"}'))
    assert float(forwarded.split()[-1]) > 0
    assert 'gigvora_rooms_video_fps_count{direction="out",source="server"}' in text


async def test_killed_worker_fails_media_cleanly_and_a_new_worker_serves(
        start_rooms: StartRooms) -> None:
    """SIGKILL the room's worker: the room hears ``room:unpublished`` (reason ``failed``),
    readiness shows the restart, and a republish is served by a live worker."""
    rooms = await start_rooms(media_workers=2)
    alice, bob = await watching(rooms)
    worker = pool(rooms).pins[ROOM]
    killed = worker.pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    gone = await bob.client.wait_for("room:unpublished", timeout=5)
    assert (gone["participant_id"], gone["reason"]) == (alice.participant_id, "failed")
    await wait_until(lambda: alice.participant_id not in rooms.service.publications)
    assert not rooms.service.subscriptions
    await wait_until(lambda: worker.running and worker.pid != killed, timeout=20)
    check = await readiness(rooms)
    assert check["status"] == "pass"
    assert sorted(w["restarts"] for w in check["workers"]) == [0, 1]
    assert killed not in [w["pid"] for w in check["workers"]]
    live = rooms.live
    async with live.clients[0].http.get(f"{live.url}/metrics",
                                        headers=live.headers("olga", "operator")) as r:
        text = await r.text()
    assert "gigvora_rooms_media_worker_restarts 1.0" in text
    assert 'gigvora_rooms_media_workers{state="running"} 2.0' in text

    assert alice.peers.publisher is not None
    await alice.peers.publisher.close()  # the client rebuilds its connection
    await alice.publish(["audio", "video"])
    await bob.subscribe(alice.participant_id)
    audio, video = await flowing(bob, alice.participant_id)
    serving = pool(rooms).pins[ROOM]
    assert serving.running and serving.pid != killed
    fps = await measure([audio, video], 2.0)
    assert fps[1] >= 25, fps



async def test_hung_worker_is_killed_and_replaced(start_rooms: StartRooms,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that stops answering pings (SIGSTOP) is killed and handled as dead: the room
    hears ``room:unpublished`` (reason ``failed``) and a new process takes its place."""
    monkeypatch.setattr(media_workers, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(media_workers, "HEARTBEAT_TIMEOUT_S", 0.5)
    rooms = await start_rooms(media_workers=1)
    alice, bob = await watching(rooms)
    [worker] = pool(rooms).workers
    hung = worker.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)
    gone = await bob.client.wait_for("room:unpublished", timeout=8)
    assert (gone["participant_id"], gone["reason"]) == (alice.participant_id, "failed")
    await wait_until(lambda: worker.running and worker.pid != hung, timeout=20)
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)

async def test_sigterm_stops_the_workers_after_closing_their_connections(tmp_path: Path
                                                                         ) -> None:
    """``gigvora serve`` with ``GIGVORA_ROOMS_MEDIA_WORKERS=1``: readiness lists the worker;
    SIGTERM drains, the worker closes its peer connections and exits with the server."""
    server = ServerProcess(tmp_path, GIGVORA_ROOMS_MEDIA_WORKERS="1",
                           GIGVORA_DRAIN_GRACE_S="0").start()
    member: Member | None = None
    try:
        await server.wait_ready()
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/readyz", headers={
                    "Authorization": f"Bearer {mint('ops', roles='operator')}"}) as response:
                check = (await response.json(content_type=None))["checks"]["rooms:media"][0]
        [worker] = check["workers"]
        assert worker["state"] == "running"
        member = Member(await Client(server.url, mint("alice"), namespaces=[NS]).connect())
        await member.join()
        await member.publish(["audio", "video"])
        publisher = member.peers.publisher
        assert publisher is not None
        await wait_until(lambda: publisher.connectionState == "connected", timeout=8)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.proc.wait, 20)
        assert server.proc.returncode == 0, server.output()
        await wait_until(lambda: publisher.connectionState == "closed", timeout=8)
        with pytest.raises(ProcessLookupError):
            os.kill(worker["pid"], 0)
    finally:
        if member is not None:
            await member.close()
            await member.client.close()
        server.stop()
