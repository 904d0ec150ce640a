"""The matching plugin on two ``gigvora serve`` processes sharing a real Redis and one SQLite
file: a gig posted on one node reaches the subscriber's sockets on both nodes, once each; the
moderation plugin (pre-store, rules only) runs in front of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.helpers import mint, start_cluster


async def test_a_gig_reaches_the_subscriber_on_every_node(tmp_path: Path) -> None:
    async with start_cluster(tmp_path, GIGVORA_MESSAGE_RATE_PER_S="0",
                             GIGVORA_PLUGINS_ALLOW="matching",
                             GIGVORA_MODERATION_ML="off") as rig:
        bob_here, bob_there = await rig.client(0, "bob"), await rig.client(1, "bob")
        alice = await rig.client(0, "alice")
        await bob_there.ok("gigs:subscribe", {"skills": ["python"]})
        assert await bob_here.ok("gigs:subscription", {}) == {"skills": ["python"]}
        sent = await alice.ok("message:send", {"channel": "gigs",
                                               "text": "Gig: ETL pipeline #python #airflow"})
        for socket in (bob_here, bob_there):
            match = await socket.wait_for("gigs:match")
            assert match["gig"]["message_id"] == sent["id"] and match["skills"] == ["python"]
        await asyncio.sleep(0.5)
        assert [len(s.events["gigs:match"]) for s in (bob_here, bob_there, alice)] == [1, 1, 0]
        async with aiohttp.ClientSession() as http, http.get(
                f"{rig.nodes[1].url}/api/v1/gigs?skill=airflow",
                headers={"Authorization": f"Bearer {mint('dana')}"}) as response:
            assert [g["message_id"] for g in (await response.json())["gigs"]] == [sent["id"]]
