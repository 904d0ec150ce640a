"""Payloads of the matching plugin: what clients send (validated on the hub and in the views)
and what the server answers or emits (documented in the OpenAPI part and the contract)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: A skill tag as stored and matched: lower case, 1-32 characters of ``[a-z0-9+#.-]``.
SKILL_PATTERN = r"^[a-z0-9+#.-]{1,32}$"
MAX_SKILLS = 20
Skill = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=SKILL_PATTERN)]


class SubscribeIn(BaseModel):
    """``gigs:subscribe``: the skills to be told about (replaces the previous set; ``[]``
    unsubscribes from everything)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    skills: list[Skill] = Field(max_length=MAX_SKILLS)


class SubscriptionIn(BaseModel):
    """``gigs:subscription``: no fields (the caller's current set is answered)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class GigQuery(BaseModel):
    """``GET /api/v1/gigs?skill=&limit=``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    skill: Skill | None = None
    limit: int = Field(default=20, ge=1, le=100)


class GigAuthor(BaseModel):
    """Who posted the gig."""

    id: str
    name: str


class Gig(BaseModel):
    """A gig: the chat message it came from, its title (the text after ``Gig:``, tags
    included, at most 200 characters) and its skill tags."""

    model_config = ConfigDict(extra="allow")

    id: str
    message_id: str
    channel: str
    seq: int
    author: GigAuthor
    title: str
    skills: list[str]
    created_at: str


class GigList(BaseModel):
    """``GET /api/v1/gigs``: the newest first."""

    gigs: list[Gig]
