"""Rooms benchmark: server CPU per forwarded stream and frames/s, pass-through vs stock MediaRelay.

Run: ``python benchmarks/rooms.py [--window 5] [--scenarios 1x1,1x4,1x8,1x16,mesh3,mesh4]
[--modes passthrough,relay] [--processes 3] [--media-workers N]``

For each forwarding mode a server (``create_app`` + the rooms plugin, uvloop) runs in its own
process; for each scenario, client processes join one room over Socket.IO and aiortc:

- ``1xN``: one presenter (Opus audio + VP8 320x240 video) and N viewers, spread over several
  processes;
- ``meshN``: N participants, each publishing and subscribing to every other one.

Viewers count the *encoded* frames they receive (no decoding: light clients, so the generator is
not the bottleneck); presenters encode synthetic frames. After a warm-up, the server's CPU
(user+system of its whole process, all threads) is read from ``/proc`` over the window and divided
by the number of forwarded audio+video streams (one per subscription). Goal (issue 6):
≤ 0.02 core per forwarded audio+video stream, 1 presenter → 16 viewers at 30 fps.

``--media-workers N`` runs the media in N worker processes (``GIGVORA_ROOMS_MEDIA_WORKERS``):
the server's CPU is then the main process plus its workers, and ``main_cores`` shows what is
left on the main (chat) event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SECRET = "bench-secret-" + "x" * 40
ROOM = "bench"
TICKS = os.sysconf("SC_CLK_TCK")


# server process --------------------------------------------------------------------------------
async def serve(mode: str, port: int, data_dir: str, media_workers: int = 0) -> None:
    """Run the app with the rooms plugin until killed."""
    from aiohttp import web

    import rooms.plugin
    from realtime.app import create_app
    from realtime.config import load_settings
    from rooms.service import RoomsSettings
    from rooms.sfu import SfuSettings
    from rooms.state import RoomLimits

    settings = load_settings(environ={}, data_dir=Path(data_dir), jwt_secret=SECRET, port=port,
                             log_level="warning", moderation_ml="off",
                             plugins_disable=["moderation", "web_shell", "rooms"])
    limits = RoomLimits(max_publishers=16, max_listeners=200)
    plugin = rooms.plugin.make_plugin(RoomsSettings(limits, SfuSettings(forwarding=mode),
                                                    media_workers=media_workers))
    runner = web.AppRunner(create_app(settings, plugins=[plugin]), handle_signals=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


# client processes ------------------------------------------------------------------------------
class BenchPeer:
    """One participant: optionally publishes, subscribes to ``expect`` publishers, counts."""

    def __init__(self, url: str, name: str, publish: bool, expect: int) -> None:
        self.url, self.name, self.publish, self.expect = url, name, publish, expect
        self.stamps: dict[str, list[float]] = {"audio": [], "video": []}
        self.pcs: list[Any] = []
        self.subscriptions = 0
        self.sio: Any = None

    async def setup(self) -> None:
        import socketio
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from realtime.identity import TokenService
        from tests.rooms.peers import ClientPeers, config
        sio = socketio.AsyncClient(reconnection=False)
        seen: list[str] = []
        sio.on("room:published", lambda e: seen.append(e["participant_id"]), namespace="/rooms")
        token = TokenService(SECRET).mint(self.name, self.name, ["member"], ttl=3600)
        await sio.connect(self.url, auth={"token": token}, namespaces=["/rooms"],
                          transports=["websocket"], wait_timeout=10)

        async def call(event: str, data: dict[str, Any]) -> Any:
            ack = await sio.call(event, data, namespace="/rooms", timeout=30)
            assert ack["ok"], ack
            return ack["data"]
        joined = await call("room:join", {"room": ROOM,
                                          "role": "publisher" if self.publish else "listener"})
        seen += [p["participant_id"] for p in joined["publishers"]]
        me = joined["participant_id"]
        if self.publish:
            client = ClientPeers()
            offer = await client.offer(["audio", "video"])
            answer = await call("rtc:publish", {"room": ROOM, "sdp": offer, "type": "offer"})
            await client.accept(answer["sdp"])
            self.pcs.append(client)
        deadline = time.time() + 60
        while len({p for p in seen if p != me}) < self.expect and time.time() < deadline:
            await asyncio.sleep(0.05)
        for publisher in sorted({p for p in seen if p != me}):
            offer = await call("rtc:subscribe", {"room": ROOM, "publisher": publisher})
            pc = RTCPeerConnection(config())
            self.pcs.append(pc)
            pc.on("track", lambda track, pc=pc: self._count(pc, track))
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await call("rtc:answer", {"subscription_id": offer["subscription_id"],
                                      "sdp": pc.localDescription.sdp, "type": "answer"})
        self.subscriptions = len({p for p in seen if p != me})
        self.sio = sio
        while self.subscriptions and not all(self.stamps.values()):
            await asyncio.sleep(0.05)  # first frames of every kind

    async def result(self, since: float, until: float) -> dict[str, Any]:
        """Frames/s per subscription within [since, until]; then close everything."""
        counts = {k: sum(1 for t in v if since <= t <= until) for k, v in self.stamps.items()}
        subs = max(self.subscriptions, 1)
        for pc in self.pcs:
            await pc.close()
        await self.sio.disconnect()
        return {k: counts[k] / (until - since) / subs for k in counts} | {
            "subscriptions": self.subscriptions}

    def _count(self, pc: Any, track: Any) -> None:
        """Count encoded frames (tap the receiver: no decoding on the load generator)."""
        from rooms.media import tap_receiver
        receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
        stamps = self.stamps[track.kind]
        tap_receiver(receiver, lambda codec, frame: stamps.append(time.time()))


async def clients(spec: dict[str, Any]) -> None:
    """Run the participants of one process; print their results as JSON."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    peers = [BenchPeer(spec["url"], p["name"], p["publish"], p["expect"]) for p in spec["peers"]]
    await asyncio.wait_for(asyncio.gather(*(p.setup() for p in peers)), 90)
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    since, until = map(float, line.split())
    await asyncio.sleep(max(0.0, until - time.time()) + 0.1)
    results = [await p.result(since, until) for p in peers]
    print(json.dumps(results), flush=True)


# orchestration ---------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the media workers of a server)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the server process and of its children (media workers)."""
    return cpu_seconds(pid), sum(cpu_seconds(child) for child in child_pids(pid))


def plan(scenario: str) -> tuple[list[dict[str, Any]], int]:
    """Participants of a scenario and the number of forwarded A+V streams."""
    if scenario.startswith("mesh"):
        n = int(scenario[4:])
        return [{"name": f"m{i}", "publish": True, "expect": n - 1} for i in range(n)], n * (n - 1)
    viewers = int(scenario.split("x")[1])
    return ([{"name": "presenter", "publish": True, "expect": 0}]
            + [{"name": f"v{i}", "publish": False, "expect": 1} for i in range(viewers)]), viewers


def run_scenario(url: str, server_pid: int, scenario: str, window: float, warmup: float,
                 processes: int) -> dict[str, Any]:
    """One scenario against a running server."""
    peers, streams = plan(scenario)
    groups: list[list[dict[str, Any]]] = [[] for _ in range(min(processes, len(peers)))]
    for index, peer in enumerate(peers):
        groups[index % len(groups)].append(peer)
    procs = [subprocess.Popen([sys.executable, __file__, "--clients", json.dumps(
        {"url": url, "peers": group})], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
        for group in groups]
    for proc in procs:  # every participant connected and receiving
        assert proc.stdout is not None and b"ready" in proc.stdout.readline(), scenario
    time.sleep(warmup)
    since, before = time.time(), tree_cpu(server_pid)
    time.sleep(window)
    until, after = time.time(), tree_cpu(server_pid)
    main_cores = (after[0] - before[0]) / window
    cores = main_cores + (after[1] - before[1]) / window
    window_line = f"{since} {until}\n".encode()
    results = [r for p in procs
               for r in json.loads(p.communicate(window_line, timeout=120)[0] or b"[]")]
    receiving = [r for r in results if r["subscriptions"]]
    video = [r["video"] for r in receiving]
    audio = [r["audio"] for r in receiving]
    return {"scenario": scenario, "streams": streams, "server_cores": round(cores, 3),
            "main_cores": round(main_cores, 3),
            "core_per_stream": round(cores / max(streams, 1), 4),
            "video_fps_min": round(min(video), 1) if video else 0,
            "video_fps_mean": round(sum(video) / len(video), 1) if video else 0,
            "audio_fps_mean": round(sum(audio) / len(audio), 1) if audio else 0}


def run_mode(mode: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Start a server in ``mode`` and run every scenario against it."""
    from tests.helpers import free_port
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen([sys.executable, __file__, "--serve", mode, "--port",
                                   str(port), "--data-dir", data_dir, "--media-workers",
                                   str(args.media_workers)], stdout=subprocess.PIPE, cwd=ROOT)
        try:
            assert server.stdout is not None and b"ready" in server.stdout.readline()
            rows = []
            for scenario in args.scenarios.split(","):
                label = f"{mode}+{args.media_workers}w" if args.media_workers else mode
                row = {"mode": label, **run_scenario(f"http://127.0.0.1:{port}", server.pid,
                                                    scenario, args.window, args.warmup,
                                                    args.processes)}
                print(json.dumps(row), flush=True)
                rows.append(row)
            return rows
        finally:
            server.terminate()
            server.wait(10)


def main() -> None:
    """Parse arguments; orchestrate, or act as a server or client process."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--clients")
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--scenarios", default="1x1,1x4,1x8,1x16,mesh3,mesh4")
    parser.add_argument("--modes", default="passthrough,relay")
    parser.add_argument("--media-workers", type=int, default=0,
                        help="media worker processes (GIGVORA_ROOMS_MEDIA_WORKERS)")
    args = parser.parse_args()
    if args.serve:
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        asyncio.run(serve(args.serve, args.port, args.data_dir, args.media_workers))
    elif args.clients:
        asyncio.run(clients(json.loads(args.clients)))
    else:
        rows = [row for mode in args.modes.split(",") for row in run_mode(mode, args)]
        print("\n| mode | scenario | A+V streams | server cores (main) | core/stream | "
              "video fps (min/mean) | audio fr/s |\n|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['mode']} | {r['scenario']} | {r['streams']} | {r['server_cores']} "
                  f"({r['main_cores']}) | {r['core_per_stream']} | "
                  f"{r['video_fps_min']}/{r['video_fps_mean']} | {r['audio_fps_mean']} |")


if __name__ == "__main__":
    main()
