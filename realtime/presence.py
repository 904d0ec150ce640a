"""Who is online: several tabs (sockets) per user, one status per user.

``Presence`` keeps it in process memory (one node). ``RedisPresence`` shares it across nodes with
atomic Lua scripts: a per-user hash of connection counts by node, a per-node set of its users, and
node heartbeats with a TTL, so when a node dies another node reaps its users and announces them
offline within ``ttl`` seconds. When Redis fails, the node answers from its local view (and says so
in readiness) and re-publishes its own contribution once Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
Status = Literal["online", "away", "offline"]
Announce = Callable[[dict[str, str], str], Awaitable[None]]
REDIS_FAILURES = (RedisError, OSError, TimeoutError)


@dataclass(slots=True)
class _Entry:
    name: str
    sids: set[str] = field(default_factory=set)
    status: Status = "online"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Presence:
    """In-process presence. ``connect``/``disconnect`` return True when the user's visible
    status changed (first tab opened, last tab closed)."""

    def __init__(self) -> None:
        self._users: dict[str, _Entry] = {}

    async def connect(self, user_id: str, name: str, sid: str) -> bool:
        """Record a socket; True if the user just came online."""
        entry = self._users.get(user_id)
        if entry is None:
            self._users[user_id] = _Entry(name, {sid})
            return True
        entry.sids.add(sid)
        return False

    async def disconnect(self, user_id: str, sid: str) -> bool:
        """Forget a socket; True if it was the user's last one."""
        entry = self._users.get(user_id)
        if entry is None:
            return False
        entry.sids.discard(sid)
        if entry.sids:
            return False
        del self._users[user_id]
        return True

    async def set_status(self, user_id: str, status: Status) -> bool:
        """Set online/away for a connected user; True if it changed."""
        entry = self._users.get(user_id)
        if entry is None or entry.status == status:
            return False
        entry.status = status
        return True

    async def status(self, user_id: str) -> Status:
        """The user's status (``offline`` when no socket is open)."""
        entry = self._users.get(user_id)
        return entry.status if entry else "offline"

    async def online(self) -> list[dict[str, Any]]:
        """Every connected user as a presence event payload."""
        return [{"user": {"id": uid, "name": e.name}, "status": e.status}
                for uid, e in self._users.items()]

    def local_counts(self) -> dict[str, tuple[str, int]]:
        """This node's users: name and number of open sockets."""
        return {uid: (e.name, len(e.sids)) for uid, e in self._users.items()}

    def __len__(self) -> int:
        return len(self._users)


_CONNECT = """
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
if total == 1 then redis.call('SADD', KEYS[3], ARGV[2]) return 1 end
return 0
"""
# KEYS: user hash, node set, online set, status hash; ARGV: node, user, remove-all flag
_DISCONNECT = """
local n = 0
if ARGV[3] == '1' then redis.call('HDEL', KEYS[1], ARGV[1])
else n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1) end
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) redis.call('SREM', KEYS[2], ARGV[2]) end
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
if total <= 0 and redis.call('SREM', KEYS[3], ARGV[2]) == 1 then
  redis.call('HDEL', KEYS[4], ARGV[2])
  return 1
end
return 0
"""


class RedisPresence:
    """Presence shared by every node through Redis (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, node_id: str, announce: Announce,
                 ttl: float = 10.0, prefix: str = "gv:presence") -> None:
        self.redis = redis
        self.node_id = node_id
        self.announce = announce
        self.ttl = ttl
        self.p = prefix
        self.local = Presence()
        self._connect = redis.register_script(_CONNECT)
        self._disconnect = redis.register_script(_DISCONNECT)
        self.failed_at: float | None = None
        self.reaped_nodes = 0

    def _keys(self, user_id: str, node: str | None = None) -> list[str]:
        return [f"{self.p}:user:{user_id}", f"{self.p}:node:{node or self.node_id}:users",
                f"{self.p}:online", f"{self.p}:status"]

    def _failed(self, error: BaseException) -> None:
        if self.failed_at is None:
            log.warning("presence falls back to this node's view", extra={"why": repr(error)})
        self.failed_at = time.time()

    async def connect(self, user_id: str, name: str, sid: str) -> bool:
        """Count the socket cluster-wide; True if it is the user's first anywhere."""
        first_here = await self.local.connect(user_id, name, sid)
        keys = self._keys(user_id)
        try:
            async with asyncio.timeout(1.0):
                return bool(await self._connect(keys=[*keys[:3], f"{self.p}:names"],
                                                args=[self.node_id, user_id, name]))
        except REDIS_FAILURES as error:
            self._failed(error)
            return first_here

    async def disconnect(self, user_id: str, sid: str) -> bool:
        """Uncount the socket; True if it was the user's last anywhere."""
        last_here = await self.local.disconnect(user_id, sid)
        try:
            async with asyncio.timeout(1.0):
                return bool(await self._disconnect(keys=self._keys(user_id),
                                                   args=[self.node_id, user_id, "0"]))
        except REDIS_FAILURES as error:
            self._failed(error)
            return last_here

    async def set_status(self, user_id: str, status: Status) -> bool:
        """Online/away, shared; True if it changed."""
        changed = await self.local.set_status(user_id, status)
        try:
            async with asyncio.timeout(1.0):
                previous = await self.redis.hget(f"{self.p}:status", user_id)
                await self.redis.hset(f"{self.p}:status", user_id, status)
            return (_text(previous) if previous else "online") != status
        except REDIS_FAILURES as error:
            self._failed(error)
            return changed

    async def status(self, user_id: str) -> Status:
        """The user's status anywhere."""
        try:
            async with asyncio.timeout(1.0):
                online = await self.redis.sismember(f"{self.p}:online", user_id)
                status = await self.redis.hget(f"{self.p}:status", user_id)
            if not online:
                return "offline"
            return "away" if status == b"away" else "online"
        except REDIS_FAILURES as error:
            self._failed(error)
            return await self.local.status(user_id)

    async def online(self) -> list[dict[str, Any]]:
        """Every user online on any node."""
        try:
            async with asyncio.timeout(2.0):
                users = sorted(_text(u) for u in await self.redis.smembers(f"{self.p}:online"))
                if not users:
                    return []
                names = await self.redis.hmget(f"{self.p}:names", users)
                statuses = await self.redis.hmget(f"{self.p}:status", users)
        except REDIS_FAILURES as error:
            self._failed(error)
            return await self.local.online()
        return [{"user": {"id": u, "name": _text(n or u)},
                 "status": "away" if s == b"away" else "online"}
                for u, n, s in zip(users, names, statuses, strict=True)]

    # heartbeats and reaping ---------------------------------------------------------------------
    async def run(self) -> None:
        """Heartbeat this node and reap dead ones, every ``ttl / 3`` seconds."""
        while True:
            try:
                async with asyncio.timeout(self.ttl / 2):
                    await self.beat()
                    await self.reap_dead_nodes()
            except REDIS_FAILURES as error:
                self._failed(error)
            await asyncio.sleep(self.ttl / 3)

    async def beat(self) -> None:
        """Refresh this node's heartbeat; after an outage, re-publish its own counts."""
        await self.redis.set(f"{self.p}:alive:{self.node_id}", "1", px=int(self.ttl * 1000))
        await self.redis.sadd(f"{self.p}:nodes", self.node_id)
        if self.failed_at is not None:
            await self.republish()
            self.failed_at = None
            log.info("presence back on redis")

    async def republish(self) -> None:
        """Make Redis agree with this node's sockets (after an outage lost updates)."""
        mine = self.local.local_counts()
        listed = {_text(u) for u in await self.redis.smembers(self._keys("-")[1])}
        for user_id in listed - set(mine):
            if await self._disconnect(keys=self._keys(user_id), args=[self.node_id, user_id, "1"]):
                await self.announce({"id": user_id, "name": user_id}, "offline")
        for user_id, (name, count) in mine.items():
            if await self._connect(keys=[*self._keys(user_id)[:3], f"{self.p}:names"],
                                   args=[self.node_id, user_id, name]):
                await self.announce({"id": user_id, "name": name}, "online")
            await self.redis.hset(f"{self.p}:user:{user_id}", self.node_id, count)

    async def reap_dead_nodes(self) -> None:
        """Remove the users of nodes whose heartbeat expired; announce them offline."""
        for raw in await self.redis.smembers(f"{self.p}:nodes"):
            node = _text(raw)
            if node == self.node_id or await self.redis.exists(f"{self.p}:alive:{node}"):
                continue
            if not await self.redis.set(f"{self.p}:reap:{node}", self.node_id, nx=True, ex=30):
                continue  # another node reaps it
            await self._reap(node)

    async def _reap(self, node: str) -> None:
        users_key = self._keys("-", node)[1]
        for raw in await self.redis.smembers(users_key):
            user_id = _text(raw)
            if await self._disconnect(keys=self._keys(user_id, node), args=[node, user_id, "1"]):
                name = await self.redis.hget(f"{self.p}:names", user_id)
                await self.announce({"id": user_id, "name": _text(name or raw)}, "offline")
        await self.redis.delete(users_key)
        await self.redis.srem(f"{self.p}:nodes", node)
        self.reaped_nodes += 1
        log.info("dead node reaped", extra={"node": node})

    async def leave(self) -> None:
        """At clean shutdown: withdraw this node (its users go offline unless elsewhere)."""
        try:
            async with asyncio.timeout(2.0):
                await self.redis.delete(f"{self.p}:alive:{self.node_id}")
                await self._reap(self.node_id)
        except REDIS_FAILURES as error:
            self._failed(error)
