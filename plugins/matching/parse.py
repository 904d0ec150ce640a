"""Recognising a gig in a chat message: pure functions, no I/O (cheap on every message)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from plugins.matching.models import MAX_SKILLS

PREFIX = "gig:"
MAX_TITLE = 200
#: ``#tag`` not glued to a word before it; tags may carry ``+ # . -`` (``#c++``, ``#node.js``).
_TAG = re.compile(r"(?<![\w#])#([A-Za-z0-9][A-Za-z0-9+#.-]{0,31})(?![A-Za-z0-9+#.-])")


@dataclass(frozen=True, slots=True)
class ParsedGig:
    """What a gig message says: its title and its skills (lower case, first seen first)."""

    title: str
    skills: list[str]


def looks_like_gig(text: str) -> bool:
    """True if ``text`` starts with ``Gig:`` (any case, leading blanks ignored)."""
    return text[:64].lstrip()[:4].lower() == PREFIX


def parse_gig(text: str) -> ParsedGig | None:
    """The gig in ``text``, or None if it is not one (no ``Gig:`` prefix or no skill tag)."""
    if not looks_like_gig(text):
        return None
    body = text.lstrip()[len(PREFIX):].strip()
    skills: list[str] = []
    for match in _TAG.finditer(body):
        skill = match.group(1).lower().rstrip(".-")  # "#python." ends a sentence
        if skill and skill not in skills:
            skills.append(skill)
    if not skills:
        return None
    title = " ".join(body.split())
    if len(title) > MAX_TITLE:
        title = title[:MAX_TITLE - 1].rstrip() + "…"
    return ParsedGig(title, skills[:MAX_SKILLS])
