# Look-alike characters are the point of this module (its tables and tests):
# ruff: noqa: RUF001
from __future__ import annotations

import pytest

from moderation.base import StageContext
from moderation.normalize import Normalizer
from moderation.wordlist import WordList, WordListConfig, WordListStage


def found(wordlist: WordList, normalizer: Normalizer, text: str) -> set[str]:
    return {hit.term.text for hit in wordlist.find(normalizer.normalize(text))}


@pytest.mark.parametrize(
    "text",
    [
        "fuuuuuuck my laptop",
        "ffffuuuuuuuucccckkkkk",
        "f u c k this",
        "f.u.c.k the scope",
        "what the f*ck",
        "f**k",
        "sh!t happens",
        "a55hole",
        "d1ck move",
        "𝓼𝓱𝓲𝓽 code",
        "fu\u0441k this",
        "shítty client",
        "fuck's sake",
        "Sh1tty wifi",
        "motherfuckers",
    ],
)
def test_evasions_are_caught(wordlist: WordList, normalizer: Normalizer, text: str) -> None:
    assert found(wordlist, normalizer, text)


@pytest.mark.parametrize(
    "text",
    [
        "Scunthorpe United",
        "I live in Essex, near Sussex",
        "assassin assess class classic compass",
        "cocktail cockpit peacock Hitchcock shuttlecock",
        "grape therapist",
        "shiitake and shitake",
        "He is a cock-eyed optimist",
        "My manager Dick Smith",
        "I'm gay, queer, lesbian, trans, Black, Muslim and a Jew",
        "oh my god omg that was stupid, kill it",
        "Arsenal document cucumber circumstances",
        "I paid 455 euros",
        "penetration testing, master/slave, analysis",
        "We shipped the Matsushita integration",
    ],
)
def test_false_positives_are_avoided(wordlist: WordList, normalizer: Normalizer, text: str) -> None:
    assert found(wordlist, normalizer, text) == set()


def test_mild_words_score_below_the_mask_threshold(
    wordlist: WordList, normalizer: Normalizer
) -> None:
    stage = WordListStage(wordlist)
    result = stage.classify("damn", StageContext(normalizer.normalize("damn")))
    assert 0 < result.scores["profanity"] < 0.5


def test_slurs_also_score_toxic(wordlist: WordList, normalizer: Normalizer) -> None:
    text = "you f4ggot"
    result = WordListStage(wordlist).classify(text, StageContext(normalizer.normalize(text)))
    assert result.scores["toxic"] >= 0.5


def test_spans_point_into_the_original_text(wordlist: WordList, normalizer: Normalizer) -> None:
    text = "well ｆｕｃｋ that"
    result = WordListStage(wordlist).classify(text, StageContext(normalizer.normalize(text)))
    assert [text[s.start : s.end] for s in result.spans] == ["ｆｕｃｋ"]


def test_build_without_upstream_list_and_with_extras() -> None:
    wordlist = WordList.build(
        WordListConfig(
            use_upstream=False, extra_terms={"frak": "swear"}, extra_allow=frozenset({"fraktur"})
        )
    )
    normalizer = Normalizer()
    assert found(wordlist, normalizer, "frak this") == {"frak"}
    assert found(wordlist, normalizer, "fraktur font") == set()


def test_identity_words_can_be_opted_back_in() -> None:
    wordlist = WordList.build(WordListConfig(include_excluded=frozenset({"omg"})))
    assert found(wordlist, Normalizer(), "omg") == {"omg"}


def test_curated_list_alone_keeps_inner_roots() -> None:
    wordlist = WordList.build(WordListConfig(use_upstream=False))
    normalizer = Normalizer()
    assert found(wordlist, normalizer, "absolute bullshit") == {"shit"}
    assert found(wordlist, normalizer, "Matsushita") == set()
