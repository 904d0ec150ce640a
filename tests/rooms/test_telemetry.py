"""Telemetry units: jitter in seconds, loss as a fraction."""

from __future__ import annotations

from rooms.telemetry import fraction_from_rtcp, interval_loss, jitter_seconds, normalise, rate


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


def test_browser_reports_get_the_server_units() -> None:
    """``packet_loss`` as a fraction (remote ``fraction_lost``, else lost over the interval
    since the previous report, else since the start), ``jitter_s``/``rtt_s``/``fps``."""
    first = normalise({"direction": "inbound", "kind": "video", "packets": 990,
                       "packets_lost": 10, "jitter": 0.004, "frames_per_second": 30.0}, None)
    assert (first["packet_loss"], first["jitter_s"], first["fps"]) == (0.01, 0.004, 30.0)
    second = normalise({"direction": "inbound", "kind": "video", "packets": 1090,
                        "packets_lost": 110}, first)
    assert second["packet_loss"] == 0.5  # 100 lost of 200 in this interval
    remote = normalise({"direction": "outbound", "kind": "audio", "fraction_lost": 0.25,
                        "round_trip_time": 0.05}, None)
    assert (remote["packet_loss"], remote["rtt_s"]) == (0.25, 0.05)
    assert normalise({"direction": "inbound", "kind": "audio", "packets": 0,
                      "packets_lost": -2}, None)["packet_loss"] == 0.0
    assert "packet_loss" not in normalise({"direction": "inbound", "kind": "audio"}, None)
