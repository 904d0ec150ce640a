"""The rooms service: room state, peer connections and the events the room hears.

Socket handlers (``rooms.plugin``) parse and authorise, then call this. Operations on one room
are serialised by a per-room lock, so a kick never races a publish of the same participant.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from realtime.errors import AppError
from realtime.identity import Principal
from realtime.tasks import TaskOwner
from rooms import models as m
from rooms.backend import MediaBackend, PublicationHandle, SubscriptionHandle
from rooms.pins import PinGate
from rooms.sessions import SessionGate
from rooms.sfu import Sfu, SfuSettings
from rooms.state import STAFF_ROLES, Departure, Participant, Room, RoomLimits, RoomRegistry
from rooms.telemetry import RoomMetrics, TelemetrySampler
from rooms.workers import WorkerPool

log = logging.getLogger(__name__)
NS = "/rooms"
Emit = Callable[..., Awaitable[None]]
Audit = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class RoomsSettings:
    """The rooms' settings (``GIGVORA_ROOMS_*``)."""

    limits: RoomLimits = field(default_factory=RoomLimits)
    sfu: SfuSettings = field(default_factory=SfuSettings)
    telemetry_interval_s: float = 2.0
    #: Scheduled sessions: the reminder's lead time before the start, the scheduler's period.
    reminder_lead_s: float = 600.0
    scheduler_interval_s: float = 5.0
    #: Media worker processes (0: peer connections on the main event loop).
    media_workers: int = 0

    @classmethod
    def from_settings(cls, settings: Any) -> RoomsSettings:
        """Read ``GIGVORA_ROOMS_*`` fields (with these defaults until core declares them)."""
        def get(name: str, default: Any) -> Any:
            return getattr(settings, "rooms_" + name, default)
        raw = get("ice_servers", [])
        servers = json.loads(raw) if isinstance(raw, str) else raw
        return cls(RoomLimits(int(get("max_publishers", 6)), int(get("max_listeners", 50)),
                              float(get("kick_ban_s", 600.0))),
                   SfuSettings(get("forwarding", "passthrough"), tuple(servers or ()),
                               int(get("max_video_kbps", 1500)),
                               int(get("max_audio_kbps", 64))),
                   float(get("telemetry_interval_s", 2.0)),
                   float(get("reminder_lead_s", 600.0)),
                   float(get("scheduler_interval_s", 5.0)),
                   int(get("media_workers", 0)))


class RoomService:
    """Rooms of this node: joins, publications, subscriptions and controls."""

    def __init__(self, settings: RoomsSettings, emit: Emit, metrics_registry: Any = None,
                 audit: Audit | None = None, gate: SessionGate | None = None,
                 log_config: tuple[str, str] = ("info", "json"),
                 pins: PinGate | None = None) -> None:
        self.settings = settings
        self.emit = emit
        #: ``ctx.audit``: joins, leaves, publications and controls land in the audit trail.
        self.audit = audit
        #: Scheduled sessions' windows (joins of a session room outside it are refused).
        self.gate = gate or SessionGate()
        #: Room PINs (rooms that have PINs admit a member once with one).
        self.pins = pins or PinGate()
        self.registry = RoomRegistry(settings.limits)
        self.tasks = TaskOwner("rooms")
        self.publications: dict[str, PublicationHandle] = {}
        self.subscriptions: dict[str, SubscriptionHandle] = {}
        self.participants: dict[str, Participant] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.metrics = RoomMetrics(metrics_registry, self) if metrics_registry else None
        self.telemetry = TelemetrySampler(self, self.metrics, settings.telemetry_interval_s)
        self.sfu: MediaBackend[Any, Any]
        if settings.media_workers > 0:
            self.sfu = WorkerPool(settings.sfu, settings.media_workers, log_config)
        else:
            self.sfu = Sfu(settings.sfu, self.tasks, self._dropped, self._keyframe)

    async def start(self) -> None:
        """Start the media backend (media workers: spawned and ready)."""
        await self.sfu.start()

    def _dropped(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.dropped.labels(kind).inc()

    def _keyframe(self) -> None:
        if self.metrics is not None:
            self.metrics.keyframes.inc()

    @asynccontextmanager
    async def _room_lock(self, room: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(room, asyncio.Lock())
        async with lock:
            yield
        if room not in self.registry.rooms and not lock.locked():
            self._locks.pop(room, None)

    async def _send(self, room: Room, event: str, data: dict[str, Any],
                    exclude: str | None = None) -> None:
        for participant in list(room.participants.values()):
            if participant.id != exclude:
                await self.emit(event, data, to=participant.sid, namespace=NS)

    # joining and leaving -----------------------------------------------------------------------
    async def join(self, sid: str, who: Principal, body: m.JoinIn) -> dict[str, Any]:
        """Admit the caller; the ack lists publishers and ICE servers."""
        staff = who.has_any(STAFF_ROLES)
        try:  # the PIN first, outside the room's lock (checking a PIN hash takes a while)
            session = self.gate.check(body.room, who.sub, staff)
            admitted = await self.pins.check(
                body.room, who.sub, staff or (session is not None and session.host_id == who.sub),
                body.pin)
        except AppError as error:
            self._count_join(error.details.get("reason", error.code))
            raise
        async with self._room_lock(body.room):
            try:
                session = self.gate.check(body.room, who.sub, staff)
                participant = self.registry.join(
                    body.room, sid, who.sub, who.name, who.roles, body.role,
                    host=None if session is None else session.host_id == who.sub)
            except AppError as error:
                self._count_join(error.details.get("reason", error.code))
                raise
            self._count_join("ok")
            self.participants[participant.id] = participant
            self._audit(participant, "room_join", role=participant.role,
                        session_id=session.id if session else None, admitted=admitted)
            room = self.registry.room(body.room)
            await self._send(room, "room:joined", {"room": room.id, **participant.public()},
                             exclude=participant.id)
            return {"room": room.id, "participant_id": participant.id,
                    "role": participant.role, "locked": room.locked,
                    "publishers": [self._published(p) for p in room.publishers()],
                    "participants": [p.public() for p in room.participants.values()],
                    "ice_servers": list(self.settings.sfu.ice_servers)}

    def _audit(self, actor: Participant, action: str, target: Participant | None = None,
               reason: str = "", **details: Any) -> None:
        """An audit entry (written in the background: signalling does not wait for the
        store). The actor is a user; the target is the room, or a user for controls."""
        if self.audit is None:
            return
        target_type, target_id = ("user", target.user_id) if target else ("room", actor.room)
        entry = {"room": actor.room, "participant_id": actor.id, **details}
        if target is not None:
            entry["target_participant_id"] = target.id
        self.tasks.spawn(self._write_audit(actor.user_id, action, target_type, target_id,
                                           reason, entry), name="rooms-audit")

    async def _write_audit(self, *entry: Any) -> None:
        assert self.audit is not None
        try:
            await self.audit(*entry)
        except Exception:
            log.exception("room audit entry not written", extra={"action": entry[1]})

    def _count_join(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.joins.labels(outcome).inc()

    @staticmethod
    def _published(participant: Participant) -> dict[str, Any]:
        return {"participant_id": participant.id, "user": participant.user(),
                "kinds": list(participant.published),
                "muted": sorted(k for k in ("audio", "video") if participant.muted(k))}

    async def leave(self, sid: str, body: m.RoomIn) -> dict[str, Any]:
        """Leave a room (closing this participant's connections)."""
        async with self._room_lock(body.room):
            participant = self.registry.member(body.room, sid)
            await self._depart(self.registry.leave(body.room, participant.id), "left")
        return {}

    async def disconnected(self, sid: str) -> None:
        """A socket went away: leave every room it was in."""
        for participant in self.registry.of_sid(sid):
            async with self._room_lock(participant.room):
                if participant.id in self.participants:
                    await self._depart(self.registry.leave(participant.room, participant.id),
                                       "disconnected")

    async def _depart(self, departure: Departure, reason: str, by: str | None = None) -> None:
        gone = departure.participant
        self.participants.pop(gone.id, None)
        self.telemetry.client.pop(gone.id, None)
        if reason != "kicked":  # a kick is audited as such
            self._audit(gone, "room_leave", reason=reason)
        await self._close_media_of(gone)
        if departure.room_closed:
            return
        room = self.registry.room(gone.room)
        await self._send(room, "room:left", {"room": room.id, "participant_id": gone.id,
                                             "reason": reason, "by": by})
        if departure.new_host is not None:
            await self._send(room, "room:host", {"room": room.id,
                                                 "participant_id": departure.new_host.id})

    async def _close_media_of(self, participant: Participant) -> None:
        """Close the participant's publication (and everyone's subscriptions to it) and its own
        subscriptions."""
        await self._unpublish(participant.id)
        for sub in [s for s in self.subscriptions.values() if s.subscriber_id == participant.id]:
            await self._close_subscription(sub)

    async def _unpublish(self, participant_id: str) -> bool:
        publication = self.publications.pop(participant_id, None)
        if publication is None:
            return False
        for sub in [s for s in self.subscriptions.values()
                    if s.publisher_id == participant_id]:
            await self._close_subscription(sub)
        await self.sfu.close_publication(publication)
        return True

    async def _close_subscription(self, sub: SubscriptionHandle) -> None:
        self.subscriptions.pop(sub.id, None)
        await self.sfu.close_subscription(sub)

    # media -------------------------------------------------------------------------------------
    async def publish(self, sid: str, body: m.PublishIn) -> dict[str, Any]:
        """Answer the caller's offer; the room hears ``room:published``."""
        async with self._room_lock(body.room):
            participant = self.registry.member(body.room, sid)
            if not participant.can_publish:
                raise AppError("forbidden", "listeners cannot publish", reason="listener")
            replaced = await self._unpublish(participant.id)
            room = self.registry.room(body.room)
            if replaced:
                participant.published = []
                await self._send(room, "room:unpublished", {"room": room.id,
                                                            "participant_id": participant.id})
            publication, answer = await self.sfu.publish(
                body.room, participant.id, body.sdp,
                lambda: self._failed_publication(participant))
            try:
                self.registry.publish(body.room, participant.id, publication.kinds)
            except AppError:
                await self.sfu.close_publication(publication)
                raise
            self.publications[participant.id] = publication
            await self._apply_mute(participant)
            self._audit(participant, "room_publish", kinds=list(publication.kinds))
            await self._send(room, "room:published", {"room": room.id,
                                                      **self._published(participant)},
                             exclude=participant.id)
            return {"sdp": answer, "type": "answer", "kinds": publication.kinds}

    def _failed_publication(self, participant: Participant) -> None:
        self.tasks.spawn(self._drop_failed(participant), name="publication-failed")

    async def _drop_failed(self, participant: Participant) -> None:
        async with self._room_lock(participant.room):
            if participant.id not in self.participants:
                return
            if await self._unpublish(participant.id):
                participant.published = []
                room = self.registry.room(participant.room)
                await self._send(room, "room:unpublished", {"room": room.id,
                                                            "participant_id": participant.id,
                                                            "reason": "failed"})

    async def subscribe(self, sid: str, body: m.SubscribeIn) -> dict[str, Any]:
        """A server offer carrying the publisher's tracks."""
        async with self._room_lock(body.room):
            subscriber = self.registry.member(body.room, sid)
            publisher = self.registry.room(body.room).get(body.publisher)
            publication = self.publications.get(publisher.id)
            if publication is None:
                raise AppError("not_found", "that participant publishes nothing",
                               participant_id=publisher.id)
            if publisher.id == subscriber.id:
                raise AppError("invalid", "subscribe to others, not to yourself")
            sub, offer = await self.sfu.subscribe(subscriber.id, publication,
                                                  lambda: self._failed_subscription(sid))
            self.subscriptions[sub.id] = sub
            return {"subscription_id": sub.id, "sdp": offer, "type": "offer",
                    "publisher": publisher.id, "kinds": publication.kinds}

    def _failed_subscription(self, sid: str) -> None:
        self.tasks.spawn(self._drop_failed_subscriptions(sid), name="subscription-failed")

    async def _drop_failed_subscriptions(self, sid: str) -> None:
        mine = {p.id for p in self.registry.of_sid(sid)}
        for sub in [s for s in self.subscriptions.values() if s.subscriber_id in mine
                    and s.failed]:
            await self._close_subscription(sub)
            await self.emit("rtc:subscription_closed", {"subscription_id": sub.id,
                                                        "reason": "failed"}, to=sid,
                            namespace=NS)

    def _own_subscription(self, sid: str, subscription_id: str) -> SubscriptionHandle:
        sub = self.subscriptions.get(subscription_id)
        owner = self.participants.get(sub.subscriber_id) if sub else None
        if sub is None or owner is None or owner.sid != sid:
            raise AppError("not_found", "no such subscription", subscription_id=subscription_id)
        return sub

    async def answer(self, sid: str, body: m.AnswerIn) -> dict[str, Any]:
        """The caller's answer to a subscription offer."""
        await self.sfu.accept_answer(self._own_subscription(sid, body.subscription_id), body.sdp)
        return {}

    async def unsubscribe(self, sid: str, body: m.UnsubscribeIn) -> dict[str, Any]:
        """Stop receiving a publisher."""
        await self._close_subscription(self._own_subscription(sid, body.subscription_id))
        return {}

    # controls ----------------------------------------------------------------------------------
    async def _apply_mute(self, participant: Participant) -> None:
        publication = self.publications.get(participant.id)
        if publication is not None:
            await self.sfu.set_forwarding(publication, {kind: not participant.muted(kind)
                                                        for kind in set(publication.kinds)})

    async def mute(self, sid: str, body: m.MuteIn) -> dict[str, Any]:
        """Mute or unmute yourself, or (hosts, moderators) someone else."""
        async with self._room_lock(body.room):
            actor = self.registry.member(body.room, sid)
            target_id = body.participant_id or actor.id
            changed = self.registry.set_muted(body.room, actor, target_id, body.kinds,
                                              body.muted)
            target = self.registry.room(body.room).get(target_id)
            await self._apply_mute(target)
            if target.id != actor.id:
                self._audit(actor, "room_mute" if body.muted else "room_unmute", target,
                            kinds=list(body.kinds), changed=changed)
            event = {"room": body.room, "participant_id": target.id, "kinds": list(body.kinds),
                     "muted": body.muted, "by": actor.id,
                     "state": sorted(k for k in ("audio", "video") if target.muted(k)),
                     "host_muted": sorted(target.host_muted)}
            await self._send(self.registry.room(body.room), "room:muted", event)
            return {**event, "changed": changed}

    async def kick(self, sid: str, body: m.KickIn) -> dict[str, Any]:
        """Remove a participant (hosts, moderators): forwarding stops, connections close."""
        async with self._room_lock(body.room):
            actor = self.registry.member(body.room, sid)
            departure = self.registry.kick(body.room, actor, body.participant_id)
            gone = departure.participant
            await self.emit("room:kicked", {"room": body.room, "participant_id": gone.id,
                                            "by": actor.id, "reason": body.reason},
                            to=gone.sid, namespace=NS)
            await self._depart(departure, "kicked", by=actor.id)
            if self.metrics is not None:
                self.metrics.kicks.inc()
            self._audit(actor, "room_kick", gone, body.reason,
                        ban_s=self.settings.limits.kick_ban_s)
            log.info("participant kicked", extra={"room": body.room, "participant": gone.id,
                                                  "by": actor.id})
            return {"participant_id": gone.id}

    async def lock(self, sid: str, body: m.LockIn) -> dict[str, Any]:
        """Lock or unlock the room (hosts, moderators)."""
        async with self._room_lock(body.room):
            actor = self.registry.member(body.room, sid)
            changed = self.registry.set_locked(body.room, actor, body.locked)
            if changed:
                self._audit(actor, "room_lock" if body.locked else "room_unlock")
            event = {"room": body.room, "locked": body.locked, "by": actor.id}
            await self._send(self.registry.room(body.room), "room:locked", event)
            return event

    async def client_stats(self, sid: str, body: m.StatsIn) -> dict[str, Any]:
        """A browser's own ``getStats()`` figures."""
        participant = self.registry.member(body.room, sid)
        return {"accepted": self.telemetry.client_report(participant.id, body.reports)}

    # lifecycle ---------------------------------------------------------------------------------
    async def close_room(self, room_id: str, reason: str, details: dict[str, Any]) -> int:
        """Close a room (a session ended or was cancelled): everyone hears ``room:closed``,
        every connection closes. Returns how many participants were removed."""
        async with self._room_lock(room_id):
            room = self.registry.rooms.get(room_id)
            if room is None:
                return 0
            gone = list(room.participants.values())
            for participant in gone:
                await self.emit("room:closed", {"room": room_id, "reason": reason, **details},
                                to=participant.sid, namespace=NS)
            for participant in gone:
                self.registry.leave(room_id, participant.id)
                self.participants.pop(participant.id, None)
                self.telemetry.client.pop(participant.id, None)
                self._audit(participant, "room_leave", reason=reason)
                await self._close_media_of(participant)
            log.info("room closed", extra={"room": room_id, "reason": reason,
                                           "participants": len(gone)})
            return len(gone)

    async def close(self) -> None:
        """Shutdown: close every connection and task."""
        for sub in list(self.subscriptions.values()):
            await self._close_subscription(sub)
        for participant_id in list(self.publications):
            await self._unpublish(participant_id)
        await self.sfu.close()
        await self.tasks.close()
