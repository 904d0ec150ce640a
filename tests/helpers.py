"""Shared test machinery: a live server on a free port and real Socket.IO clients."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio
from aiohttp import web

from realtime.app import FANOUT, HUB, LIFECYCLE, SIO, create_app
from realtime.config import Settings, load_settings
from realtime.identity import TokenService
from realtime.lifecycle import drain

SECRET = "test-secret-" + "x" * 40
REPO = Path(__file__).resolve().parent.parent
MINT: Any = object()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test server: its own data dir, a fixed secret, no env leakage."""
    values: dict[str, Any] = {"data_dir": data_dir, "jwt_secret": SECRET, "port": 0,
                              "log_format": "console", "drain_grace_s": 0.0}
    values.update(overrides)
    return load_settings(environ={}, **values)


def mint(sub: str, name: str | None = None, roles: str = "member", ttl: int = 3600) -> str:
    """An access token signed with the test secret."""
    return TokenService(SECRET).mint(sub, name or sub.title(), roles.split(","), ttl=ttl)


class Client:
    """A python-socketio client that records every event it receives."""

    def __init__(self, url: str, token: str | None, namespaces: list[str] | None = None) -> None:
        self.url = url
        self.token = token
        self.namespaces = namespaces or ["/"]
        self.http = aiohttp.ClientSession()
        self.sio = socketio.AsyncClient(http_session=self.http, reconnection=False)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.disconnect_reasons: list[Any] = []
        for namespace in self.namespaces:
            self.sio.on("*", self._record, namespace=namespace)
        self.sio.on("disconnect", self._disconnected)
        self.sio.on("connect_error", self._connect_error)

    async def _record(self, event: str, *args: Any) -> None:
        self.events[event].append(args[0] if len(args) == 1 else list(args))

    async def _connect_error(self, data: Any = None) -> None:
        self.events["connect_error"].append(data)

    async def _disconnected(self, *args: Any) -> None:
        self.disconnect_reasons.append(args[0] if args else None)

    async def connect(self, transports: list[str] | None = None) -> Client:
        """Connect (WebSocket by default)."""
        auth = {"token": self.token} if self.token is not None else None
        await self.sio.connect(self.url, auth=auth, transports=transports or ["websocket"],
                               namespaces=self.namespaces, wait_timeout=5)
        return self

    async def call(self, event: str, data: Any = None, namespace: str = "/",
                   timeout: float = 5) -> Any:
        """Emit with an ack and return the ack."""
        if data is None:
            return await self.sio.call(event, namespace=namespace, timeout=timeout)
        return await self.sio.call(event, data, namespace=namespace, timeout=timeout)

    async def ok(self, event: str, data: Any = None, namespace: str = "/") -> Any:
        """Emit, expect ``ok: true`` and return the ack's data."""
        ack = await self.call(event, data, namespace)
        assert ack["ok"] is True, ack
        return ack["data"]

    async def wait_for(self, event: str, predicate: Any = None, timeout: float = 5) -> Any:
        """The first received ``event`` matching ``predicate`` (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.events[event]:
                if predicate is None or predicate(item):
                    return item
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {event} event matching within {timeout}s: "
                             f"{self.events[event][-5:]}")

    async def close(self) -> None:
        """Disconnect and close the HTTP session."""
        try:
            if self.sio.connected:
                await self.sio.disconnect()
        finally:
            await self.http.close()


@dataclass
class LiveServer:
    """An app booted on a real port, and the clients a test opened against it."""

    app: web.Application
    runner: web.AppRunner
    url: str
    clients: list[Client] = field(default_factory=list)

    async def client(self, sub: str = "alice", roles: str = "member", token: Any = MINT,
                     connect: bool = True, namespaces: list[str] | None = None) -> Client:
        """A connected client for user ``sub`` (``token=None`` sends no auth)."""
        if token is MINT:
            token = mint(sub, roles=roles)
        client = Client(self.url, token, namespaces)
        self.clients.append(client)
        return await client.connect() if connect else client

    def headers(self, sub: str = "alice", roles: str = "member") -> dict[str, str]:
        """An Authorization header for ``sub``."""
        return {"Authorization": f"Bearer {mint(sub, roles=roles)}"}

    async def stop(self) -> None:
        """Close clients, drain and stop the app."""
        for client in self.clients:
            await client.close()
        app = self.app
        await drain(app[LIFECYCLE], app[HUB], app[SIO], app[FANOUT], 0, 2)
        await self.runner.cleanup()


async def start_server(settings: Settings, plugins: list[Any] | None = None) -> LiveServer:
    """Boot ``create_app(settings)`` on a free port."""
    app = create_app(settings, plugins=plugins)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return LiveServer(app, runner, f"http://127.0.0.1:{port}")


class ServerProcess:
    """``gigvora serve`` in a child process (for kill -9 and SIGTERM tests)."""

    def __init__(self, data_dir: Path, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIGVORA_")},
                    "GIGVORA_DATA_DIR": str(data_dir), "GIGVORA_PORT": str(self.port),
                    "GIGVORA_JWT_SECRET": SECRET, "GIGVORA_LOG_LEVEL": "warning", **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        """Start and wait until it answers /readyz with 200."""
        self.proc = subprocess.Popen([sys.executable, "-m", "realtime.cli", "serve"],
                                     env=self.env, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        return self

    async def wait_ready(self, timeout: float = 40) -> None:
        """Poll /readyz until 200."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc is not None and self.proc.poll() is None, self.output()
                try:
                    async with http.get(self.url + "/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("server did not become ready: " + self.output())

    def output(self) -> str:
        """What the process printed so far (only once it has exited)."""
        if self.proc is None or self.proc.poll() is None or self.proc.stdout is None:
            return ""
        return self.proc.stdout.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        """Kill it if still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class RedisProcess:
    """A private ``redis-server`` on a free port (killable, stoppable, restartable)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        """Start it and wait until it accepts connections."""
        binary = os.environ.get("REDIS_SERVER", "redis-server")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no",
                                      "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def signal(self, sig: int) -> None:
        """Send a signal (SIGKILL, SIGSTOP, SIGCONT)."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig == 9:
            self.proc.wait(10)

    def stop(self) -> None:
        """Kill it if running (continuing it first if stopped)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(18)  # SIGCONT, in case it was stopped
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Cluster:
    """Server processes sharing one private Redis, and the clients a test opened on them."""

    redis: RedisProcess
    nodes: list[ServerProcess]
    clients: list[Client] = field(default_factory=list)

    async def client(self, node: int, sub: str) -> Client:
        """A connected client for user ``sub`` on node ``node`` (closed with the cluster)."""
        client = await Client(self.nodes[node].url, mint(sub)).connect()
        self.clients.append(client)
        return client

    async def readyz(self, node: int) -> dict[str, Any]:
        """Node ``node``'s readiness detail (as an operator)."""
        async with aiohttp.ClientSession() as http, http.get(
                self.nodes[node].url + "/readyz",
                headers={"Authorization": f"Bearer {mint('ops', roles='operator')}"}) as r:
            detail: dict[str, Any] = await r.json(content_type=None)
            return detail


@asynccontextmanager
async def start_cluster(workdir: Path, nodes: int = 2, own_dirs: bool = False,
                  **env: str) -> AsyncIterator[Cluster]:
    """Start a Redis and ``nodes`` servers on it (``GIGVORA_REDIS_URL`` set, plus ``env``),
    each in ``workdir`` or, with ``own_dirs``, in ``workdir/node<i>``; wait until all are
    ready; on exit close the clients, then stop the servers and Redis."""
    redis = RedisProcess(workdir).start()
    env = {"GIGVORA_REDIS_URL": redis.url, **env}
    made = Cluster(redis, [ServerProcess(workdir / f"node{i}" if own_dirs else workdir, **env)
                           for i in range(nodes)])
    try:
        for node in made.nodes:
            node.start()
        await asyncio.gather(*(node.wait_ready() for node in made.nodes))
        yield made
    finally:
        for client in made.clients:
            await client.close()
        for node in made.nodes:
            node.stop()
        made.redis.stop()
