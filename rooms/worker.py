"""A media worker process: ``python -m rooms.worker <fd>``, started by
:class:`rooms.workers.WorkerPool`.

It owns an :class:`rooms.sfu.Sfu` (the same peer connections and pass-through forwarding as
the in-process mode) on its own uvloop, and serves the main process's requests over the socket
``fd`` (frames of :mod:`rooms.ipc`). It knows nothing of rooms' roles or participants' sockets:
the main process keeps signalling and room state. It ignores SIGINT and SIGTERM (the main
process drains first, then closes the socket) and exits when the socket ends, so it never
outlives the main process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from realtime.errors import AppError
from realtime.observability import configure_logging
from realtime.tasks import TaskOwner
from rooms.ipc import FrameError, read_frame, write_frame
from rooms.media import check_aiortc_internals
from rooms.sfu import Publication, Sfu, SfuSettings, Subscription

log = logging.getLogger(__name__)


class MediaWorker:
    """The worker's peer connections, addressed by participant and subscription ids."""

    def __init__(self, settings: SfuSettings, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.tasks = TaskOwner("media-worker")
        self.sfu = Sfu(settings, self.tasks, self._dropped, self._keyframe)
        self.publications: dict[str, Publication] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self._dropped_counts: dict[str, int] = {}
        self._keyframes = 0
        self.ops: dict[str, Callable[..., Awaitable[Any]]] = {
            "publish": self.publish, "subscribe": self.subscribe, "answer": self.answer,
            "close_publication": self.close_publication,
            "close_subscription": self.close_subscription,
            "set_forwarding": self.set_forwarding, "sample": self.sample,
            "ping": self.ping}

    def _dropped(self, kind: str) -> None:
        self._dropped_counts[kind] = self._dropped_counts.get(kind, 0) + 1

    def _keyframe(self) -> None:
        self._keyframes += 1

    def notify(self, event: str, **data: Any) -> None:
        """A notification to the main process."""
        write_frame(self.writer, {"event": event, **data})

    async def handle(self, message: dict[str, Any]) -> None:
        """Run one request and answer it (errors travel as the service's ``AppError``)."""
        reply: dict[str, Any] = {"id": message.get("id"), "ok": True}
        try:
            op = self.ops.get(str(message.get("op")))
            if op is None:
                raise AppError("invalid", f"unknown operation {message.get('op')!r}")
            reply["result"] = await op(**message.get("args", {}))
        except asyncio.CancelledError:
            raise
        except AppError as error:
            reply = {**reply, "ok": False, "error": {"code": error.code, "message": error.message,
                                                     "details": error.details}}
        except Exception as error:
            log.exception("media worker operation failed", extra={"op": message.get("op")})
            reply = {**reply, "ok": False,
                     "error": {"code": "internal", "message": str(error)[:300], "details": {}}}
        write_frame(self.writer, reply)

    @staticmethod
    async def ping() -> dict[str, Any]:
        """Liveness (the main process kills a worker whose loop stops answering)."""
        return {}

    async def publish(self, room: str, participant_id: str, sdp: str) -> dict[str, Any]:
        """Answer a publisher's offer."""
        await self.close_publication(participant_id)
        publication, answer = await self.sfu.publish(
            room, participant_id, sdp,
            lambda: self.notify("publication_failed", participant_id=participant_id))
        self.publications[participant_id] = publication
        return {"sdp": answer, "kinds": publication.kinds}

    async def subscribe(self, subscriber_id: str, publisher_id: str) -> dict[str, Any]:
        """A server offer carrying a publication of this worker."""
        publication = self.publications.get(publisher_id)
        if publication is None:
            raise AppError("not_found", "that participant publishes nothing",
                           participant_id=publisher_id)
        holder: list[str] = []
        sub, offer = await self.sfu.subscribe(
            subscriber_id, publication,
            lambda: self.notify("subscription_failed", subscription_id="".join(holder)))
        holder.append(sub.id)
        self.subscriptions[sub.id] = sub
        return {"subscription_id": sub.id, "sdp": offer}

    async def answer(self, subscription_id: str, sdp: str) -> dict[str, Any]:
        """The subscriber's answer."""
        sub = self.subscriptions.get(subscription_id)
        if sub is None:
            raise AppError("not_found", "no such subscription", subscription_id=subscription_id)
        await self.sfu.accept_answer(sub, sdp)
        return {}

    async def close_publication(self, participant_id: str) -> dict[str, Any]:
        """Close a publication (its subscribers' copies end)."""
        publication = self.publications.pop(participant_id, None)
        if publication is not None:
            await self.sfu.close_publication(publication)
        return {}

    async def close_subscription(self, subscription_id: str) -> dict[str, Any]:
        """Close a subscription."""
        sub = self.subscriptions.pop(subscription_id, None)
        if sub is not None:
            await self.sfu.close_subscription(sub)
        return {}

    async def set_forwarding(self, participant_id: str, forwarding: dict[str, bool]
                             ) -> dict[str, Any]:
        """Mute or unmute kinds of a publication."""
        publication = self.publications.get(participant_id)
        if publication is not None:
            await self.sfu.set_forwarding(publication, forwarding)
        return {}

    async def sample(self) -> dict[str, Any]:
        """Telemetry of every connection here, with the counters since the last sample."""
        media = await self.sfu.sample(list(self.publications.values()),
                                      list(self.subscriptions.values()))
        media.dropped, self._dropped_counts = self._dropped_counts, {}
        media.keyframes, self._keyframes = self._keyframes, 0
        return media.to_wire()

    async def close(self) -> None:
        """Close every connection (the main process went away or asked us to stop)."""
        for sub in list(self.subscriptions):
            await self.close_subscription(sub)
        for participant_id in list(self.publications):
            await self.close_publication(participant_id)
        await self.tasks.close()


async def serve(sock: socket.socket) -> None:
    """Configure from the first frame, say ``ready``, then answer requests until EOF."""
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    config = (await read_frame(reader))["config"]
    configure_logging(config.get("log_level", "info"), config.get("log_format", "json"))
    settings = SfuSettings(config["forwarding"], tuple(config["ice_servers"]),
                           int(config["max_video_kbps"]), int(config["max_audio_kbps"]))
    if settings.forwarding == "passthrough":
        check_aiortc_internals()
    worker = MediaWorker(settings, writer)
    worker.notify("ready", pid=os.getpid())
    try:
        while True:
            message = await read_frame(reader)
            worker.tasks.spawn(worker.handle(message), name=f"op-{message.get('op')}")
    except (asyncio.IncompleteReadError, ConnectionError, FrameError):
        pass  # the main process closed the socket (shutdown) or died
    finally:
        await worker.close()
        writer.close()


def main() -> None:
    """Entry point of the child process."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)  # the main process drains, then closes the socket
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        import uvloop
        uvloop.run(serve(sock))
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(serve(sock))
    with contextlib.suppress(OSError):
        sock.close()


if __name__ == "__main__":
    main()
