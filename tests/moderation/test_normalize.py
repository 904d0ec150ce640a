# Look-alike characters are the point of this module (its tables and tests):
# ruff: noqa: RUF001
from __future__ import annotations

import pytest

from moderation.normalize import Normalizer, squeeze_variants


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("FUCK", "fuck"),
        ("fück", "fuck"),
        ("ｆｕｃｋ", "fuck"),
        ("𝐟𝐮𝐜𝐤", "fuck"),
        ("ᶠᵘᶜᵏ", "fuck"),
        ("fu\u200bck", "fuck"),
        ("fu\u00adck", "fuck"),
        ("f\u202eu\u202cck", "fuck"),
        ("fu\u0441k", "fuck"),
        ("\u0455hit", "shit"),
        ("sh!t", "shit"),
        ("a$$", "ass"),
        ("b1tch", "bitch"),
        ("h3ll0 w0rld", "hello world"),
        ("e\u0301cole", "ecole"),
    ],
)
def test_evasions_fold_to_plain_words(normalizer: Normalizer, text: str, words: str) -> None:
    assert normalizer.normalize(text).words == words


def test_numbers_without_letters_stay_digits(normalizer: Normalizer) -> None:
    assert normalizer.normalize("I paid 455 euros").words == "i paid 455 euros"


def test_trailing_punctuation_is_not_leetspeak(normalizer: Normalizer) -> None:
    assert normalizer.normalize("hello!!").words.strip() == "hello"


@pytest.mark.parametrize("text", ["f u c k", "f.u.c.k", "f-u-c-k", "f_u_c_k"])
def test_spaced_letters_are_joined(normalizer: Normalizer, text: str) -> None:
    assert normalizer.normalize(text + " this").despaced == "fuck this"


def test_despaced_maps_back_to_words(normalizer: Normalizer) -> None:
    text = normalizer.normalize("oh k y s now")
    start = text.despaced.index("kys")
    assert text.despaced_to_words(start, start + 3) == (3, 8)


def test_offsets_map_back_across_dropped_characters(normalizer: Normalizer) -> None:
    original = "a fu\u200bck b"
    text = normalizer.normalize(original)
    start = text.words.index("fuck")
    begin, end = text.to_original(start, start + 4)
    assert original[begin:end] == "fu\u200bck"


def test_squeeze_variants() -> None:
    assert squeeze_variants("fuuuuck") == ("fuuuuck", "fuuck", "fuck")
    assert squeeze_variants("plain") == ("plain",)
