"""Drills: two ``gigvora serve`` nodes reach Redis through a fault proxy. Redis slow, Redis gone
(connections reset and refused), Redis silent (blackhole), then Redis back: every message acked
during the fault reaches the other node exactly once and readiness shows the outage code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.drills.common import Writer, assert_exactly_once, readyz, stored_messages
from tests.faultproxy import FaultProxy
from tests.helpers import Client, RedisProcess, ServerProcess, mint

OUTAGE_CODES = ("REDIS_UNREACHABLE", "REDIS_PUBLISH_FAILING")


@dataclass
class Rig:
    redis: RedisProcess
    proxy: FaultProxy
    nodes: list[ServerProcess]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    redis = RedisProcess(tmp_path).start()
    proxy = FaultProxy(redis.port).start()
    env = {"GIGVORA_REDIS_URL": proxy.url, "GIGVORA_MESSAGE_RATE_PER_S": "0"}
    nodes = [ServerProcess(tmp_path, None, **env).start() for _ in range(2)]
    try:
        await asyncio.gather(*(node.wait_ready() for node in nodes))
        yield Rig(redis, proxy, nodes)
    finally:
        for node in nodes:
            node.stop()
        proxy.stop()
        redis.stop()


async def _redis_check(url: str) -> dict:
    _, detail = await readyz(url)
    return detail["checks"]["redis:pubsub"][0]


async def _drill(rig: Rig, fault: str) -> None:
    sender = Writer(rig.nodes[0].url, "sender")
    receiver = Client(rig.nodes[1].url, mint("receiver"))
    try:
        await sender.client.connect()
        await receiver.connect()
        await receiver.ok("channel:join", {"channel": "general"})
        for i in range(20):
            await sender.send_one(i)
        if fault == "slow":
            rig.proxy.set_latency(0.3)
        elif fault == "gone":
            rig.proxy.reset(refuse=True)
        else:
            rig.proxy.set_blackhole(True)
        for i in range(20, 60):
            await sender.send_one(i)  # chat never waits on Redis: these must be acked
            await asyncio.sleep(0.02)
        if fault != "slow":
            for _ in range(150):
                check = await _redis_check(rig.nodes[0].url)
                if check.get("gvCode") in OUTAGE_CODES:
                    break
                await sender.send_one(1000 + _)
                await asyncio.sleep(0.1)
            assert check.get("gvCode") in OUTAGE_CODES and check["status"] == "fail", check
            _, detail = await readyz(rig.nodes[0].url)
            assert detail["checks"]["lifecycle:state"][0]["status"] == "pass"
        rig.proxy.heal()
        for i in range(60, 80):
            await sender.send_one(i)
        assert sender.hung == 0 and not sender.refused, (sender.hung, sender.refused)
        stored = await stored_messages(rig.nodes[1].url)
        assert_exactly_once(sender.acked, stored)
        acked_seqs = {m["seq"] for m in stored if m["client_id"] in set(sender.acked)}
        for _ in range(300):  # live delivery, or the store-backed repair after the outage
            seqs = [m["seq"] for m in receiver.events["message:new"]]
            if acked_seqs <= set(seqs):
                break
            await asyncio.sleep(0.1)
        assert len(seqs) == len(set(seqs)), "a message was shown twice"
        assert acked_seqs <= set(seqs), f"acked, never delivered: {acked_seqs - set(seqs)}"
        for node in rig.nodes:
            for _ in range(100):
                if (await _redis_check(node.url))["status"] == "pass":
                    break
                await asyncio.sleep(0.1)  # recovers with no traffic: the publisher probes
            check = await _redis_check(node.url)
            assert check["status"] == "pass", (rig.nodes.index(node), sorted(check.items()))
    finally:
        await sender.client.close()
        await receiver.close()


async def test_redis_slow(rig: Rig) -> None:
    await _drill(rig, "slow")


async def test_redis_gone_and_back(rig: Rig) -> None:
    await _drill(rig, "gone")


async def test_redis_silent_and_back(rig: Rig) -> None:
    await _drill(rig, "blackhole")
