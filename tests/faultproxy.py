"""A small asyncio TCP fault proxy for resilience drills (Toxiproxy and ``tc netem`` are not
available here): it forwards ``listen port → upstream`` and can, toggled at runtime,

* ``latency`` — delay every chunk in both directions by N seconds;
* ``blackhole`` — keep accepting and reading, forward nothing (a partition that never RSTs);
* ``reset`` — abort every open connection now and refuse (abort) new ones while set.

It runs on its own event loop in a daemon thread, so a test on any loop (or none) drives it with
plain method calls.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import suppress
from typing import Any

from tests.helpers import free_port


class FaultProxy:
    """``127.0.0.1:<port>`` → ``upstream_host:upstream_port`` with switchable faults."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.latency = 0.0
        self.blackhole = False
        self.refusing = False
        self.accepted = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """A Redis URL through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> FaultProxy:
        """Listen (returns once the socket is bound)."""
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Close everything and stop the thread."""
        self._call(self._close_all(listener=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def set_latency(self, seconds: float) -> None:
        """Delay every forwarded chunk by ``seconds`` (0 turns it off)."""
        self.latency = seconds

    def set_blackhole(self, on: bool) -> None:
        """Swallow traffic silently (connections stay open) while ``on``."""
        self.blackhole = on

    def reset(self, refuse: bool = True) -> None:
        """Abort every open connection; with ``refuse`` keep aborting new ones until
        :meth:`heal`."""
        self.refusing = refuse
        self._call(self._close_all(listener=False))

    def heal(self) -> None:
        """Back to a transparent proxy."""
        self.latency, self.blackhole, self.refusing = 0.0, False, False

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _close_all(self, listener: bool) -> None:
        if listener and self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if self.latency:
                    await asyncio.sleep(self.latency)
                if self.blackhole or writer.is_closing():
                    continue
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()  # one side ended: end the other, as a TCP proxy would
