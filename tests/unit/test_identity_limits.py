"""Tokens, token buckets, the typing throttle and presence (pure logic, injected clocks)."""

from __future__ import annotations

import time

import jwt
import pytest

from realtime.errors import AppError
from realtime.identity import TokenService, bearer_token
from realtime.limits import TokenBucket, TypingThrottle
from realtime.presence import Presence

SECRET = "k" * 40


def test_mint_and_verify_round_trip() -> None:
    tokens = TokenService(SECRET)
    who = tokens.verify(tokens.mint("u1", "User One", ["member", "moderator"]))
    assert who.sub == "u1" and who.name == "User One"
    assert who.roles == {"member", "moderator"} and not who.expired


@pytest.mark.parametrize("claims", [
    {"sub": "a"},  # no exp
    {"exp": int(time.time()) + 60},  # no sub
    {"sub": "a", "exp": int(time.time()) - 30},
    {"sub": 5, "exp": int(time.time()) + 60},
    {"sub": "a", "roles": "admin", "exp": int(time.time()) + 60},
])
def test_bad_claims_refused(claims: dict) -> None:
    with pytest.raises(AppError) as error:
        TokenService(SECRET).verify(jwt.encode(claims, SECRET, algorithm="HS256"))
    assert error.value.code == "unauthorized"


def test_unknown_roles_are_dropped_and_minting_refuses_them() -> None:
    tokens = TokenService(SECRET)
    token = jwt.encode({"sub": "a", "roles": ["member", "king"], "exp": time.time() + 60},
                       SECRET, algorithm="HS256")
    assert tokens.verify(token).roles == {"member"}
    with pytest.raises(AppError):
        tokens.mint("a", "A", ["king"])


def test_previous_key_accepted_during_rotation() -> None:
    old = TokenService("o" * 40).mint("a", "A", ["member"])
    assert TokenService(SECRET, previous_secret="o" * 40).verify(old).sub == "a"
    with pytest.raises(AppError):
        TokenService(SECRET).verify(old)


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None and bearer_token(None) is None


def test_token_bucket_refills_and_reports_retry_after() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take("u") for _ in range(3)] == [0, 0, 0]
    assert bucket.take("u") == 500
    now[0] += 0.5
    assert bucket.take("u") == 0 and bucket.take("other") == 0
    assert TokenBucket(rate=0, burst=1).take("u") == 0  # rate 0 disables


def test_typing_throttle() -> None:
    now = [0.0]
    throttle = TypingThrottle(3, clock=lambda: now[0])
    assert throttle.allow("u", "c", True) and not throttle.allow("u", "c", True)
    assert throttle.allow("u", "c", False) and not throttle.allow("u", "c", False)
    assert throttle.allow("u", "c", True)
    now[0] += 3
    assert throttle.allow("u", "c", True) and throttle.allow("u", "other", True)


async def test_presence_tabs_and_status() -> None:
    presence = Presence()
    assert await presence.connect("u", "U", "s1")
    assert not await presence.connect("u", "U", "s2")
    assert await presence.set_status("u", "away")
    assert not await presence.set_status("u", "away")
    assert not await presence.disconnect("u", "s1")
    assert await presence.status("u") == "away"
    assert await presence.disconnect("u", "s2")
    assert await presence.status("u") == "offline"
