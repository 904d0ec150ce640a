"""Rooms, participants and roles: the pure state machine (no I/O, no media).

A room exists from its first join until its last participant leaves. The first joiner — or any
moderator/admin — is a host. Everyone else is a publisher (may send camera and microphone) or a
listener (receives only); each class has its own capacity. Hosts and staff mute others, kick and
lock; a kicked user cannot rejoin the same room for ``kick_ban_s``.

Every refusal is an :class:`~realtime.errors.AppError` with a ``reason`` detail
(``room_full``, ``room_locked``, ``kicked``, ``not_host``, ...), so clients can branch on it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from realtime.errors import AppError

Role = Literal["host", "publisher", "listener"]
Kind = Literal["audio", "video"]
KINDS: tuple[Kind, ...] = ("audio", "video")
#: Roles that moderate every room without being its host.
STAFF_ROLES = frozenset({"moderator", "admin"})


@dataclass(frozen=True, slots=True)
class RoomLimits:
    """Capacity and moderation limits of every room."""

    max_publishers: int = 6
    max_listeners: int = 50
    kick_ban_s: float = 600.0


@dataclass(slots=True)
class Participant:
    """One socket's presence in one room."""

    id: str
    room: str
    sid: str
    user_id: str
    name: str
    role: Role
    staff: bool
    joined_at: float
    #: Kinds the participant muted themselves.
    self_muted: set[str] = field(default_factory=set)
    #: Kinds a host or moderator muted; only they can lift it.
    host_muted: set[str] = field(default_factory=set)
    #: Kinds of the tracks currently published (in m-line order).
    published: list[str] = field(default_factory=list)

    @property
    def can_publish(self) -> bool:
        """Hosts and publishers may publish; listeners receive only."""
        return self.role != "listener"

    @property
    def moderates(self) -> bool:
        """Hosts and staff moderate the room."""
        return self.role == "host" or self.staff

    def muted(self, kind: str) -> bool:
        """True while ``kind`` must not be forwarded (self- or host-muted)."""
        return kind in self.self_muted or kind in self.host_muted

    def user(self) -> dict[str, str]:
        """The ``{"id", "name"}`` shape used in events."""
        return {"id": self.user_id, "name": self.name}

    def public(self) -> dict[str, object]:
        """The participant as shown to the room."""
        return {"participant_id": self.id, "user": self.user(), "role": self.role,
                "kinds": list(self.published),
                "muted": sorted(k for k in KINDS if self.muted(k)),
                "host_muted": sorted(self.host_muted)}


@dataclass(slots=True)
class Room:
    """One room: its participants (by id, in join order), lock and kick bans."""

    id: str
    limits: RoomLimits
    created_at: float
    locked: bool = False
    participants: dict[str, Participant] = field(default_factory=dict)
    #: user id → monotonic time until which a kicked user may not rejoin.
    banned: dict[str, float] = field(default_factory=dict)

    def count(self, listeners: bool) -> int:
        """How many listeners (or publishers and hosts) are present."""
        return sum(1 for p in self.participants.values()
                   if (p.role == "listener") == listeners)

    def hosts(self) -> list[Participant]:
        """The hosts, in join order."""
        return [p for p in self.participants.values() if p.role == "host"]

    def publishers(self) -> list[Participant]:
        """Participants with published tracks, in join order."""
        return [p for p in self.participants.values() if p.published]

    def get(self, participant_id: str) -> Participant:
        """The participant, or ``not_found``."""
        found = self.participants.get(participant_id)
        if found is None:
            raise AppError("not_found", "no such participant in this room",
                           participant_id=participant_id)
        return found

    def summary(self) -> dict[str, object]:
        """Counts for operators (no user ids)."""
        return {"room": self.id, "locked": self.locked,
                "publishers": self.count(listeners=False),
                "listeners": self.count(listeners=True),
                "publishing": len(self.publishers()),
                "max_publishers": self.limits.max_publishers,
                "max_listeners": self.limits.max_listeners}


@dataclass(frozen=True, slots=True)
class Departure:
    """What a leave or kick changed: who left, and a new host if one was promoted."""

    participant: Participant
    new_host: Participant | None
    room_closed: bool


class RoomRegistry:
    """Every room of this node. Pure state: callers do the signalling and the media."""

    def __init__(self, limits: RoomLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or RoomLimits()
        self._clock = clock
        self.rooms: dict[str, Room] = {}

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self.rooms.values()))

    def room(self, room_id: str) -> Room:
        """An open room, or ``not_found``."""
        found = self.rooms.get(room_id)
        if found is None:
            raise AppError("not_found", "no such room", room=room_id)
        return found

    def member(self, room_id: str, sid: str) -> Participant:
        """The participant of socket ``sid`` in ``room_id``, or ``forbidden``."""
        for participant in self.room(room_id).participants.values():
            if participant.sid == sid:
                return participant
        raise AppError("forbidden", "join the room first", room=room_id, reason="not_joined")

    def of_sid(self, sid: str) -> list[Participant]:
        """Every participation of one socket."""
        return [p for room in self.rooms.values() for p in room.participants.values()
                if p.sid == sid]

    # joining -----------------------------------------------------------------------------------
    def join(self, room_id: str, sid: str, user_id: str, name: str, roles: Iterable[str],
             want: Role = "publisher", host: bool | None = None) -> Participant:
        """Admit a socket to a room (creating it), or refuse: ``forbidden`` (locked, kicked,
        already joined) or ``unavailable`` with reason ``room_full``. ``host`` (a scheduled
        session's room) says whether this user hosts; ``None`` (ad-hoc room): the first joiner
        hosts."""
        staff = not STAFF_ROLES.isdisjoint(roles)
        room = self.rooms.get(room_id) or Room(room_id, self.limits, self._clock())
        self._admit(room, sid, user_id, staff)
        role: Role = "host" if staff or (not room.hosts() and want != "listener") else want
        if not room.participants:
            role = "host"  # the first joiner hosts, even one who asked to listen
        if host is not None:
            role = "host" if staff or host else want
        self._check_capacity(room, role)
        participant = Participant(id="p_" + secrets.token_urlsafe(9), room=room_id, sid=sid,
                                  user_id=user_id, name=name, role=role, staff=staff,
                                  joined_at=self._clock())
        room.participants[participant.id] = participant
        self.rooms[room_id] = room
        return participant

    def _admit(self, room: Room, sid: str, user_id: str, staff: bool) -> None:
        if any(p.sid == sid for p in room.participants.values()):
            raise AppError("conflict", "this connection already joined the room",
                           room=room.id, reason="already_joined")
        until = room.banned.get(user_id)
        if until is not None and not staff:
            if until > self._clock():
                raise AppError("forbidden", "you were removed from this room",
                               room=room.id, reason="kicked",
                               retry_after_ms=int((until - self._clock()) * 1000))
            del room.banned[user_id]
        if room.locked and not staff:
            raise AppError("forbidden", "the room is locked", room=room.id,
                           reason="room_locked")

    @staticmethod
    def _check_capacity(room: Room, role: Role) -> None:
        listeners = role == "listener"
        limit = room.limits.max_listeners if listeners else room.limits.max_publishers
        if room.count(listeners) >= limit:
            kind = "listener" if listeners else "publisher"
            raise AppError("unavailable", f"the room has no {kind} places left",
                           room=room.id, reason="room_full", slot=kind, limit=limit)

    # leaving -----------------------------------------------------------------------------------
    def leave(self, room_id: str, participant_id: str) -> Departure:
        """Remove a participant; promote the earliest remaining publisher if no host is left;
        close the room when it is empty."""
        room = self.room(room_id)
        participant = room.participants.pop(participant_id, None)
        if participant is None:
            raise AppError("not_found", "no such participant in this room",
                           participant_id=participant_id)
        new_host = None
        if participant.role == "host" and room.participants and not room.hosts():
            candidates = [p for p in room.participants.values() if p.role == "publisher"]
            if candidates:
                new_host = candidates[0]
                new_host.role = "host"
        closed = not room.participants
        if closed:
            del self.rooms[room_id]
        return Departure(participant, new_host, closed)

    def kick(self, room_id: str, actor: Participant, target_id: str) -> Departure:
        """A host or staff removes ``target_id`` and bans the user from rejoining for a while."""
        room = self.room(room_id)
        target = room.get(target_id)
        self._check_moderates(actor, target)
        room.banned[target.user_id] = self._clock() + room.limits.kick_ban_s
        return self.leave(room_id, target_id)

    # controls ----------------------------------------------------------------------------------
    @staticmethod
    def _check_moderates(actor: Participant, target: Participant) -> None:
        if actor.id == target.id:
            raise AppError("invalid", "use leave or self-mute for yourself")
        if not actor.moderates:
            raise AppError("forbidden", "only hosts and moderators may do this",
                           reason="not_host")
        if target.staff and not actor.staff:
            raise AppError("forbidden", "hosts cannot moderate staff", reason="staff")
        if target.role == "host" and not actor.staff:
            raise AppError("forbidden", "hosts cannot moderate other hosts", reason="host")

    def set_muted(self, room_id: str, actor: Participant, target_id: str, kinds: Iterable[str],
                  muted: bool) -> list[str]:
        """Mute or unmute; returns the kinds whose forwarding state changed.

        Self: toggles ``self_muted`` (refused while a host mute holds). Others: hosts and staff
        set or lift ``host_muted``; nobody can unmute someone else's own microphone."""
        room = self.room(room_id)
        target = room.get(target_id)
        kinds = [k for k in dict.fromkeys(kinds) if k in KINDS]
        before = {k: target.muted(k) for k in KINDS}
        if target.id == actor.id:
            held = [k for k in kinds if k in target.host_muted]
            if not muted and held:
                raise AppError("forbidden", "a host muted you; ask them to lift it",
                               reason="host_muted", kinds=held)
            (target.self_muted.update if muted else target.self_muted.difference_update)(kinds)
        else:
            self._check_moderates(actor, target)
            (target.host_muted.update if muted else target.host_muted.difference_update)(kinds)
        return [k for k in KINDS if before[k] != target.muted(k)]

    def set_locked(self, room_id: str, actor: Participant, locked: bool) -> bool:
        """Lock or unlock (hosts and staff); returns True if the state changed."""
        room = self.room(room_id)
        if not actor.moderates:
            raise AppError("forbidden", "only hosts and moderators may lock the room",
                           reason="not_host")
        changed = room.locked != locked
        room.locked = locked
        return changed

    def publish(self, room_id: str, participant_id: str, kinds: list[str]) -> Participant:
        """Record the participant's published tracks (listeners are refused)."""
        participant = self.room(room_id).get(participant_id)
        if not participant.can_publish:
            raise AppError("forbidden", "listeners cannot publish", reason="listener")
        if not kinds:
            raise AppError("invalid", "the offer carries no audio or video track")
        participant.published = list(kinds)
        return participant
