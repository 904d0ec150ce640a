"""The fake's TCP server, on the test's loop or in a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading

from tests.fakes.mongo import handlers  # noqa: F401  (registers the command handlers)
from tests.fakes.mongo.commands import Commands
from tests.fakes.mongo.engine import CommandError, Engine
from tests.fakes.mongo.failpoints import CloseConnection
from tests.fakes.mongo.wire import (
    MORE_TO_COME,
    OP_MSG,
    ProtocolError,
    encode_reply,
    read_request,
)

log = logging.getLogger(__name__)


class FakeMongo:
    """A one-member replica set speaking the wire protocol on ``host:port`` (0: a free port);
    with ``set_name=None`` a standalone server (no transactions)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, set_name: str | None = "rs0",
                 transaction_lifetime_s: float = 60.0) -> None:
        self.host, self.port, self.set_name = host, port, set_name
        self.engine = Engine(transaction_lifetime_s)
        self.commands: Commands | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """A connection string for this server (database ``gigvora``)."""
        return f"mongodb://{self.host}:{self.port}/gigvora"

    async def start(self) -> FakeMongo:
        """Listen (on a free port when the port is 0)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.commands = Commands(self.engine, f"{self.host}:{self.port}", self.set_name)
        return self

    async def stop(self) -> None:
        """Close the listener and every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self.commands is not None
        self._connections.add(task)
        connection_id, app_name = next(self._ids), None
        try:
            while True:
                request = await read_request(reader)
                client = request.command.get("client")  # the handshake's metadata
                if isinstance(client, dict):
                    app_name = (client.get("application") or {}).get("name")
                try:
                    reply = await self.commands.run(request.database, request.command,
                                                    connection_id, app_name)
                except CloseConnection:
                    writer.transport.abort()
                    return
                except Exception as error:  # a bug in the fake: answer, keep the connection
                    log.exception("fake MongoDB failed on %s", next(iter(request.command)))
                    reply = CommandError(1, "InternalError", f"fake: {error!r}").reply()
                if request.op_code == OP_MSG and request.flags & MORE_TO_COME:
                    continue  # unacknowledged: no reply
                writer.write(encode_reply(request, reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except ProtocolError as error:
            log.warning("fake MongoDB closes a connection: %s", error)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class FakeMongoThread:
    """A FakeMongo on its own event loop in a daemon thread, so it serves while the test's
    loop is blocked (``asyncio.run`` in CLI code, subprocess waits) and other processes."""

    def __init__(self, **options: object) -> None:
        self.server = FakeMongo(**options)  # type: ignore[arg-type]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-mongo",
                                        daemon=True)

    @property
    def url(self) -> str:
        """See FakeMongo.url."""
        return self.server.url

    def start(self) -> FakeMongoThread:
        """Start the thread and wait until the server listens."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Stop the server, the loop and the thread."""
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
