"""Boot states and the SIGTERM drain.

States: ``booting`` → ``ready`` → ``draining`` → ``stopped``; ``/readyz`` is 200 only in ``ready``.
A drain: readiness goes 503 and new connections are refused; after a short grace (so the load
balancer notices) in-flight events finish (bounded), every client gets a clean Socket.IO
disconnect, pending frames are flushed, direct WebSockets get a 1001 close frame, then the
resources close in reverse boot order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

import socketio

from realtime.fanout import Fanout
from realtime.hub import Hub

log = logging.getLogger(__name__)
State = Literal["booting", "ready", "draining", "stopped"]


class Lifecycle:
    """Where the boot stands."""

    def __init__(self) -> None:
        self.state: State = "booting"
        self.since = time.time()

    def set(self, state: State) -> None:
        """Move to ``state`` (logged)."""
        self.state = state
        self.since = time.time()
        log.info("lifecycle", extra={"state": state})


async def drain(lifecycle: Lifecycle, hub: Hub, sio: socketio.AsyncServer, fanout: Fanout,
                grace: float, timeout: float) -> None:
    """Drain the server (idempotent): see the module docstring."""
    if lifecycle.state in ("draining", "stopped"):
        return
    lifecycle.set("draining")
    hub.accepting = False
    await asyncio.sleep(grace)
    deadline = time.monotonic() + timeout
    while hub.inflight and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await disconnect_all(sio)
    fanout.flush()
    fanout.close_all()  # Engine.IO connections left without a namespace (aiohttp no longer
    # holds the upgraded WebSockets, so its shutdown would not close them)
    log.info("drained", extra={"inflight_left": hub.inflight})


async def disconnect_all(sio: socketio.AsyncServer) -> None:
    """Send every client a Socket.IO disconnect and close its transport."""
    for namespace in list(sio.manager.get_namespaces()):
        sids = [sid for sid, _ in sio.manager.get_participants(namespace, None)]
        for start in range(0, len(sids), 500):
            await asyncio.gather(*(sio.disconnect(sid, namespace=namespace)
                                   for sid in sids[start:start + 500]), return_exceptions=True)
