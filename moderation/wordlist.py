"""Word-list stage: one pass of set look-ups and one compiled regex over normalised text.

Sources, read once by :meth:`WordList.build`:

* ``moderation/data/profanity.txt`` — our curated list, by category;
* better-profanity's bundled ``profanity_wordlist.txt`` when that package is installed,
  located with :func:`importlib.util.find_spec` and read as a file (the package is never
  imported, and never called on the hot path), minus the ``[exclude]`` section of
  ``moderation/data/allowlist.txt`` (identity words, mild, medical, technical words);
* ``[allow]`` and ``[names]`` from ``allowlist.txt`` (Scunthorpe cases, given names).

Matching semantics, on :attr:`NormalizedText.words` (and on :attr:`~NormalizedText.despaced`
when the message has spaced-out letters):

* a plain term matches a whole token, its ``s``/``es`` plural, and elongated spellings
  (``fuuuck``); ``i`` and ``l`` are interchangeable (``dlck``, ``s1ut``); ``*`` inside a
  token stands for a hidden vowel (``f*ck``);
* ``word*`` terms match the start of a token, ``*word*`` terms anywhere inside one, and
  phrases across tokens — these three kinds share one regex whose letters accept runs.

A hit inside an allow-listed token (or hyphenated compound) is dropped; so is a
``[names]`` term written like a name (``Dick Smith``).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import operator
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from moderation.base import EMPTY_RESULT, Label, Span, StageContext, StageResult, labels_over
from moderation.normalize import (
    NormalizedText,
    Normalizer,
    cut_run,
    first_letter,
    squeeze_variants,
)

# category -> (profanity score, toxic score)
CATEGORY_SCORES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "swear": (0.9, 0.0),
        "sexual": (0.8, 0.0),
        "slur": (0.97, 0.85),
        "upstream": (0.75, 0.0),
        "mild": (0.35, 0.0),
    }
)
_VOWELS = "aeiou"
_LETTER_CLASS = {"i": "[il]", "l": "[li]"}
_RUN2 = re.compile(r"([a-z])\1")
_RUN3 = re.compile(r"([a-z])\1\1+")
_COLLAPSE = re.compile(r"([a-z])\1+")
_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_NEXT_WORD = re.compile(r"[\s,]+(\w)")
_BREADTH: Mapping[str, int] = MappingProxyType({"exact": 0, "phrase": 0, "prefix": 1, "inner": 2})
# Tokens proven clean are remembered (see WordList.find); longer tokens are not.
CLEAN_CACHE_SIZE = 50_000
_CLEAN_TOKEN_MAX_LEN = 32
_ALLOWED_MEMO_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Term:
    """One listed term: its plain spelling, its kind (exact/prefix/inner/phrase), category."""

    text: str
    kind: str
    category: str


@dataclass(frozen=True, slots=True)
class Hit:
    """A term found at ``[start, end)`` of ``NormalizedText.words``."""

    start: int
    end: int
    term: Term


@dataclass(frozen=True)
class WordListConfig:
    """What goes into a :class:`WordList`. The defaults are the shipped lists."""

    use_upstream: bool = True
    extra_terms: Mapping[str, str] = field(default_factory=dict)
    extra_allow: frozenset[str] = frozenset()
    include_excluded: frozenset[str] = frozenset()
    data_dir: Path | None = None


@functools.lru_cache(maxsize=4096)
def _key(text: str) -> str:
    """Canonical key used to map a regex match back to its term (memoised: pure)."""
    return _COLLAPSE.sub(first_letter, _SPACES.sub(" ", text.strip())).replace("l", "i")


def _pattern(text: str, kind: str) -> str:
    """Regex for a prefix/inner/phrase term; the first char is a literal (fast search)."""
    parts: list[str] = []
    for index, ch in enumerate(text):
        if ch == " ":
            parts.append(r"\s+")
            continue
        cls = _LETTER_CLASS.get(ch, re.escape(ch))
        if index > 0:
            parts.append(cls + "+")
            continue
        boundary = "" if kind == "inner" else r"(?<!\S.)"
        parts.append(re.escape(ch) + boundary + cls + "*")
    if kind == "phrase":
        parts.append(r"(?:e?s)?(?!\S)")
    return "".join(parts)


def _il_variants(text: str) -> set[str]:
    return {text, text.replace("l", "i"), text.replace("i", "l")}


def parse_sections(lines: Iterable[str]) -> dict[str, list[str]]:
    """Parse ``[section]`` headed lists; ``#`` starts a comment line."""
    sections: dict[str, list[str]] = {}
    current = ""
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
        else:
            sections.setdefault(current, []).append(line)
    return sections


def _read_data(config: WordListConfig, name: str) -> list[str]:
    if config.data_dir is not None:
        return (config.data_dir / name).read_text(encoding="utf-8").splitlines()
    data = resources.files("moderation").joinpath("data", name)
    return data.read_text(encoding="utf-8").splitlines()


def upstream_words() -> list[str]:
    """better-profanity's bundled word list, or ``[]`` if the package is not installed."""
    spec = importlib.util.find_spec("better_profanity")
    if spec is None or spec.origin is None:
        return []
    path = Path(spec.origin).with_name("profanity_wordlist.txt")
    if not path.is_file():
        return []
    return path.read_text(encoding="utf-8").splitlines()


class WordList:
    """An immutable compiled word list. Build it once with :meth:`build` and share it.

    Its only mutable state is a memo: a bounded set of tokens already proven to hit no
    single-token term (``clean_cache`` tokens at most, ``0`` disables it). A message whose
    tokens are all in it skips every per-token check and the ``*inner*`` regex; see
    :meth:`find`. Results are the same with or without the memo.
    """

    def __init__(
        self,
        terms: Iterable[Term],
        allow: Iterable[str],
        names: Iterable[str],
        *,
        clean_cache: int = CLEAN_CACHE_SIZE,
    ) -> None:
        self._exact: dict[str, Term] = {}
        self._shapes: dict[tuple[str, int], list[str]] = {}
        self._by_key: dict[str, Term] = {}
        self._prefix_terms: dict[str, Term] = {}
        inner: list[str] = []
        phrases: list[str] = []
        self._phrase_heads: set[tuple[str, str]] = set()
        cross_token_inner = False
        for term in terms:
            cross_token_inner |= term.kind == "inner" and " " in term.text
            if term.kind == "exact":
                self._add_exact(term)
            elif term.kind == "prefix":
                for spelling in _il_variants(term.text):
                    self._prefix_terms[spelling] = term
            else:
                self._by_key[_key(term.text)] = term
                (inner if term.kind == "inner" else phrases).append(_pattern(term.text, term.kind))
                if term.kind == "phrase":
                    first, second = term.text.split()[:2]
                    self._phrase_heads.update((a, second) for a in _il_variants(first))
        self._prefixes = tuple(self._prefix_terms)
        self._longest_first = tuple(sorted(self._prefix_terms, key=len, reverse=True))
        self._head = min((len(p) for p in self._prefixes), default=1)
        self._head_of = operator.itemgetter(slice(None, self._head))
        self._prefix_heads = frozenset(p[: self._head] for p in self._prefixes)
        self._phrase_firsts = frozenset(first for first, _ in self._phrase_heads)
        self._exact_keys = frozenset(self._exact)
        self._single_exact = frozenset(k for k in self._exact if _RUN2.search(k) is None)
        self._regex = _compile(inner)
        self._phrase_regex = _compile(phrases)
        self._allow = frozenset(allow)
        self._names = frozenset(names)
        self.size = len(self._exact) + len(self._by_key) + len(self._prefix_terms)
        # The memo relies on every non-phrase check being local to one token.
        self._clean_limit = 0 if cross_token_inner else clean_cache
        self._clean: set[str] = set()
        self._allowed_memo: dict[str, bool] = {}  # token -> _is_allowed(token)

    def _add_exact(self, term: Term) -> None:
        for spelling in _il_variants(term.text):
            for form in (spelling, spelling + "s", spelling + "es"):
                if form not in self._exact:
                    self._exact[form] = term
                    self._shapes.setdefault((form[0], len(form)), []).append(form)

    @classmethod
    def build(
        cls, config: WordListConfig | None = None, *, clean_cache: int = CLEAN_CACHE_SIZE
    ) -> WordList:
        """Read the shipped lists (and better-profanity's, if installed) and compile them."""
        config = config or WordListConfig()
        normalizer = Normalizer(cache_limit=4096)
        allow_sections = parse_sections(_read_data(config, "allowlist.txt"))
        excluded = {_norm_entry(normalizer, w) for w in allow_sections.get("exclude", [])}
        excluded -= {_norm_entry(normalizer, w) for w in config.include_excluded}
        excluded |= {w.replace("l", "i") for w in excluded}
        terms: dict[str, Term] = {}
        if config.use_upstream:
            for entry in upstream_words():
                _add_term(terms, normalizer, entry, "upstream", excluded)
        curated = parse_sections(_read_data(config, "profanity.txt"))
        for category, entries in curated.items():
            for entry in entries:
                _add_term(terms, normalizer, entry, category, frozenset())
        for entry, category in config.extra_terms.items():
            _add_term(terms, normalizer, entry, category, frozenset())
        allow = {_norm_entry(normalizer, w) for w in allow_sections.get("allow", [])}
        allow |= {_norm_entry(normalizer, w) for w in config.extra_allow}
        return cls(
            terms.values(), allow, allow_sections.get("names", []), clean_cache=clean_cache
        )

    def find(self, text: NormalizedText) -> list[Hit]:
        """Return the hits in ``text``, in ``words`` coordinates, allow-list applied.

        Fast path: when every token of ``words`` is a known clean token (a C-level subset
        test), only the cross-token checks run: phrases (behind a set test on their first
        words) and spaced-out letters (behind a count of one-letter tokens).
        """
        words = text.words
        tokens = text.token_list
        unique = text.tokens
        if unique <= self._clean:
            hits = self._phrase_hits(words, tokens, unique)
        else:
            hits = self._scan(words, tokens, unique, learn=self._clean_limit > 0)
        despaced = text.despaced
        if despaced != words:
            taken = {(h.start, h.end) for h in hits}
            spaced_tokens = despaced.split()
            for hit in self._scan(despaced, spaced_tokens, frozenset(spaced_tokens)):
                start, end = text.despaced_to_words(hit.start, hit.end)
                if (start, end) not in taken and " " in words[start:end]:
                    hits.append(Hit(start, end, hit.term))
        if not hits:
            return hits
        return [hit for hit in hits if not self._allowed(text, hit)]

    def _scan(
        self, words: str, tokens: list[str], unique: frozenset[str], learn: bool = False
    ) -> list[Hit]:
        """Every hit in ``words`` (``tokens``/``unique`` are its split and its token set)."""
        hits: list[Hit] = []
        found = self._token_hits(words, tokens, unique)
        for token, term in found.items():
            hits.extend(Hit(start, end, term) for start, end in _token_spans(words, token))
        regex = self._regex
        inner = regex is not None and regex.search(words) is not None
        if inner:
            hits.extend(self._regex_hits(regex, words))
        if learn:
            self._learn(unique, found, inner)
        hits.extend(self._phrase_hits(words, tokens, unique))
        return hits

    def _phrase_hits(self, words: str, tokens: list[str], unique: frozenset[str]) -> list[Hit]:
        if self._phrase_firsts.isdisjoint(unique) or not _has_pair(tokens, self._phrase_heads):
            return []
        return list(self._regex_hits(self._phrase_regex, words))

    def _learn(self, unique: frozenset[str], found: dict[str, Term], inner: bool) -> None:
        """Remember the tokens of a scanned message that hit no single-token term.

        A token is clean when it is no exact/prefix term, has no ``*inner*`` match and no
        ``*``, and its elongation variants (runs cut to two letters / to one) hit nothing
        either: :meth:`_squeezed_hits` checks those for every token of a message that has
        a run of three letters anywhere, so a clean token is clean in any message.
        """
        fresh = unique.difference(self._clean, found)
        if inner and self._regex is not None:
            regex = self._regex
            fresh = frozenset(token for token in fresh if regex.search(token) is None)
        candidates = [t for t in fresh if len(t) <= _CLEAN_TOKEN_MAX_LEN and "*" not in t]
        if not candidates:
            return
        joined = " ".join(candidates)
        cut = _RUN3.sub(cut_run, joined).split()
        one = _COLLAPSE.sub(first_letter, joined).split()
        exact, single, prefixes = self._exact_keys, self._single_exact, self._prefixes
        clean = self._clean
        if len(clean) + len(candidates) > self._clean_limit:
            clean.clear()
        for token, two, collapsed in zip(candidates, cut, one, strict=True):
            if two not in exact and collapsed not in single and not collapsed.startswith(prefixes):
                clean.add(token)

    def _regex_hits(self, regex: re.Pattern[str] | None, words: str) -> Iterator[Hit]:
        if regex is None:
            return
        for match in regex.finditer(words):
            hit_term = self._by_key.get(_key(match.group()))
            if hit_term is not None:
                yield Hit(match.start(), match.end(), hit_term)

    def _token_hits(
        self, words: str, tokens: list[str], unique: frozenset[str]
    ) -> dict[str, Term]:
        """Whole-token hits, mostly as C-level set operations (this is the hot path)."""
        exact_hits = unique & self._exact_keys
        found = {token: self._exact[token] for token in exact_hits} if exact_hits else {}
        if not self._prefix_heads.isdisjoint(map(self._head_of, unique)):
            for token in unique:
                if token.startswith(self._prefixes) and token not in found:
                    found[token] = self._prefix_term(token)
        if _RUN3.search(words) is not None:
            self._squeezed_hits(tokens, found)
        if "*" in words:
            for token in unique:
                if "*" in token.strip("*") and token not in found:
                    term = self._star_term(token)
                    if term is not None:
                        found[token] = term
        return found

    def _squeezed_hits(self, tokens: list[str], found: dict[str, Term]) -> None:
        """Elongated spellings (a run of 3+ letters): runs cut to two letters, then to one.

        Collapsing to one letter is only matched against terms without doubled letters,
        so ``assess`` never reads as ``asses``. Runs of exactly two letters are left to
        the ``*inner*`` regex, whose letters accept runs (``fuuck``, ``shiit``).
        """
        two = _RUN3.sub(cut_run, " ".join(tokens)).split()
        one = _COLLAPSE.sub(first_letter, " ".join(tokens)).split()
        hit_two = set(two) & self._exact_keys
        hit_one = set(one) & self._single_exact
        prefixed = any(token.startswith(self._prefixes) for token in one)
        if not (hit_two or hit_one or prefixed):
            return
        for original, cut, collapsed in zip(tokens, two, one, strict=True):
            if original in found:
                continue
            if cut in hit_two:
                found[original] = self._exact[cut]
            elif collapsed in hit_one:
                found[original] = self._exact[collapsed]
            elif collapsed.startswith(self._prefixes):
                found[original] = self._prefix_term(collapsed)

    def _prefix_term(self, token: str) -> Term:
        for prefix in self._longest_first:
            if token.startswith(prefix):
                return self._prefix_terms[prefix]
        raise KeyError(token)

    def _star_term(self, token: str) -> Term | None:
        stars = token.count("*")
        if stars > 3 or len(token) - stars < 2:
            return None
        if stars > 2:
            return self._shape_term(token)
        for vowels in itertools.product(_VOWELS, repeat=stars):
            candidate = token
            for vowel in vowels:
                candidate = candidate.replace("*", vowel, 1)
            term = self._exact.get(candidate)
            if term is None and candidate.startswith(self._prefixes):
                term = self._prefix_term(candidate)
            if term is None and self._regex is not None:
                match = self._regex.search(candidate)
                term = self._by_key.get(_key(match.group())) if match else None
            if term is not None:
                return term
        return self._shape_term(token)

    def _shape_term(self, token: str) -> Term | None:
        """Self-censored spelling (``f**k``): same length, same visible letters."""
        shape = re.compile(re.escape(token).replace(r"\*", "[a-z]"))
        for candidate in self._shapes.get((token[0], len(token)), ()):
            term = self._exact[candidate]
            if term.category != "mild" and shape.fullmatch(candidate) is not None:
                return term
        return None

    def _allowed(self, text: NormalizedText, hit: Hit) -> bool:
        words = text.words
        start = words.rfind(" ", 0, hit.start) + 1
        end = words.find(" ", hit.end)
        token = words[start:] if end < 0 else words[start:end]
        if self._is_allowed(token):
            return True
        compound = _compound(text.folded, hit.start, hit.end)
        if compound != token and self._is_allowed(compound):
            return True
        return hit.term.text in self._names and _looks_like_name(text, hit)

    def _is_allowed(self, token: str) -> bool:
        allowed = self._allowed_memo.get(token)
        if allowed is None:
            allowed = False
            for variant in squeeze_variants(token):
                if variant in self._allow or variant.removesuffix("s") in self._allow:
                    allowed = True
                    break
                if variant.removesuffix("es") in self._allow:
                    allowed = True
                    break
            if len(self._allowed_memo) >= _ALLOWED_MEMO_SIZE:
                self._allowed_memo.clear()
            self._allowed_memo[token] = allowed
        return allowed


def _compile(patterns: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(sorted(patterns, key=len, reverse=True))) if patterns else None


def _token_spans(words: str, token: str) -> Iterator[tuple[int, int]]:
    """``[start, end)`` of each whole-token occurrence of ``token`` (no whitespace in it).

    Same spans as ``re.finditer(r"(?<!\\S)" + re.escape(token) + r"(?!\\S)", words)``,
    without building and looking up a regex per token.
    """
    size = len(token)
    limit = len(words)
    start = words.find(token)
    while start >= 0:
        end = start + size
        if (start == 0 or words[start - 1].isspace()) and (end == limit or words[end].isspace()):
            yield start, end
            start = words.find(token, end)
        else:
            start = words.find(token, start + 1)


def _has_pair(tokens: list[str], heads: set[tuple[str, str]]) -> bool:
    return not heads.isdisjoint(itertools.pairwise(tokens))


def _compound(folded: str, start: int, end: int) -> str:
    left = folded.rfind(" ", 0, start) + 1
    right = folded.find(" ", end)
    chunk = folded[left:] if right < 0 else folded[left:right]
    return _NOT_ALNUM.sub("", chunk)


def _looks_like_name(text: NormalizedText, hit: Hit) -> bool:
    start, end = text.to_original(hit.start, hit.end)
    word = text.original[start:end]
    if not (word[:1].isupper() and word[1:].islower()):
        return False
    following = _NEXT_WORD.match(text.original, end)
    return following is not None and following.group(1).isupper()


def _norm_entry(normalizer: Normalizer, entry: str) -> str:
    normalized = normalizer.normalize(entry.strip().strip("*"))
    return " ".join(normalized.despaced.split())


def _add_term(
    terms: dict[str, Term],
    normalizer: Normalizer,
    entry: str,
    category: str,
    excluded: set[str] | frozenset[str],
) -> None:
    raw = entry.strip().lower()
    plain = _norm_entry(normalizer, raw)
    if not plain or plain in excluded or len(plain) < 2:
        return
    if raw.startswith("*") and raw.endswith("*"):
        kind = "inner"
    elif raw.endswith("*"):
        kind = "prefix"
    elif " " in plain:
        kind = "phrase"
    else:
        kind = "exact"
    key = plain.replace("l", "i")
    if category == "upstream" and key in excluded:
        return
    previous = terms.get(key)
    if previous is not None and _BREADTH[previous.kind] > _BREADTH[kind]:
        return  # "*shit*" already covers "shit"; never narrow a term
    if previous is None or previous.category == "upstream" or category != "upstream":
        terms[key] = Term(plain, kind, category)


class WordListStage:
    """The word-list :class:`~moderation.base.Stage`: ``profanity`` (and ``toxic`` for slurs)."""

    name = "wordlist"

    def __init__(self, wordlist: WordList) -> None:
        self._wordlist = wordlist

    def classify(self, text: str, ctx: StageContext) -> StageResult:
        """Find listed terms in ``ctx.normalized`` and return spans in the original text."""
        hits = self._wordlist.find(ctx.normalized)
        if not hits:
            return EMPTY_RESULT
        spans: list[Span] = []
        scores: dict[Label, float] = {}
        for hit in hits:
            profanity, toxic = CATEGORY_SCORES.get(hit.term.category, (0.75, 0.0))
            start, end = ctx.normalized.to_original(hit.start, hit.end)
            spans.append(Span(start, end, "profanity", profanity, hit.term.text))
            scores["profanity"] = max(scores.get("profanity", 0.0), profanity)
            if toxic:
                scores["toxic"] = max(scores.get("toxic", 0.0), toxic)
        reasons = tuple(sorted({f"profanity:{h.term.category}:{h.term.text}" for h in hits}))
        return StageResult(labels_over(scores), scores, tuple(spans), reasons)
