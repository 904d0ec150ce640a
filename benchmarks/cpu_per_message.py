"""Server CPU time per stored message (``message:send``), independent of wall-clock noise.

    .venv/bin/python benchmarks/cpu_per_message.py --messages 4000 --clients 8

Boots ``gigvora serve`` in a child process (default plugins, so moderation runs), connects
``--clients`` members to one channel (``--channels N``: spread round-robin over N channels
``cpu-0`` … created through the REST API, closer to the suite's "many channels"), and has each
send its share of ``--messages`` messages back to back (every one with a ``client_id``, as
clients should). The server's user + system CPU
time (``/proc/<pid>/stat``) over the sends, divided by the messages stored, is the figure: it
does not depend on how busy the machine is, unlike latency. ``--py-spy FILE`` also records a
flame graph of the server over the sends (collapsed stacks if FILE ends in ``.txt``;
needs ``py-spy``: ``pip install py-spy``; only samples holding the GIL, i.e. Python CPU, not
threads waiting). It also splits the CPU between the event loop's thread and the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import Client, ServerProcess, mint  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
WORDS = ("river", "orange", "tuesday", "meeting", "lamp", "garden", "seven", "window", "quick",
         "paper", "music", "bridge", "coffee", "yellow", "travel", "ticket", "summer", "friend")


def sentence(n: int, i: int) -> str:
    """A different, harmless sentence per message (moderation flags repeated text as spam)."""
    picks = [WORDS[(i * 7 + n * 3 + k * 5) % len(WORDS)] for k in range(6)]
    return f"{' '.join(picks)} {n}.{i}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def thread_cpu(pid: int) -> dict[str, float]:
    """User + system CPU seconds so far of the event loop's thread (``loop``) and of every other
    thread together (``threads``: the SQLite writer, readers and checkpointer, executors); also
    per thread name (``name user``/``name sys``, for ``--threads``)."""
    seconds = {"loop": 0.0, "threads": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            head, tail = (task / "stat").read_text().rsplit(")", 1)
        except OSError:  # the thread ended meanwhile
            continue
        fields = tail.split()
        user, system = int(fields[11]) / TICKS, int(fields[12]) / TICKS
        key = "loop" if task.name == str(pid) else "threads"
        seconds[key] += user + system
        name = "loop" if key == "loop" else head.split("(", 1)[1]
        for part, value in (("user", user), ("sys", system)):
            seconds[f"{name} {part}"] = seconds.get(f"{name} {part}", 0.0) + value
    return seconds


def create_channels(url: str, ids: list[str]) -> None:
    """Create public channels (POST /api/v1/channels as an admin)."""
    token = mint("cpu-admin", roles="admin,member")
    for cid in ids:
        request = urllib.request.Request(
            f"{url}/api/v1/channels", data=json.dumps({"id": cid, "name": cid}).encode(),
            method="POST", headers={"Authorization": f"Bearer {token}",
                                    "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def start_py_spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` into ``out`` until interrupted."""
    return subprocess.Popen([shutil.which("py-spy") or "py-spy", "record", "-p", str(pid),
                             "-o", out, "-r", "200", "--nonblocking", "--threads", "--gil",
                             "--format", "raw" if out.endswith(".txt") else "flamegraph"])


async def run(messages: int, clients: int, spy: str | None, env: dict[str, str],
              channels: int = 1, per_thread: bool = False) -> None:
    with tempfile.TemporaryDirectory() as data:
        server = ServerProcess(Path(data))
        server.env.update({"GIGVORA_MESSAGE_RATE_PER_S": "0", **env})
        server.start()
        members: list[Client] = []
        try:
            await server.wait_ready()
            assert server.proc is not None
            names = ["general"] if channels <= 1 else [f"cpu-{c}" for c in range(channels)]
            if channels > 1:
                create_channels(server.url, names)
            for n in range(clients):
                members.append(await Client(server.url, mint(f"cpu{n}")).connect())
            for n, member in enumerate(members):
                await member.ok("channel:join", {"channel": names[n % len(names)]})
            warm = members[0]
            for i in range(50):
                await warm.ok("message:send", {"channel": names[0], "text": sentence(99, i),
                                               "client_id": f"warm-{i}"})
            recorder = None
            if spy:
                recorder = start_py_spy(server.proc.pid, spy)
                await asyncio.sleep(1.0)
            each = messages // clients
            pid = server.proc.pid
            threads_before = thread_cpu(pid)
            before, started = cpu_seconds(pid), time.perf_counter()

            async def send(n: int, member: Client) -> None:
                for i in range(each):
                    await member.ok("message:send", {"channel": names[n % len(names)],
                                                     "text": sentence(n, i),
                                                     "client_id": f"{n}-{i}"})
            await asyncio.gather(*(send(n, m) for n, m in enumerate(members)))
            cpu, wall = cpu_seconds(pid) - before, time.perf_counter() - started
            threads = thread_cpu(pid)
            if recorder is not None:
                recorder.send_signal(2)
                recorder.wait(30)
            stored = each * clients
            print(f"{stored} messages stored in {wall:.2f} s wall; server CPU {cpu:.2f} s = "
                  f"{cpu / stored * 1e6:.0f} µs per message (includes the fan-out to "
                  f"{clients // len(names)} subscribers)")
            print("  of which (µs per message): " + ", ".join(
                f"{key} {(threads[key] - threads_before[key]) / stored * 1e6:.0f}"
                for key in ("loop", "threads")))
            if per_thread:
                print("  per thread (µs per message): " + ", ".join(
                    f"{key} {(threads[key] - threads_before.get(key, 0.0)) / stored * 1e6:.0f}"
                    for key in sorted(threads) if " " in key))
        finally:
            for member in members:
                await member.close()
            server.stop()


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--channels", type=int, default=1,
                        help="spread the clients over this many channels (default: general)")
    parser.add_argument("--threads", action="store_true",
                        help="also print CPU per thread name, user and system")
    parser.add_argument("--py-spy", dest="spy", default=None, metavar="FILE")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra GIGVORA_* settings for the server")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    asyncio.run(run(args.messages, args.clients, args.spy, env, args.channels, args.threads))


if __name__ == "__main__":
    main()
