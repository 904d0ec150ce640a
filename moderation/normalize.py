"""Text normalisation against filter evasion, with a map back to the original text.

The normalised forms are *matching* forms, never shown to anyone:

``folded``
    NFKC, case-folded, accents and other combining marks stripped, invisible and
    format characters (zero-width, bidi controls, soft hyphen, tags, variation
    selectors) removed, look-alike letters (Cyrillic, Greek, small capitals, regional
    indicators, ...) mapped to Latin, emoji and other symbols turned into spaces, and
    leetspeak decoded inside tokens that mix letters with digits or symbols
    (``sh!t`` -> ``shit``, ``a$$`` -> ``ass``; a lone ``455`` stays digits). ASCII
    punctuation is kept.
``words``
    ``folded`` with punctuation replaced by spaces. Same length as ``folded``.
``despaced``
    ``words`` with runs of three or more single-letter tokens joined
    (``f u c k`` / ``f.u.c.k`` / ``f-u-c-k`` -> ``fuck``).

Repeated letters (``fuuuuck``) are *not* collapsed here because collapsing changes
meaning (``ass`` -> ``as``); matchers try collapsed variants of each token instead,
see :func:`squeeze_variants`.

Mapping back: ``folded`` and ``words`` share indices; :meth:`NormalizedText.to_original`
maps a ``[start, end)`` span of them to the original string. The mapping is exact
for one-to-one characters and approximate where a character expanded (``ﬁ`` -> ``fi``)
or was dropped (a trailing combining mark after a masked word is left in place).
"""

# Look-alike characters are the point of this module (its tables and tests):
# ruff: noqa: RUF001
from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

_CONFUSABLES: Mapping[str, str] = MappingProxyType(
    {
        # Cyrillic look-alikes (lower case; upper case is folded to lower first)
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
        "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ь": "b", "п": "n",
        "г": "r", "и": "u", "л": "n", "ѵ": "v", "ү": "y", "ц": "u", "з": "3", "ч": "4",
        # Greek look-alikes
        "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "ζ": "z", "η": "n", "ι": "i",
        "κ": "k", "λ": "l", "μ": "u", "ν": "v", "ο": "o", "ρ": "p", "σ": "o", "ς": "c",
        "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
        # Latin letters that NFKC and NFD leave alone
        "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ƒ": "f", "ɡ": "g",
        "ß": "ss", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d", "ŋ": "n", "ɑ": "a",
        "ɩ": "i", "ʋ": "u", "ɐ": "a", "ǝ": "e", "ɔ": "c", "ɯ": "m", "ʞ": "k", "ʇ": "t",
        # small capitals
        "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h",
        "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p",
        "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
        # currency and symbols used as letters
        "€": "e", "£": "l", "¢": "c", "¥": "y", "©": "c", "®": "r", "×": "x",
    }
)

# Leetspeak, applied only inside tokens that also contain a letter.
_LEET = str.maketrans({
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "!": "i", "|": "i", "+": "t",
})
_EDGE_SYMBOLS = "!|+*"
# A token of letters, digits and leet symbols with at least one symbol or digit and at least
# one letter (a token without a letter is left alone, so it is not matched at all).
_LEETISH_TOKEN = re.compile(
    r"(?<![a-z0-9@$!|+*])(?=[a-z0-9@$!|+*]*[0-9@$!|+*])(?=[0-9@$!|+*]*[a-z])[a-z0-9@$!|+*]+"
)
_HAS_LETTER = re.compile(r"[a-z]")
_LEET_CHAR = re.compile(r"[0-9@$!|+*]")
# Punctuation -> space for ``words``; ``*`` survives (it stands for a hidden vowel).
_PUNCT_TO_SPACE = str.maketrans(
    {ch: " " for ch in "!\"#$%&'()+,-./:;<=>?@[\\]^_`{|}~\t\n\r\x0b\x0c"}
)
# The same for ASCII text, as a ``bytes.translate`` table.
_PUNCT_TO_SPACE_BYTES = bytes(ord(_PUNCT_TO_SPACE.get(code, chr(code))) for code in range(256))
_SPACED_RUN = re.compile(r"(?<!\S)[a-z*](?:\s+[a-z*](?!\S)){2,}")
_RUN3 = re.compile(r"([a-z])\1{2,}")
_RUN2 = re.compile(r"([a-z])\1+")
# Characters that render as nothing but are not in category Cf / Mn.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")
_DROP_CATEGORIES = frozenset({"Mn", "Me", "Cf", "Cc", "Co", "Cs", "Cn"})
_REGIONAL_A = 0x1F1E6


def fold_char(ch: str) -> str:
    """Fold one character to its matching form ('' drops it, ' ' makes it a separator)."""
    if ch.isascii():
        return ch.lower() if ch.isprintable() else " "
    code = ord(ch)
    if _REGIONAL_A <= code < _REGIONAL_A + 26:
        return chr(ord("a") + code - _REGIONAL_A)
    if ch in _INVISIBLE:
        return ""
    out: list[str] = []
    for part in unicodedata.normalize("NFD", unicodedata.normalize("NFKC", ch).casefold()):
        out.append(_fold_simple(part))
    return "".join(out)


def _fold_simple(part: str) -> str:
    if part.isascii():
        return part if part.isprintable() else " "
    if part in _CONFUSABLES:
        return _CONFUSABLES[part]
    category = unicodedata.category(part)
    if category in _DROP_CATEGORIES or part in _INVISIBLE:
        return "" if category != "Cc" else " "
    if category[0] in "SPZ":
        return " "
    return part


class _FoldTable(dict[int, str]):
    """``str.translate`` table that folds unseen characters on first use (bounded)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def __missing__(self, code: int) -> str:
        value = fold_char(chr(code))
        if len(self) < self._limit:
            self[code] = value
        return value


class NormalizedText:
    """The matching forms of one message plus the map back to the original.

    ``words``, ``token_list`` (its whitespace-separated tokens, in order) and ``tokens``
    (the distinct ones) are computed once here, because every rule stage reads them;
    they are shared by all stages, so treat them as read-only. ``despaced`` is computed
    on first use, and costs nothing unless the message has three one-letter tokens.
    """

    __slots__ = ("_despaced", "_offsets", "folded", "original", "token_list", "tokens", "words")

    def __init__(self, original: str, folded: str, offsets: list[int] | None) -> None:
        self.original = original
        self.folded = folded
        if folded.isascii():  # a 256-byte table: several times faster than a dict table
            words = folded.encode("ascii").translate(_PUNCT_TO_SPACE_BYTES).decode("ascii")
        else:
            words = folded.translate(_PUNCT_TO_SPACE)
        self.words = words
        self._offsets = offsets
        token_list = words.split()
        self.token_list: list[str] = token_list
        self.tokens: frozenset[str] = frozenset(token_list)
        # A spaced-out run needs three one-character tokens: count them in C first.
        self._despaced: tuple[str, list[int] | None] | None = (
            (words, None) if list(map(len, token_list)).count(1) < 3 else None
        )

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map ``[start, end)`` of ``folded``/``words`` to ``[start, end)`` of ``original``."""
        if self._offsets is None or end <= start:
            return start, end
        return self._offsets[start], self._offsets[end - 1] + 1

    @property
    def despaced(self) -> str:
        """``words`` with spaced-out single letters joined (``k y s`` -> ``kys``)."""
        pair = self._despaced
        if pair is None:
            pair = self._despaced = _join_spaced(self.words)
        return pair[0]

    def despaced_to_words(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` span of :attr:`despaced` to a span of :attr:`words`."""
        index = self._despaced_pair()[1]
        if index is None or end <= start:
            return start, end
        return index[start], index[end - 1] + 1

    def _despaced_pair(self) -> tuple[str, list[int] | None]:
        if self._despaced is None:
            self._despaced = _join_spaced(self.words)
        return self._despaced


def _join_spaced(words: str) -> tuple[str, list[int] | None]:
    if _SPACED_RUN.search(words) is None:
        return words, None
    pieces: list[str] = []
    index: list[int] = []
    cursor = 0
    for match in _SPACED_RUN.finditer(words):
        pieces.append(words[cursor:match.start()])
        index.extend(range(cursor, match.start()))
        for pos in range(match.start(), match.end()):
            if not words[pos].isspace():
                pieces.append(words[pos])
                index.append(pos)
        cursor = match.end()
    pieces.append(words[cursor:])
    index.extend(range(cursor, len(words)))
    return "".join(pieces), index


def _decode_leet(match: re.Match[str]) -> str:
    token = match.group()
    if _HAS_LETTER.search(token) is None:
        return token
    core = token.strip(_EDGE_SYMBOLS)
    if not core:
        return token
    lead = len(token) - len(token.lstrip(_EDGE_SYMBOLS))
    trail = len(token) - lead - len(core)
    return " " * lead + core.translate(_LEET) + " " * trail


class Normalizer:
    """Builds :class:`NormalizedText`; owns a bounded cache of folded characters."""

    def __init__(self, cache_limit: int = 65_536) -> None:
        self._table = _FoldTable(cache_limit)
        for code in range(128):
            self._table[code] = fold_char(chr(code))

    def normalize(self, text: str) -> NormalizedText:
        """Return the matching forms of ``text``; see the module docstring."""
        if text.isascii():
            folded, offsets = text.lower(), None
            if not text.isprintable():
                folded = folded.translate(self._table)
        else:
            folded, offsets = self._fold_unicode(text)
        if _LEET_CHAR.search(folded) is not None:
            folded = _LEETISH_TOKEN.sub(_decode_leet, folded)
        return NormalizedText(text, folded, offsets)

    def _fold_unicode(self, text: str) -> tuple[str, list[int] | None]:
        table = self._table
        if all(len(table[ord(ch)]) == 1 for ch in set(text)):
            return text.translate(table), None
        pieces: list[str] = []
        offsets: list[int] = []
        for position, ch in enumerate(text):
            folded = table[ord(ch)]
            pieces.append(folded)
            offsets.extend([position] * len(folded))
        return "".join(pieces), offsets


def cut_run(match: re.Match[str]) -> str:
    """``re.sub`` replacement: a run of one letter cut to its first two letters.

    (A callable, not the template ``r"\\1\\1"``: Python 3.11 expands templates with
    groups in Python code, several times slower.)
    """
    return match.group()[:2]


# ``re.sub`` replacement for ``r"\1"``: the first group, looked up in C.
first_letter = operator.itemgetter(1)


def squeeze_variants(token: str) -> tuple[str, ...]:
    """Return ``token`` plus variants with repeated letters collapsed.

    ``fuuuuck`` -> (``fuuuuck``, ``fuuck``, ``fuck``); runs of three or more are first cut
    to two (``asssss`` -> ``ass``), then all runs to one. Tokens without doubled letters
    give just themselves.
    """
    if _RUN2.search(token) is None:
        return (token,)
    two = _RUN3.sub(cut_run, token)
    one = _RUN2.sub(first_letter, token)
    return tuple(dict.fromkeys((token, two, one)))


def squeeze_runs(text: str) -> str:
    """Cut runs of three or more identical letters to two (``sooo`` -> ``soo``)."""
    return _RUN3.sub(cut_run, text)
