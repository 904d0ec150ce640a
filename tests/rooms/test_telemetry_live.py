"""Telemetry through a live server: REST, Prometheus, browser reports."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.rooms.conftest import ROOM, StartRooms


async def test_telemetry_nonzero_rest_metrics_and_client_reports(start_rooms: StartRooms
                                                                 ) -> None:
    """Bitrate, fps, loss, jitter (seconds) and RTT per participant; hosts and operators read
    them; members do not; Prometheus carries aggregates; browser figures are kept."""
    rooms = await start_rooms(telemetry_interval_s=1.0)
    alice, bob = await rooms.member("alice"), await rooms.member("bob")
    await alice.join()
    await alice.publish(["audio", "video"])
    await bob.join()
    await bob.subscribe(alice.participant_id)
    stats = {"room": ROOM, "reports": [{"direction": "inbound", "kind": "video",
                                        "jitter": 0.004, "frames_per_second": 29.5,
                                        "packets": 196, "packets_lost": 4,
                                        "frames_decoded": 120}]}
    assert (await bob.ok("rtc:stats", stats))["accepted"] is True
    assert (await bob.ok("rtc:stats", stats))["accepted"] is False  # at most 1/s
    bad = await bob.call("rtc:stats", {"room": ROOM, "reports": [
        {"direction": "inbound", "kind": "video", "fraction_lost": 2}]})
    assert bad["error"]["code"] == "invalid"
    live, http = rooms.live, rooms.live.clients[0].http
    url = f"{live.url}/api/v1/rooms/{ROOM}/telemetry"
    doc: dict[str, Any] = {}

    async def sampled() -> bool:
        nonlocal doc
        async with http.get(url, headers=live.headers("alice")) as response:
            assert response.status == 200
            doc = await response.json()
        return _complete(doc, alice.participant_id, bob.participant_id)

    for _ in range(80):
        if await sampled():
            break
        await asyncio.sleep(0.1)
    assert _complete(doc, alice.participant_id, bob.participant_id), doc
    assert doc["units"]["jitter"] == "seconds" and doc["bitrate_out_bps"] > 0
    by_id = {p["participant_id"]: p for p in doc["participants"]}
    print("\ntelemetry:", {k: v for k, v in doc.items() if k != "participants"},
          by_id[alice.participant_id]["publish"], by_id[bob.participant_id]["subscriptions"])
    video_in = next(t for t in by_id[alice.participant_id]["publish"]["tracks"]
                    if t["kind"] == "video")
    assert video_in["bitrate_bps"] > 5_000 and video_in["fps"] >= 20
    assert 0 <= video_in["packet_loss"] <= 1 and 0 <= video_in["jitter_s"] < 1
    client = by_id[bob.participant_id]["client"]
    assert client["reports"][0]["frames_per_second"] == 29.5
    assert (client["reports"][0]["packet_loss"], client["reports"][0]["jitter_s"]) == (0.02,
                                                                                       0.004)
    for who, status in (("bob", 403), ("olga", 200)):
        roles = "operator" if who == "olga" else "member"
        async with http.get(url, headers=live.headers(who, roles)) as response:
            assert response.status == status
    async with http.get(f"{live.url}/metrics", headers=live.headers("olga", "operator")) as r:
        text = await r.text()
    assert 'gigvora_rooms_forwarded_streams{kind="video"} 1.0' in text
    assert "gigvora_rooms_rtt_seconds_count" in text
    assert 'gigvora_rooms_packet_loss_ratio_count{direction="in",source="client"} 1.0' in text
    assert alice.participant_id not in text and "alice" not in text


def _complete(doc: dict[str, Any], publisher: str, subscriber: str) -> bool:
    by_id = {p["participant_id"]: p for p in doc.get("participants", [])}
    pub = (by_id.get(publisher) or {}).get("publish") or {}
    subs = (by_id.get(subscriber) or {}).get("subscriptions") or []
    video_in = [t for t in pub.get("tracks", []) if t["kind"] == "video"]
    video_out = [t for s in subs for t in s["tracks"] if t["kind"] == "video"]
    return bool(video_in and video_in[0]["bitrate_bps"] > 0 and video_out
                and video_out[0]["bitrate_bps"] > 0 and video_out[0]["fps"] > 0
                and video_out[0]["rtt_s"] is not None)
