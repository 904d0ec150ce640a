"""Toxicity without swear words: a small weighted pattern lexicon (label ``toxic``).

It targets what word lists miss — harassment aimed at a person, threats, self-harm
incitement, exclusion, identity attacks, sexual harassment — and deliberately requires
a target ("you", "people like you", a group) so that "kill the process", "this bug is
killing me" or "I felt worthless" stay clean. Patterns run on the normalised ``words``
form (leetspeak and look-alikes already decoded), on its spaced-letters-joined form
(``k y s``) and, for elongated messages, on a form with letter runs cut to two.

Each pattern carries a weight; the stage's ``toxic`` score is the noisy-OR of the
weights that fired (see :func:`moderation.base.combine_scores`). Weights >= 0.95 mean
"block by default" (self-harm incitement, explicit violent threats).

Trigger words screen first: each pattern lists ``anchors``, words of which every match
necessarily contains one as a whole token, i.e. a run of word characters (a literal that the
regex puts between word boundaries or whitespace in every alternative). A pattern whose anchors
are all absent from the message cannot match, so its regex is not run; the verdicts are exactly
those without the screen (``tests/moderation/test_toxic_spam.py`` checks it). A pattern without
anchors always runs: when you edit a pattern, keep its anchors true to it.
"""

# Regex tables read best one alternative group per line, even past 100 columns:
# ruff: noqa: E501
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from moderation.base import (
    EMPTY_RESULT,
    Label,
    Span,
    StageContext,
    StageResult,
    combine_scores,
    labels_over,
)
from moderation.normalize import NormalizedText, squeeze_runs

_YOU = r"(?:you|u|ya|yu)"
_YOU_ARE = r"(?:you\s+are|you\s+re|youre|you\s+r|ur|u\s+r|u\s+are|u\s+re)"
_INTENS = (
    r"(?:so|such|really|truly|totally|completely|utterly|just|literally|absolutely|"
    r"fucking|fuckin|freaking|effing|f\w*ing|damn|a|an|the|most|biggest|complete|total|"
    r"absolute|utter|nothing\s+but|nothing\s+more\s+than|one\s+big|a\s+big)"
)
_ADJ = (
    r"(?:worthless|pathetic|disgusting|useless|stupid|dumb|brainless|brain\s*dead|ugly|"
    r"incompetent|hopeless|subhuman|inferior|repulsive|vile|gross|pitiful|irrelevant|"
    r"idiotic|moronic|clueless|retarded|trash|garbage|nothing|fat|lazy|dirty|filthy)"
)
_NOUN = (
    r"(?:idiot|imbecile|moron|loser|clown|failure|joke|parasite|disgrace|embarrassment|"
    r"fraud|nobody|freak|creep|psycho|degenerate|animal|pig|rat|cockroach|ape|monkey|"
    r"mistake|abomination|coward|scum|vermin|retard|dumbass|dimwit|halfwit|nitwit|cretin|"
    r"simpleton|buffoon|fool|waste\s+of\s+(?:space|oxygen|air|skin|time)|"
    r"piece\s+of\s+(?:shit|crap|garbage|trash|work|filth)|excuse\s+(?:for|of)\s+an?\s+\w+)"
)
_VOC_NOUN = (
    r"(?:idiot|imbecile|moron|loser|clown|parasite|disgrace|freak|creep|psycho|degenerate|"
    r"cretin|dimwit|halfwit|nitwit|retard|dumbass|scum|vermin|pig|cockroach|coward|buffoon|"
    r"simpleton|fool|waste\s+of\s+(?:space|oxygen|air|skin)|"
    r"piece\s+of\s+(?:shit|crap|garbage|trash|filth))"
)
_GROUP = (
    r"(?:women|girls|females|men|gays|gay\s+people|lesbians|trans\s+people|trannies|"
    r"muslims|jews|blacks|black\s+people|whites|immigrants|foreigners|indians|asians|"
    r"mexicans|arabs|christians|africans|refugees|disabled\s+people)"
)
_NOT = r"(?!\s*(?:not|never|no)\b)"
_HARM_VERB = r"(?:kill|murder|stab|shoot|rape|strangle|behead)"
_HURT_VERB = r"(?:hurt|beat|punch|slap|smash|destroy|break|burn|choke|hunt|end)"


_WORD = re.compile(r"\w+")


def _words(*groups: str) -> frozenset[str]:
    """Anchor words, space-separated (groups are joined)."""
    return frozenset(" ".join(groups).split())


# The whole-token words each pattern's matches must contain (see the module docstring).
_GROUP_HEADS = ("women girls females men gays gay lesbians trans trannies muslims jews blacks "
                "black whites immigrants foreigners indians asians mexicans arabs christians "
                "africans refugees disabled")
_ADJ_WORDS = ("worthless pathetic disgusting useless stupid dumb brainless brain braindead ugly "
              "incompetent hopeless subhuman inferior repulsive vile gross pitiful irrelevant "
              "idiotic moronic clueless retarded trash garbage nothing fat lazy dirty filthy")
_NOUN_WORDS = ("idiot imbecile moron loser clown failure joke parasite disgrace embarrassment "
               "fraud nobody freak creep psycho degenerate animal pig rat cockroach ape monkey "
               "mistake abomination coward scum vermin retard dumbass dimwit halfwit nitwit "
               "cretin simpleton buffoon fool waste piece excuse")
_VOC_WORDS = ("idiot imbecile moron loser clown parasite disgrace freak creep psycho degenerate "
              "cretin dimwit halfwit nitwit retard dumbass scum vermin pig cockroach coward "
              "buffoon simpleton fool waste piece")
_HURT_WORDS = "hurt beat punch slap smash destroy break burn choke hunt end"
ANCHORS: dict[str, frozenset[str]] = {
    "self_harm": _words("kys kill bleach hang end go stop"),
    "death_wish": _words("should hope deserve"),
    "threat_violence": _words("kill murder stab shoot rape strangle behead"),
    "threat": _words(_HURT_WORDS, "find track know found make making regret pay someone dead"),
    "threat_soft": _words("watch shut see"),
    "insult": _words(_ADJ_WORDS, _NOUN_WORDS),
    "insult_superlative": _words("dumbest stupidest worst ugliest laziest most"),
    "insult_vocative": _words(_VOC_WORDS),
    "insult_existence": _words("joke worthless meaningless pointless trash garbage pathetic "
                               "waste disgusting"),
    "exclusion": _words("nobody noone no hates despises belong welcome happier better"),
    "go_away": _words("get disappear leave never die quit"),
    "identity_attack": _words("back kind people", _GROUP_HEADS),
    "sexual_harassment": _words("send show"),
    "hostile": _words("hate sick nobody"),
    "rude": _words("shut"),
}


@dataclass(frozen=True, slots=True)
class ToxicPattern:
    """One lexicon entry: a reason code, a weight in ``[0, 1]``, a compiled regex and its
    trigger words (empty: no screen, the regex always runs)."""

    reason: str
    weight: float
    regex: re.Pattern[str]
    anchors: frozenset[str] = frozenset()


def _p(reason: str, weight: float, pattern: str) -> ToxicPattern:
    return ToxicPattern(reason, weight, re.compile(pattern), ANCHORS[reason])


def default_patterns() -> tuple[ToxicPattern, ...]:
    """The shipped lexicon. Callers may pass their own tuple to :class:`ToxicityStage`."""
    return (
        _p("self_harm", 0.97, r"\bkys\b|\bkill\s+(?:your\s*self|yourselves|urself|yoself)\b"
           r"|\bdrink\s+bleach\b|\bhang\s+(?:your\s*self|urself)\b|\bend\s+your\s+(?:own\s+)?life\b"
           r"|\bgo\s+(?:and\s+)?(?:die|off\s+yourself)\b|\bstop\s+breathing\b"),
        _p("death_wish", 0.9, rf"\b{_YOU}\s+should\s+(?:just\s+|all\s+)?(?:die|not\s+exist|be\s+dead)\b"
           rf"|\bhope\s+{_YOU}\s+(?:die|get\s+(?:cancer|hit|run\s+over|killed)|rot|burn|suffer|choke|drop\s+dead)\b"
           rf"|\b{_YOU}\s+deserve\s+(?:to\s+(?:suffer|die|be\s+hurt|rot|be\s+punished)|pain|death)\b"),
        _p("threat_violence", 0.97,
           rf"\b(?:i|we|ill|im|i\s+ll|i\s+m|we\s+ll)\s+(?:will\s+|am\s+|m\s+|are\s+|re\s+)?(?:going\s+to\s+|gonna\s+|"
           rf"personally\s+)?{_HARM_VERB}\s+{_YOU}\b"),
        _p("threat", 0.9,
           rf"\b(?:i|we|ill|im|i\s+ll|i\s+m|we\s+ll)\s+(?:will\s+|am\s+|m\s+|are\s+|re\s+)?(?:going\s+to\s+|gonna\s+|"
           rf"personally\s+)?(?:{_HURT_VERB}\s+{_YOU}\b|(?:find|track)\s+{_YOU}\b"
           r"(?!\s+(?:a|an|the|some|someone|somebody|something|one|two|more|my|our|his|her|their|"
           r"this|that|these|those|it|them|what|where|when|how|if|in|on|at|for|with|later|soon|"
           r"tomorrow|today|the)\b))"
           rf"|\b(?:know|find|found|find\s+out)\s+where\s+{_YOU}\s+(?:live|sleep|work)\b"
           rf"|\bmake\s+sure\s+{_YOU}\s+(?:never|don\s*t|won\s*t|regret|pay|suffer)\b"
           rf"|\b{_YOU}\s*(?:ll|will|are\s+going\s+to|re\s+going\s+to|re\s+gonna)\s+(?:regret|pay\s+for)\b"
           rf"|\b(?:make|making)\s+(?:{_YOU}|your\s+life)\s+(?:a\s+)?(?:living\s+)?(?:hell|suffer|miserable)\b"
           rf"|\bsomeone\s+(?:should|needs\s+to|ought\s+to)\s+(?:{_HARM_VERB}|{_HURT_VERB}|shut|silence)\s+{_YOU}\b"
           rf"|\b{_YOU}\s*(?:re|are)\s+(?:so\s+)?dead\b|\bbeat\s+{_YOU}\s+up\b"),
        _p("threat_soft", 0.6, rf"\bwatch\s+your\s+back\b|\bshut\s+you\s+up\s+for\s+good\b"
           rf"|\bsee\s+what\s+happens\s+to\s+{_YOU}\b"),
        _p("insult", 0.8, rf"\b{_YOU_ARE}{_NOT}\s+(?:{_INTENS}\s+)*(?:{_ADJ}\s+)*(?:{_NOUN}|{_ADJ})\b"
           rf"|\byour\s+(?:so|such\s+an?|an?)\s+(?:{_INTENS}\s+)*(?:{_ADJ}\s+)*(?:{_NOUN}|{_ADJ})\b"),
        _p("insult_superlative", 0.8, rf"\b{_YOU_ARE}\s+the\s+(?:dumbest|stupidest|worst|ugliest|laziest|"
           r"most\s+(?:useless|pathetic|annoying|incompetent|worthless|disgusting))\s+(?:\w+\s+)?"
           r"(?:person|human|member|designer|developer|dev|freelancer|thing|idiot|loser|one)\b"),
        _p("insult_vocative", 0.75, rf"\b{_YOU}\s+(?:{_INTENS}\s+)?(?:{_ADJ}\s+)*{_VOC_NOUN}\b"),
        _p("insult_existence", 0.75, r"\byour\s+(?:existence|whole\s+life|life|face|mother|mom)\s+is\s+"
           r"(?:a\s+)?(?:joke|worthless|meaningless|pointless|trash|garbage|pathetic|waste|disgusting)\b"),
        _p("exclusion", 0.7, rf"\b(?:nobody|no\s+one|noone|no\s+body)\s+(?:here\s+)?(?:even\s+)?(?:wants|likes|needs|"
           rf"cares\s+about|asked\s+for|(?:would|will)\s+(?:ever\s+)?(?:miss|hire|love|want|like|care\s+about))\s+"
           rf"(?:{_YOU}|your)\b|\b(?:everyone|everybody|we\s+all|all\s+of\s+us)\s+(?:here\s+)?(?:hates|despises)\s+{_YOU}\b"
           rf"|\b(?:{_YOU}|your\s+kind|people\s+like\s+{_YOU})\s+(?:don\s*t|do\s+not|doesn\s*t|does\s+not)\s+belong\b"
           rf"|\b{_YOU_ARE}\s+not\s+welcome\b"
           rf"|\b(?:everyone|everybody|we|the\s+world|this\s+(?:group|place|community))\s+(?:would|will|d)\s+be\s+"
           rf"(?:so\s+much\s+|much\s+|a\s+lot\s+)?(?:happier|better(?:\s+off)?)\s+(?:if\s+{_YOU}\s+(?:left|leave|died|"
           rf"were\s+gone|quit)|without\s+{_YOU})\b"),
        _p("go_away", 0.6, r"\bget\s+lost\b(?!\s+in\b)|\bget\s+out\s+of\s+here\b|\bdisappear\s+forever\b"
           r"|\bleave\s+this\s+(?:group|channel|community|server|place|chat)\b|\bnever\s+come\s+back\b"
           r"|\bdo\s+(?:us|everyone|the\s+world)\s+a\s+fav\w*\s+and\s+(?:die|disappear|leave|quit)\b"),
        _p("identity_attack", 0.85, r"\bgo\s+back\s+to\s+(?:your\s+(?:own\s+)?country|where\s+you\s+came\s+from|"
           r"the\s+kitchen|your\s+cave)\b"
           rf"|\b{_GROUP}\s+(?:are\s+(?:all\s+)?(?:stupid|animals|inferior|subhuman|vermin|trash|garbage|dirty|"
           r"criminals|terrorists|disgusting|worthless|useless|parasites|dumb)|(?:can\s*t|cannot)\s+(?:code|program|"
           r"drive|think|lead|engineer|design|do\s+math)|should\s+(?:die|be\s+banned|be\s+deported|go\s+back))\b"
           rf"|\b(?:your\s+kind|people\s+like\s+{_YOU})\s+(?:should|shouldn\s*t|are|is|isn\s*t|aren\s*t)\b"),
        _p("sexual_harassment", 0.85, r"\bsend\s+(?:me\s+)?(?:your\s+)?(?:nudes|noods|nude\s+pics|naked\s+pics)\b"
           r"|\bshow\s+me\s+your\s+(?:body|tits|boobs|breasts)\b"),
        _p("hostile", 0.6, rf"\bi\s+hate\s+{_YOU}\b|\b{_YOU}\s+make\s+me\s+sick\b"
           rf"|\bnobody\s+asked\s+(?:you|u)\b"),
        _p("rude", 0.4, r"\bshut\s+(?:up|the\s+\w+\s+up)\b"),
    )


class ToxicityStage:
    """Pattern-lexicon :class:`~moderation.base.Stage` producing the ``toxic`` label."""

    name = "toxicity"

    def __init__(self, patterns: tuple[ToxicPattern, ...] | None = None) -> None:
        self._patterns = patterns if patterns is not None else default_patterns()
        #: every anchor, or None when a pattern has none (then nothing is screened out)
        self._anchors: frozenset[str] | None = (
            frozenset().union(*(p.anchors for p in self._patterns))
            if all(p.anchors for p in self._patterns) else None)
        #: anchor word -> positions of the patterns it screens in (in pattern order)
        index: dict[str, list[int]] = {}
        for position, pattern in enumerate(self._patterns):
            for word in pattern.anchors:
                index.setdefault(word, []).append(position)
        self._index = {word: tuple(positions) for word, positions in index.items()}

    def classify(self, text: str, ctx: StageContext) -> StageResult:
        """Score harassment, threats and self-harm incitement in ``ctx.normalized``."""
        normalized = ctx.normalized
        words = normalized.words
        despaced = normalized.despaced
        squeezed = squeeze_runs(words)
        anchors = self._anchors
        if despaced == words and squeezed == words:  # one form: the usual message
            if anchors is None:
                return self._run(normalized, (words,), range(len(self._patterns)))
            if words.isascii() and "*" not in words:
                # only [a-z0-9] and spaces: the \w+ runs are exactly the tokens
                present = anchors.intersection(normalized.tokens)
            else:
                present = anchors.intersection(_WORD.findall(words))
            if not present:
                return EMPTY_RESULT
            return self._run(normalized, (words,), self._candidates(present))
        forms = {words, despaced, squeezed}
        if anchors is None:
            return self._run(normalized, forms, range(len(self._patterns)))
        found: set[str] = set()
        for form in forms:  # the screen: which trigger words the message has
            found.update(anchors.intersection(_WORD.findall(form)))
        if not found:
            return EMPTY_RESULT
        return self._run(normalized, forms, self._candidates(found))

    def _candidates(self, present: Iterable[str]) -> Iterable[int]:
        """Positions of the patterns one of whose anchors is ``present``, in order."""
        index = self._index
        positions = [index[word] for word in present]
        if len(positions) == 1:
            return positions[0]
        return sorted(set().union(*positions))

    def _run(
        self, normalized: NormalizedText, forms: Iterable[str], candidates: Iterable[int]
    ) -> StageResult:
        """Run the ``candidates`` patterns on every form (the first form that matches wins)."""
        fired: dict[str, float] = {}
        spans: list[Span] = []
        patterns = self._patterns
        for position in candidates:
            pattern = patterns[position]
            for form in forms:
                match = pattern.regex.search(form)
                if match is None:
                    continue
                fired[pattern.reason] = pattern.weight
                if form is normalized.words:
                    start, end = normalized.to_original(match.start(), match.end())
                    spans.append(Span(start, end, "toxic", pattern.weight, pattern.reason))
                break
        if not fired:
            return EMPTY_RESULT
        scores: dict[Label, float] = {"toxic": combine_scores(*fired.values())}
        reasons = tuple(f"toxic:{reason}" for reason in fired)
        return StageResult(labels_over(scores), scores, tuple(spans), reasons)
