"""Seed data every deployment starts from (``gigvora seed``; also applied at boot)."""

from __future__ import annotations

from dataclasses import replace

from storage.base import Channel, Store

SEED_CHANNELS = (
    Channel(id="general", name="General", kind="public"),
    Channel(id="announcements", name="Announcements", kind="announcement",
            post_roles=["admin", "moderator"]),
    Channel(id="help", name="Help", kind="public"),
)


async def seed_channels(store: Store) -> list[str]:
    """Create the seed channels that do not exist yet (idempotent); return their ids."""
    for channel in SEED_CHANNELS:
        await store.ensure_channel(replace(channel))
    return [c.id for c in SEED_CHANNELS]
