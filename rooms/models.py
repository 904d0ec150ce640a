"""Payload models of the ``/rooms`` namespace (strict: unknown fields are refused)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RoomId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
ParticipantId = Field(min_length=1, max_length=64)
#: Browser offers with many codecs run to ~10 KB; the Socket.IO frame limit is 128 KiB.
Sdp = Field(min_length=10, max_length=32_000)


class Strict(BaseModel):
    """Frozen, no extra fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class JoinIn(Strict):
    """``room:join``: ``role`` asks for a publisher (default) or a listener place."""

    room: str = RoomId
    role: Literal["publisher", "listener"] = "publisher"
    #: the room's PIN, needed once for a PIN-protected room (rooms/pins.py)
    pin: str | None = Field(None, pattern=r"^[0-9]{8}$")


class RoomIn(Strict):
    """``room:leave``."""

    room: str = RoomId


class PublishIn(Strict):
    """``rtc:publish``: the client's offer with its tracks and candidates."""

    room: str = RoomId
    sdp: str = Sdp
    type: Literal["offer"]


class SubscribeIn(Strict):
    """``rtc:subscribe``: the publisher's participant id."""

    room: str = RoomId
    publisher: str = ParticipantId


class AnswerIn(Strict):
    """``rtc:answer``: the client's answer to a subscription offer."""

    subscription_id: str = Field(min_length=1, max_length=64)
    sdp: str = Sdp
    type: Literal["answer"]


class UnsubscribeIn(Strict):
    """``rtc:unsubscribe``."""

    subscription_id: str = Field(min_length=1, max_length=64)


class MuteIn(Strict):
    """``room:mute``: yourself (no ``participant_id``) or, for hosts and moderators, others."""

    room: str = RoomId
    muted: bool
    kinds: list[Literal["audio", "video"]] = Field(default=["audio"], min_length=1,
                                                   max_length=2)
    participant_id: str | None = Field(default=None, min_length=1, max_length=64)


class KickIn(Strict):
    """``room:kick``."""

    room: str = RoomId
    participant_id: str = ParticipantId
    reason: str = Field(default="", max_length=256)


class LockIn(Strict):
    """``room:lock``."""

    room: str = RoomId
    locked: bool


class ClientReport(Strict):
    """One stream's figures from a browser's ``getStats()``, in the browser's units (jitter and
    round-trip time in seconds, ``fraction_lost`` 0-1 as remote-inbound-rtp reports it)."""

    direction: Literal["inbound", "outbound"]
    kind: Literal["audio", "video"]
    bytes: int | None = Field(default=None, ge=0)
    packets: int | None = Field(default=None, ge=0)
    packets_lost: int | None = None
    jitter: float | None = Field(default=None, ge=0, le=60)
    round_trip_time: float | None = Field(default=None, ge=0, le=60)
    fraction_lost: float | None = Field(default=None, ge=0, le=1)
    frames_per_second: float | None = Field(default=None, ge=0, le=240)
    frames_decoded: int | None = Field(default=None, ge=0)
    frames_dropped: int | None = Field(default=None, ge=0)


class StatsIn(Strict):
    """``rtc:stats``: a browser's own figures, at most once a second."""

    room: str = RoomId
    reports: list[ClientReport] = Field(max_length=32)
