"""Telemetry units: jitter in seconds, loss as a fraction."""

from __future__ import annotations

from rooms.telemetry import fraction_from_rtcp, interval_loss, jitter_seconds, rate


def test_jitter_is_converted_from_rtp_clock_units_to_seconds() -> None:
    assert jitter_seconds(900, 90_000) == 0.01
    assert jitter_seconds(480, 48_000) == 0.01
    assert jitter_seconds(None, 90_000) is None


def test_rtcp_fraction_lost_is_a_fraction_of_256() -> None:
    assert fraction_from_rtcp(0) == 0.0
    assert fraction_from_rtcp(64) == 0.25
    assert fraction_from_rtcp(255) == 0.9961
    assert fraction_from_rtcp(None) is None


def test_interval_loss_and_rates() -> None:
    assert interval_loss(1, 99) == 0.01
    assert interval_loss(-3, 100) == 0.0  # reordering / duplicates
    assert interval_loss(0, 0) == 0.0
    assert rate(60, 2.0) == 30.0 and rate(5, 0) == 0.0
