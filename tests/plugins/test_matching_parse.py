"""Recognising gigs in chat text (pure functions of plugins/matching/parse.py)."""

from __future__ import annotations

import pytest

from plugins.matching.parse import MAX_TITLE, ParsedGig, looks_like_gig, parse_gig


@pytest.mark.parametrize("text, skills", [
    ("Gig: landing page #python #React", ["python", "react"]),
    ("  gig:#python", ["python"]),
    ("GIG: native app #c++ #c# #node.js.", ["c++", "c#", "node.js"]),
    ("Gig: twice #Python and #python", ["python"]),
    ("Gig: glued foo#bar is no tag, #ok is", ["ok"]),
])
def test_gigs_and_their_skills(text: str, skills: list[str]) -> None:
    parsed = parse_gig(text)
    assert parsed is not None and parsed.skills == skills


@pytest.mark.parametrize("text", [
    "hello #python", "Gig: no tags", "a Gig: #python", "Gig #python", "", "Gig:",
    "Gig: #" + "x" * 40,
])
def test_not_gigs(text: str) -> None:
    assert parse_gig(text) is None


def test_title_is_the_text_after_the_prefix_on_one_line_and_bounded() -> None:
    assert parse_gig("Gig:  build\n a  site #web") == ParsedGig("build a site #web", ["web"])
    long = parse_gig("Gig: " + "word " * 100 + "#web")
    assert long is not None and len(long.title) == MAX_TITLE and long.title.endswith("…")


def test_at_most_twenty_skills_and_a_cheap_prefix_test() -> None:
    parsed = parse_gig("Gig: many " + " ".join(f"#s{i}" for i in range(30)))
    assert parsed is not None and parsed.skills == [f"s{i}" for i in range(20)]
    assert looks_like_gig("gIg: x") and not looks_like_gig("x" * 10_000)
