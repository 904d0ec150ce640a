"""Media worker processes (``GIGVORA_ROOMS_MEDIA_WORKERS=N``): the main process keeps
signalling and room state; the peer connections of each room live in one worker process.

:class:`WorkerPool` implements :class:`rooms.backend.MediaBackend` over N children
(``python -m rooms.worker``, see :mod:`rooms.worker`), each reached through a Unix socket pair
carrying :mod:`rooms.ipc` frames. Everything here is asynchronous: spawning, calls, replies
and the death of a child never block the event loop.

- **Pinning.** A room's first publication pins it to the running worker hosting the fewest
  rooms; every later publication and subscription of the room goes there (forwarding stays
  inside one process). The pin is dropped when the room's last connection there closes.
- **Death.** A worker whose socket ends (crash, SIGKILL, OOM) is detected at once: pending
  calls fail with ``unavailable``, every publication and subscription it held is reported
  failed (the service tells the room ``room:unpublished`` reason ``failed`` and subscribers
  ``rtc:subscription_closed``), its rooms are unpinned, and it is restarted with a back-off.
  Clients publish or subscribe again (aiortc has no ICE restart anyway). A worker that stops
  answering pings (``HEARTBEAT_TIMEOUT_S``) is killed and handled the same way.
- **Stop.** The pool closes each socket: the worker closes its connections and exits; a
  worker still alive after ``STOP_TIMEOUT_S`` is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime.errors import AppError
from realtime.tasks import TaskOwner
from rooms.backend import MediaSample
from rooms.ipc import FrameError, read_frame, write_frame
from rooms.sfu import SfuSettings

log = logging.getLogger(__name__)
#: A worker must say ``ready`` within this (it imports aiortc and av).
READY_TIMEOUT_S = 30.0
#: Offers and answers gather ICE candidates: a call may take this long.
CALL_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
#: Liveness: every worker is pinged this often; one that does not answer within the timeout
#: (a hung loop, a stopped process) is killed, then handled as dead.
HEARTBEAT_S = 5.0
HEARTBEAT_TIMEOUT_S = 10.0
RESTART_BACKOFF_S = (0.2, 30.0)
_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(slots=True, eq=False)
class RemotePublication:
    """A publication living in a media worker."""

    participant_id: str
    room: str
    worker: WorkerProcess
    generation: int
    kinds: list[str] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class RemoteSubscription:
    """A subscription living in a media worker (the worker of its publication)."""

    id: str
    subscriber_id: str
    publisher_id: str
    room: str
    worker: WorkerProcess
    generation: int
    failed: bool = False


Remote = RemotePublication | RemoteSubscription


class WorkerProcess:
    """One media worker: its child process, its socket, its pending calls, what it hosts."""

    def __init__(self, index: int, config: dict[str, Any]) -> None:
        self.index = index
        self.config = config
        self.state = "starting"
        self.pid: int | None = None
        self.generation = 0
        self.restarts = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reader: asyncio.StreamReader | None = None
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        #: Live handles by key (``p:<participant>`` / ``s:<subscription>``) with their
        #: ``on_failed`` callbacks; rooms hosted here with how many handles each.
        self.watchers: dict[str, tuple[Remote, Callable[[], None]]] = {}
        self.rooms: dict[str, int] = {}
        self._ids = itertools.count(1)

    @property
    def running(self) -> bool:
        """Ready for calls."""
        return self.state == "running"

    async def launch(self) -> None:
        """Spawn the child, send its configuration, wait for ``ready``."""
        parent, child = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p)}
        self.writer = None
        try:
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "rooms.worker", str(child.fileno()),
                    pass_fds=(child.fileno(),), env=env, stdin=asyncio.subprocess.DEVNULL)
            finally:
                child.close()
            self.reader, self.writer = await asyncio.open_unix_connection(sock=parent)
            write_frame(self.writer, {"config": self.config})
            async with asyncio.timeout(READY_TIMEOUT_S):
                hello = await read_frame(self.reader)
        except BaseException:
            await self.kill()
            if self.writer is None:
                parent.close()
            raise
        self.pid = int(hello.get("pid") or self.proc.pid)
        self.state = "running"
        log.info("media worker ready", extra={"worker": self.index, "pid": self.pid})

    async def serve(self, notify: Callable[[WorkerProcess, dict[str, Any]], None]) -> int:
        """Read replies and notifications until the socket ends; returns the exit code."""
        assert self.reader is not None and self.proc is not None
        try:
            while True:
                message = await read_frame(self.reader)
                future = self.pending.get(message.get("id") or 0)
                if future is not None and not future.done():
                    future.set_result(message)
                elif "event" in message:
                    notify(self, message)
        except (asyncio.IncompleteReadError, ConnectionError, FrameError):
            pass
        self.state = "stopped"
        if self.writer is not None:
            self.writer.close()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                return await self.proc.wait()
        except TimeoutError:
            await self.kill()
            return await self.proc.wait()

    async def call(self, op: str, timeout: float = CALL_TIMEOUT_S, **args: Any) -> Any:
        """One request; the worker's ``AppError`` is raised here."""
        if not self.running or self.writer is None:
            raise AppError("unavailable", "the room's media worker is restarting",
                           reason="media_worker_down")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        try:
            write_frame(self.writer, {"id": request_id, "op": op, "args": args})
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            raise AppError("unavailable", "the media worker did not answer in time",
                           reason="media_worker_timeout") from None
        finally:
            self.pending.pop(request_id, None)
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise AppError(str(error.get("code", "internal")), str(error.get("message", "")),
                           **(error.get("details") or {}))
        return reply.get("result")

    def fail_pending(self) -> None:
        """The worker died: every call waiting for it fails."""
        for future in self.pending.values():
            if not future.done():
                future.set_exception(AppError("unavailable", "the media worker stopped",
                                              reason="media_worker_lost"))
        self.pending.clear()

    async def kill(self) -> None:
        """SIGKILL the child if it still runs (its exit is awaited by ``serve``)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        if self.writer is not None:
            self.writer.close()

    def status(self) -> dict[str, Any]:
        """Readiness detail of this worker."""
        return {"index": self.index, "state": self.state, "pid": self.pid,
                "rooms": len(self.rooms), "connections": len(self.watchers),
                "restarts": self.restarts}


class WorkerPool:
    """N media workers behind the :class:`rooms.backend.MediaBackend` interface."""

    def __init__(self, settings: SfuSettings, count: int,
                 log_config: tuple[str, str] = ("info", "json")) -> None:
        config = {"forwarding": settings.forwarding, "ice_servers": list(settings.ice_servers),
                  "max_video_kbps": settings.max_video_kbps,
                  "max_audio_kbps": settings.max_audio_kbps,
                  "log_level": log_config[0], "log_format": log_config[1]}
        self.workers = [WorkerProcess(index, config) for index in range(count)]
        self.pins: dict[str, WorkerProcess] = {}
        self.tasks = TaskOwner("media-workers")
        self.closing = False

    # lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Spawn every worker (concurrently) and supervise them; a worker that does not
        start fails the boot (and the others are stopped)."""
        launched = await asyncio.gather(*(worker.launch() for worker in self.workers),
                                        return_exceptions=True)
        failed = [error for error in launched if isinstance(error, BaseException)]
        if failed:
            await self.close()
            raise RuntimeError(f"media workers did not start: {failed[0]!r}") from failed[0]
        for worker in self.workers:
            self.tasks.spawn(self._supervise(worker), name=f"media-worker-{worker.index}")
            self.tasks.spawn(self._watchdog(worker), name=f"media-worker-{worker.index}-ping")

    async def _supervise(self, worker: WorkerProcess) -> None:
        """Serve the worker; when it dies, report its media failed and restart it."""
        delay = RESTART_BACKOFF_S[0]
        while True:
            if worker.running:
                code = await worker.serve(self._notified)
                if self.closing:
                    return
                log.error("media worker died", extra={"worker": worker.index,
                                                      "pid": worker.pid, "exit_code": code})
                self._lost(worker)
            await asyncio.sleep(delay)
            worker.state = "restarting"
            try:
                await worker.launch()
                worker.restarts += 1
                delay = RESTART_BACKOFF_S[0]
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("media worker did not start", extra={"worker": worker.index})
                delay = min(delay * 2, RESTART_BACKOFF_S[1])

    async def _watchdog(self, worker: WorkerProcess) -> None:
        """Kill a running worker that does not answer a ping in time (its death is then
        detected and handled by ``_supervise``)."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if not worker.running:
                continue
            try:
                await worker.call("ping", timeout=HEARTBEAT_TIMEOUT_S)
            except AppError as error:
                if error.details.get("reason") == "media_worker_timeout" and worker.running:
                    log.error("media worker does not answer: killing it",
                              extra={"worker": worker.index, "pid": worker.pid})
                    await worker.kill()

    def _lost(self, worker: WorkerProcess) -> None:
        worker.generation += 1
        worker.fail_pending()
        for room in [r for r, w in self.pins.items() if w is worker]:
            del self.pins[room]
        watchers, worker.watchers = worker.watchers, {}
        worker.rooms.clear()
        for handle, on_failed in watchers.values():
            if isinstance(handle, RemoteSubscription):
                handle.failed = True
            on_failed()

    async def close(self) -> None:
        """Stop every worker: close its socket (it closes its connections and exits)."""
        self.closing = True
        for worker in self.workers:
            if worker.writer is not None:
                worker.writer.close()
        for worker in self.workers:
            if worker.proc is None:
                continue
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await worker.proc.wait()
            except TimeoutError:
                await worker.kill()
                await worker.proc.wait()
            worker.state = "stopped"
        await self.tasks.close()

    def status(self) -> dict[str, Any]:
        """Readiness detail: every worker's state."""
        return {"media_workers": len(self.workers),
                "workers": [worker.status() for worker in self.workers]}

    # notifications -----------------------------------------------------------------------------
    def _notified(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "publication_failed":
            key = f"p:{message.get('participant_id')}"
        elif event == "subscription_failed":
            key = f"s:{message.get('subscription_id')}"
        else:
            return
        watched = worker.watchers.get(key)
        if watched is not None:
            handle, on_failed = watched
            if isinstance(handle, RemoteSubscription):
                handle.failed = True
            on_failed()

    # placement -----------------------------------------------------------------------------------
    def _pick(self, room: str) -> WorkerProcess:
        pinned = self.pins.get(room)
        if pinned is not None and pinned.running:
            return pinned
        running = [w for w in self.workers if w.running]
        if not running:
            raise AppError("unavailable", "no media worker is running",
                           reason="media_worker_down")
        chosen = min(running, key=lambda w: (len(w.rooms), w.index))
        self.pins[room] = chosen
        return chosen

    def _hold(self, handle: Remote, key: str, on_failed: Callable[[], None]) -> None:
        worker = handle.worker
        worker.watchers[key] = (handle, on_failed)
        worker.rooms[handle.room] = worker.rooms.get(handle.room, 0) + 1

    def _release(self, handle: Remote, key: str) -> bool:
        """Forget a handle; True if its worker still holds it (then close it there)."""
        worker = handle.worker
        if handle.generation != worker.generation or worker.watchers.pop(key, None) is None:
            return False
        left = worker.rooms.get(handle.room, 1) - 1
        if left > 0:
            worker.rooms[handle.room] = left
        else:
            worker.rooms.pop(handle.room, None)
            if self.pins.get(handle.room) is worker:
                del self.pins[handle.room]
        return worker.running

    def _unpin_if_empty(self, room: str, worker: WorkerProcess) -> None:
        if not worker.rooms.get(room) and self.pins.get(room) is worker:
            del self.pins[room]

    # MediaBackend --------------------------------------------------------------------------------
    async def publish(self, room: str, participant_id: str, offer_sdp: str,
                      on_failed: Callable[[], None]) -> tuple[RemotePublication, str]:
        """Answer the offer in the room's worker."""
        worker = self._pick(room)
        generation = worker.generation
        try:
            result = await worker.call("publish", room=room, participant_id=participant_id,
                                       sdp=offer_sdp)
        except BaseException:
            self._unpin_if_empty(room, worker)
            raise
        publication = RemotePublication(participant_id, room, worker, generation,
                                        list(result["kinds"]))
        if generation != worker.generation:  # died while answering
            raise AppError("unavailable", "the media worker stopped", reason="media_worker_lost")
        self._hold(publication, f"p:{participant_id}", on_failed)
        return publication, str(result["sdp"])

    async def subscribe(self, subscriber_id: str, publication: RemotePublication,
                        on_failed: Callable[[], None]) -> tuple[RemoteSubscription, str]:
        """A server offer from the publication's worker."""
        worker = publication.worker
        if publication.generation != worker.generation:
            raise AppError("unavailable", "the publisher's media worker stopped",
                           reason="media_worker_lost")
        result = await worker.call("subscribe", subscriber_id=subscriber_id,
                                   publisher_id=publication.participant_id)
        sub = RemoteSubscription(str(result["subscription_id"]), subscriber_id,
                                 publication.participant_id, publication.room, worker,
                                 publication.generation)
        if sub.generation != worker.generation:
            raise AppError("unavailable", "the media worker stopped", reason="media_worker_lost")
        self._hold(sub, f"s:{sub.id}", on_failed)
        return sub, str(result["sdp"])

    async def accept_answer(self, subscription: RemoteSubscription, answer_sdp: str) -> None:
        """The subscriber's answer, to the subscription's worker."""
        if subscription.generation != subscription.worker.generation:
            raise AppError("unavailable", "the media worker stopped", reason="media_worker_lost")
        await subscription.worker.call("answer", subscription_id=subscription.id,
                                       sdp=answer_sdp)

    async def close_publication(self, publication: RemotePublication) -> None:
        """Close it in its worker (nothing to do if that worker died)."""
        if self._release(publication, f"p:{publication.participant_id}"):
            await self._quietly(publication.worker, "close_publication",
                                participant_id=publication.participant_id)

    async def close_subscription(self, subscription: RemoteSubscription) -> None:
        """Close it in its worker (nothing to do if that worker died)."""
        if self._release(subscription, f"s:{subscription.id}"):
            await self._quietly(subscription.worker, "close_subscription",
                                subscription_id=subscription.id)

    async def set_forwarding(self, publication: RemotePublication,
                             forwarding: dict[str, bool]) -> None:
        """Mute or unmute kinds, in the publication's worker (if that worker just died, the
        publication is being dropped anyway: nothing is forwarded)."""
        if publication.generation == publication.worker.generation:
            await self._quietly(publication.worker, "set_forwarding",
                                participant_id=publication.participant_id,
                                forwarding=forwarding)

    async def sample(self, publications: Sequence[RemotePublication],
                     subscriptions: Sequence[RemoteSubscription]) -> MediaSample:
        """Every busy worker's sample of all it holds, merged (the handles are not needed:
        a worker samples its own connections; one that does not answer is skipped this
        time)."""
        running = [w for w in self.workers if w.running and w.watchers]
        replies = await asyncio.gather(*(w.call("sample", timeout=5.0) for w in running),
                                       return_exceptions=True)
        merged = MediaSample()
        for worker, reply in zip(running, replies, strict=True):
            if isinstance(reply, BaseException):
                log.warning("media worker sample failed", extra={"worker": worker.index,
                                                                 "error": repr(reply)})
            else:
                merged.merge(MediaSample.from_wire(reply))
        return merged

    @staticmethod
    async def _quietly(worker: WorkerProcess, op: str, **args: Any) -> None:
        """A close or a mute: a worker that died meanwhile forwards nothing anyway."""
        try:
            await worker.call(op, **args)
        except AppError as error:
            if error.code != "unavailable":
                raise
            log.info("media worker call skipped", extra={"op": op, "error": error.message})
