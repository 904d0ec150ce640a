"""Gig matching records on the embedded store (``0008_gig_matching.sql``).

- ``gigs``: one row per chat message recognised as a gig (``message_id`` unique: a message is
  recorded once even if the post-store hook ran twice), with its title and skill tags.
- ``gig_skills``: one row per (skill, gig), so listing by skill is an index lookup.
- ``gig_subscribers`` / ``gig_subscriptions``: a freelancer's skill set (replaced as a whole on
  each subscribe, in one transaction) and the roles of their last subscribe.

Used only by the ``matching`` plugin (``plugins/matching``); without it the tables stay empty.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from storage.base import new_id, now_iso
from storage.sqlite import SQLiteStore

GIG_COLUMNS = ("g.id, g.message_id, g.channel_id, g.seq, g.author_id, g.author_name, g.title, "
               "g.skills, g.created_at")


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()
          ) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def public(row: tuple[Any, ...]) -> dict[str, Any]:
    """A gig as clients see it."""
    return {"id": row[0], "message_id": row[1], "channel": row[2], "seq": row[3],
            "author": {"id": row[4], "name": row[5]}, "title": row[6],
            "skills": orjson.loads(row[7]), "created_at": row[8]}


class GigRecords:
    """Gigs and skill subscriptions (see the module docstring)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    async def add_gig(self, message: dict[str, Any], title: str, skills: list[str]
                      ) -> dict[str, Any] | None:
        """Record the gig carried by a stored ``message`` (the protocol's message object);
        the new gig, or None if that message was recorded already."""
        gig = (new_id(), message["id"], message["channel"], message["seq"],
               message["author"]["id"], message["author"]["name"], title,
               orjson.dumps(skills).decode(), message["created_at"])

        def put(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO gigs (id, message_id, channel_id, seq, author_id, "
                "author_name, title, skills, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", gig)
            if cursor.rowcount != 1:
                return False
            conn.executemany("INSERT INTO gig_skills (skill, gig_id) VALUES (?, ?)",
                             [(skill, gig[0]) for skill in skills])
            return True
        return public(gig) if await self.store.run_write(put) else None

    async def recent(self, skill: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest gigs first (only those whose message is not deleted), optionally only
        those tagged ``skill``."""
        alive = "NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = g.message_id AND m.deleted)"
        if skill is None:
            sql = (f"SELECT {GIG_COLUMNS} FROM gigs g WHERE {alive} "
                   "ORDER BY g.created_at DESC, g.id DESC LIMIT ?")
            params: tuple[Any, ...] = (limit,)
        else:
            sql = (f"SELECT {GIG_COLUMNS} FROM gig_skills s JOIN gigs g ON g.id = s.gig_id "
                   f"WHERE s.skill = ? AND {alive} ORDER BY g.created_at DESC, g.id DESC LIMIT ?")
            params = (skill, limit)
        return [public(row) for row in await self.store.run_read(_rows, sql, params)]

    async def subscribe(self, user_id: str, roles: list[str], skills: list[str]) -> list[str]:
        """Replace ``user_id``'s skill set (empty: unsubscribe from everything); the stored set."""
        def put(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM gig_subscribers WHERE user_id = ?", (user_id,))
            if not skills:
                return
            conn.execute("INSERT INTO gig_subscribers (user_id, roles, updated_at) "
                         "VALUES (?, ?, ?)", (user_id, orjson.dumps(sorted(roles)).decode(),
                                              now_iso()))
            conn.executemany("INSERT INTO gig_subscriptions (skill, user_id) VALUES (?, ?)",
                             [(skill, user_id) for skill in skills])
        await self.store.run_write(put)
        return await self.skills(user_id)

    async def skills(self, user_id: str) -> list[str]:
        """``user_id``'s subscribed skills, sorted."""
        rows = await self.store.run_read(
            _rows, "SELECT skill FROM gig_subscriptions WHERE user_id = ? ORDER BY skill",
            (user_id,))
        return [row[0] for row in rows]

    async def subscribers(self, skills: list[str]) -> dict[str, tuple[list[str], list[str]]]:
        """Who subscribed to any of ``skills``: ``{user_id: (matched skills, roles)}``."""
        if not skills:
            return {}
        marks = ", ".join("?" * len(skills))
        rows = await self.store.run_read(
            _rows, "SELECT s.user_id, s.skill, u.roles FROM gig_subscriptions s JOIN "
            f"gig_subscribers u ON u.user_id = s.user_id WHERE s.skill IN ({marks}) "
            "ORDER BY s.user_id, s.skill", tuple(skills))
        found: dict[str, tuple[list[str], list[str]]] = {}
        for user_id, skill, roles in rows:
            found.setdefault(user_id, ([], orjson.loads(roles)))[0].append(skill)
        return found
