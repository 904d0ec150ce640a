"""The room state machine: roles, capacity per class, lock, mute, kick, host hand-off."""

from __future__ import annotations

import pytest

from realtime.errors import AppError
from rooms.state import RoomLimits, RoomRegistry


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def registry(**limits: float) -> tuple[RoomRegistry, Clock]:
    clock = Clock()
    return RoomRegistry(RoomLimits(**limits), clock), clock  # type: ignore[arg-type]


def join(reg: RoomRegistry, user: str, roles: tuple[str, ...] = ("member",),
         want: str = "publisher", room: str = "r"):  # type: ignore[no-untyped-def]
    return reg.join(room, "sid-" + user, user, user.title(), roles, want)  # type: ignore[arg-type]


def refused(call, code: str, reason: str) -> AppError:  # type: ignore[no-untyped-def]
    with pytest.raises(AppError) as caught:
        call()
    assert (caught.value.code, caught.value.details.get("reason")) == (code, reason)
    return caught.value


def test_first_joiner_hosts_staff_host_others_publish() -> None:
    reg, _ = registry()
    assert join(reg, "ann").role == "host"
    assert join(reg, "bob").role == "publisher"
    assert join(reg, "mod", ("member", "moderator")).role == "host"
    assert join(reg, "lis", want="listener").role == "listener"
    assert [p.user_id for p in reg.room("r").hosts()] == ["ann", "mod"]


def test_capacity_is_per_class() -> None:
    reg, _ = registry(max_publishers=2, max_listeners=1)
    join(reg, "ann")
    join(reg, "bob")
    error = refused(lambda: join(reg, "cat"), "unavailable", "room_full")
    assert error.details["slot"] == "publisher"
    join(reg, "cat", want="listener")
    error = refused(lambda: join(reg, "dan", want="listener"), "unavailable", "room_full")
    assert error.details["slot"] == "listener"
    refused(lambda: reg.join("r", "sid-ann", "ann", "Ann", ["member"]), "conflict",
            "already_joined")


def test_lock_refuses_members_but_not_staff() -> None:
    reg, _ = registry()
    host = join(reg, "ann")
    bob = join(reg, "bob")
    refused(lambda: reg.set_locked("r", bob, True), "forbidden", "not_host")
    assert reg.set_locked("r", host, True) is True
    refused(lambda: join(reg, "cat"), "forbidden", "room_locked")
    assert join(reg, "adm", ("admin",)).role == "host"


def test_kick_bans_for_a_while_and_hosts_cannot_kick_staff() -> None:
    reg, clock = registry(kick_ban_s=60)
    host = join(reg, "ann")
    bob = join(reg, "bob")
    mod = join(reg, "mod", ("moderator",))
    refused(lambda: reg.kick("r", bob, host.id), "forbidden", "not_host")
    refused(lambda: reg.kick("r", host, mod.id), "forbidden", "staff")
    departure = reg.kick("r", host, bob.id)
    assert departure.participant is bob and not departure.room_closed
    error = refused(lambda: join(reg, "bob"), "forbidden", "kicked")
    assert error.details["retry_after_ms"] == 60_000
    clock.now += 61
    assert join(reg, "bob").role == "publisher"
    assert reg.kick("r", mod, host.id).participant is host  # staff may remove a host


def test_mute_self_and_host_mute_holds() -> None:
    reg, _ = registry()
    host = join(reg, "ann")
    bob = join(reg, "bob")
    assert reg.set_muted("r", bob, bob.id, ["audio"], True) == ["audio"]
    assert bob.muted("audio") and not bob.muted("video")
    refused(lambda: reg.set_muted("r", bob, host.id, ["audio"], True), "forbidden", "not_host")
    assert reg.set_muted("r", host, bob.id, ["video"], True) == ["video"]
    refused(lambda: reg.set_muted("r", bob, bob.id, ["video"], False), "forbidden",
            "host_muted")
    assert reg.set_muted("r", host, bob.id, ["video", "audio"], False) == ["video"]
    assert bob.muted("audio")  # a host never unmutes someone's own microphone
    assert reg.set_muted("r", bob, bob.id, ["audio"], False) == ["audio"]


def test_host_hand_off_and_room_closes_when_empty() -> None:
    reg, _ = registry()
    host = join(reg, "ann")
    join(reg, "lis", want="listener")
    bob = join(reg, "bob")
    departure = reg.leave("r", host.id)
    assert departure.new_host is bob and bob.role == "host"
    reg.leave("r", bob.id)
    last = reg.room("r").participants
    assert [p.role for p in last.values()] == ["listener"]
    assert reg.leave("r", next(iter(last))).room_closed
    refused(lambda: reg.room("r"), "not_found", None)  # type: ignore[arg-type]


def test_listeners_cannot_publish_and_members_are_per_socket() -> None:
    reg, _ = registry()
    join(reg, "ann")
    lis = join(reg, "lis", want="listener")
    refused(lambda: reg.publish("r", lis.id, ["audio"]), "forbidden", "listener")
    assert reg.member("r", "sid-lis") is lis
    refused(lambda: reg.member("r", "sid-nobody"), "forbidden", "not_joined")
    assert reg.of_sid("sid-lis") == [lis]
