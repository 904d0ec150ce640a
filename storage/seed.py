"""Seed packs: the known data a new deployment, a demo and the test suite start from.

``gigvora seed [--pack NAME]`` applies a pack through the ``Store`` protocol only (so it works on
SQLite and MongoDB alike) and is idempotent: channels are created unless they exist, and starter
messages carry a fixed ``client_id`` (``seed:<pack>:<key>``), which the store deduplicates per
author and channel — running a pack twice changes nothing. The ``core`` pack is what boot creates
(``GIGVORA_SEED_CHANNELS``); ``demo`` adds personas, categories, starter channels, starter content
and a scheduled sample live session.

Personas are identities, not rows: Gigvora keeps no user table (the identity provider issues
tokens). Their ids are the web shell's dev personas, so ``/login`` in dev signs in as the authors
of the starter content; ``gigvora token --sub ID --name NAME --roles ROLES`` mints their tokens.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, replace
from typing import Any

from storage.base import Channel, MessageDraft, Store


@dataclass(frozen=True, slots=True)
class Persona:
    """A known identity of a seed pack (one per role at least)."""

    id: str
    name: str
    roles: tuple[str, ...]
    title: str


@dataclass(frozen=True, slots=True)
class Category:
    """A group of channels as clients list them (``channels`` are channel ids, in order)."""

    id: str
    name: str
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StarterMessage:
    """A message a persona posts once; ``key`` makes it idempotent; ``reply_to`` names the key
    of the thread root it answers."""

    key: str
    channel: str
    author: str
    text: str
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduledSession:
    """A scheduled live session (voice/video room) for the rooms feature to store."""

    id: str
    title: str
    room: str
    host: str
    starts_at: str
    duration_min: int
    description: str = ""


@dataclass(frozen=True, slots=True)
class SeedPack:
    """Everything one pack creates."""

    name: str
    description: str
    channels: tuple[Channel, ...]
    personas: tuple[Persona, ...] = ()
    categories: tuple[Category, ...] = ()
    messages: tuple[StarterMessage, ...] = ()
    sessions: tuple[ScheduledSession, ...] = ()


SEED_CHANNELS = (
    Channel(id="general", name="General", kind="public"),
    Channel(id="announcements", name="Announcements", kind="announcement",
            post_roles=["admin", "moderator"]),
    Channel(id="help", name="Help", kind="public"),
)
PERSONAS = (
    Persona("member-ada", "Ada Lovelace", ("member",), "Community member"),
    Persona("member-alan", "Alan Turing", ("member",), "Community member"),
    Persona("agent-grace", "Grace Hopper", ("member", "agent"), "Support agent"),
    Persona("moderator-katherine", "Katherine Johnson", ("member", "moderator"), "Moderator"),
    Persona("admin-margaret", "Margaret Hamilton", ("member", "admin"), "Administrator"),
    Persona("operator-radia", "Radia Perlman", ("member", "operator"), "Operator"),
)
STAFF = ["moderator", "admin", "operator"]
DEMO_CHANNELS = (
    Channel(id="introductions", name="Introductions", kind="public"),
    Channel(id="gigs", name="Gigs", kind="public"),
    Channel(id="showcase", name="Showcase", kind="public"),
    Channel(id="staff", name="Staff room", kind="private", read_roles=STAFF, post_roles=STAFF),
)
DEMO_MESSAGES = (
    StarterMessage("welcome", "announcements", "admin-margaret",
                   "Welcome to Gigvora Live! Read the guidelines, say hello in #introductions "
                   "and ask anything in #help."),
    StarterMessage("hello-ada", "introductions", "member-ada",
                   "Hi all, I'm Ada: analytical engines and poetry. Looking for collaborators."),
    StarterMessage("hello-alan", "introductions", "member-alan",
                   "Alan here. Happy to review anyone's algorithms.", reply_to="hello-ada"),
    StarterMessage("gig-1", "gigs", "member-ada",
                   "Gig: a two-week contract to document a calculating machine. DM me."),
    StarterMessage("help-1", "help", "member-alan", "How do I turn on notifications?"),
    StarterMessage("help-1-answer", "help", "agent-grace",
                   "Open your profile menu, then Notifications. Ping support if it misbehaves.",
                   reply_to="help-1"),
    StarterMessage("staff-1", "staff", "moderator-katherine",
                   "Moderation queue is clear; holds are reviewed within the hour."),
    StarterMessage("showcase-1", "showcase", "operator-radia",
                   "Spanning trees, now with fewer loops. Feedback welcome."),
)
DEMO_SESSION = ScheduledSession(
    id="seed-demo-office-hours", title="Community office hours", room="office-hours",
    host="admin-margaret", starts_at="2030-01-07T17:00:00.000Z", duration_min=45,
    description="Meet the team, ask about gigs and the platform. Audio and video.")

PACKS: dict[str, SeedPack] = {
    "core": SeedPack("core", "the seed channels every deployment has", SEED_CHANNELS),
    "demo": SeedPack(
        "demo", "personas, categories, starter channels and content, a scheduled live session",
        SEED_CHANNELS + DEMO_CHANNELS, PERSONAS,
        (Category("community", "Community", ("general", "introductions", "showcase")),
         Category("work", "Work", ("gigs",)),
         Category("support", "Support", ("help", "announcements")),
         Category("staff", "Staff", ("staff",))),
        DEMO_MESSAGES, (DEMO_SESSION,)),
}
#: The rooms feature's seeding hook: ``storage.rooms.seed_scheduled_session(store, session)``
#: (``session`` is a ``ScheduledSession``), idempotent on ``session.id``, returning True if
#: it stored it now. Until it exists, sessions are reported as not stored.
SESSION_HOOK = ("storage.rooms", "seed_scheduled_session")


async def seed_channels(store: Store) -> list[str]:
    """Create the seed channels that do not exist yet (idempotent); return their ids."""
    for channel in SEED_CHANNELS:
        await store.ensure_channel(replace(channel))
    return [c.id for c in SEED_CHANNELS]


async def _post(store: Store, pack: SeedPack, people: dict[str, Persona]) -> int:
    ids: dict[str, str] = {}
    created = 0
    for item in pack.messages:
        author = people[item.author]
        message, new = await store.append_message(MessageDraft(
            channel=item.channel, author_id=author.id, author_name=author.name, text=item.text,
            client_id=f"seed:{pack.name}:{item.key}",
            thread_id=ids[item.reply_to] if item.reply_to else None))
        ids[item.key] = message.id
        created += new
    return created


async def _schedule(store: Store, sessions: tuple[ScheduledSession, ...]) -> dict[str, Any]:
    if not sessions:
        return {"stored": 0}
    module_name, hook_name = SESSION_HOOK
    try:
        hook = getattr(importlib.import_module(module_name), hook_name)
    except (ImportError, AttributeError):
        return {"stored": 0, "pending": [s.id for s in sessions],
                "reason": f"{module_name}.{hook_name} does not exist yet"}
    stored = 0
    for session in sessions:
        result = hook(store, session)
        stored += bool(await result if inspect.isawaitable(result) else result)
    return {"stored": stored, "ids": [s.id for s in sessions]}


async def _categorise(store: Store, categories: tuple[Category, ...]) -> list[str]:
    """Give each listed channel its category's name unless an admin already categorised it;
    return the ids changed now."""
    changed = []
    for category in categories:
        for channel_id in category.channels:
            channel = await store.get_channel(channel_id)
            if channel is not None and channel.category is None:
                await store.set_channel_category(channel_id, category.name)
                changed.append(channel_id)
    return changed


async def apply_pack(store: Store, pack: SeedPack) -> dict[str, Any]:
    """Apply ``pack`` (idempotent) and describe what it holds and what it created now."""
    before = {c.id for c in await store.list_channels()}
    for channel in pack.channels:
        await store.ensure_channel(replace(channel))
    categorised = await _categorise(store, pack.categories)
    people = {p.id: p for p in pack.personas}
    return {
        "pack": pack.name,
        "channels": [c.id for c in pack.channels],
        "channels_created": [c.id for c in pack.channels if c.id not in before],
        "categories": {c.id: list(c.channels) for c in pack.categories},
        "categories_set": categorised,
        "personas": [{"id": p.id, "name": p.name, "roles": list(p.roles)} for p in pack.personas],
        "messages_created": await _post(store, pack, people),
        "sessions": await _schedule(store, pack.sessions),
    }
