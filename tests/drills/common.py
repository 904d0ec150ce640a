"""What the drills share: writers that record every acked message, and the store's view of them
(read back over REST, so the check goes through the same path a client uses)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.helpers import Client, mint


async def readyz(url: str) -> tuple[int, dict[str, Any]]:
    """``/readyz`` with an operator token: status and detail."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/readyz", headers={
                "Authorization": f"Bearer {mint('ops', roles='operator')}"}) as r:
            return r.status, await r.json(content_type=None)


async def stored_messages(url: str, channel: str = "general") -> list[dict[str, Any]]:
    """Every message of ``channel``, paged by seq."""
    messages: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        while True:
            params = {"after_seq": messages[-1]["seq"] if messages else 0, "limit": 500}
            async with http.get(f"{url}/api/v1/channels/{channel}/messages", params=params,
                                headers={"Authorization": f"Bearer {mint('auditor')}"}) as r:
                assert r.status == 200, await r.text()
                body = await r.json()
            messages += body["messages"]
            if not body["has_more"]:
                return messages


class Writer:
    """Sends numbered messages (with ``client_id``) until stopped, recording what was acked,
    what was refused (by error code) and whether an ack ever hung."""

    def __init__(self, url: str, sub: str, text: str = "") -> None:
        self.client = Client(url, mint(sub))
        self.sub = sub
        self.text = text
        self.acked: list[str] = []
        self.refused: dict[str, int] = {}
        self.hung = 0
        self.broken = False

    async def send_one(self, i: int, timeout: float = 5) -> None:
        """One message; an ack that does not come within ``timeout`` counts as hung."""
        client_id = f"{self.sub}-{i}"
        try:
            ack = await self.client.call("message:send", {
                "channel": "general", "text": self.text or client_id, "client_id": client_id},
                timeout=timeout)
        except TimeoutError:
            self.hung += 1
            return
        if ack["ok"]:
            self.acked.append(client_id)
        else:
            code = ack["error"]["code"]
            self.refused[code] = self.refused.get(code, 0) + 1

    async def run(self, stop: asyncio.Event, pause: float = 0.0) -> None:
        """Send until ``stop`` is set or the connection goes away."""
        i = 0
        try:
            while not stop.is_set() and self.client.sio.connected:
                await self.send_one(i)
                i += 1
                if pause:
                    await asyncio.sleep(pause)
        except Exception:  # the server went away under us (SIGTERM drills): expected
            self.broken = True


def assert_exactly_once(acked: list[str], messages: list[dict[str, Any]]) -> None:
    """Every acked ``client_id`` is stored, none twice, and seqs are gap-free."""
    stored = [m["client_id"] for m in messages if m.get("client_id")]
    assert len(stored) == len(set(stored)), "a message was stored twice"
    missing = set(acked) - set(stored)
    assert not missing, f"acked but lost: {sorted(missing)[:10]}"
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
