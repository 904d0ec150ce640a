"""Known scam and spam patterns, and cues drawn from the domains of links.

Patterns run on ``NormalizedText.words`` (lower case, look-alikes and leetspeak decoded,
punctuation turned into spaces: ``$500`` reads ``500``, ``20%`` reads ``20``). Weights
of 0.9 and above are "scam" (blocked by the default policy); lower weights are cues that
only add up to a hold together with others.
"""

# Regex tables read best one alternative group per line, even past 100 columns:
# ruff: noqa: E501
from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

_COIN = r"(?:btc|bitcoin|eth|ether|ethereum|usdt|usdc|crypto|sol|solana|bnb|doge|xrp|coins?)"
_NUM = r"\d[\d ]*k?"
_APPS = r"(?:telegram|whatsapp|whats\s+app|signal|wechat|instagram|insta|snapchat|kik|viber)"
_SHORTENERS = frozenset({
    "bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "cutt.ly", "rebrand.ly",
    "shorturl.at", "tiny.cc", "rb.gy", "t.ly",
})
_SUSPICIOUS_TLDS = frozenset({
    "xyz", "top", "click", "gift", "ru", "tk", "ml", "ga", "cf", "gq", "pw", "icu", "buzz",
    "loan", "win", "bid", "su", "biz", "cn", "link", "online", "site",
})
_BRANDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "discord": ("discord.com", "discord.gg", "discordapp.com"),
    "nitro": ("discord.com",),
    "steam": ("steampowered.com", "steamcommunity.com"),
    "paypal": ("paypal.com",),
    "metamask": ("metamask.io",),
    "binance": ("binance.com",),
    "coinbase": ("coinbase.com",),
    "apple": ("apple.com",),
    "microsoft": ("microsoft.com",),
    "instagram": ("instagram.com",),
    "gigvora": ("gigvora.com",),
})
_DOMAIN_FOLD = str.maketrans({"1": "i", "l": "i", "0": "o", "3": "e", "5": "s", "4": "a"})


@dataclass(frozen=True, slots=True)
class ScamPattern:
    """One known spam/scam pattern: reason code, weight, compiled regex, trigger words.

    Every alternative of ``regex`` must contain one of ``triggers`` as a whole word:
    the regex only runs when the message has one (a set look-up on the hot path).
    """

    reason: str
    weight: float
    regex: re.Pattern[str]
    triggers: frozenset[str]

    def search(self, words: str, tokens: frozenset[str]) -> bool:
        """Whether the pattern matches; skipped unless one of its trigger words is present."""
        return not self.triggers.isdisjoint(tokens) and self.regex.search(words) is not None


def _p(reason: str, weight: float, pattern: str, triggers: str) -> ScamPattern:
    return ScamPattern(reason, weight, re.compile(pattern), frozenset(triggers.split()))


def default_scam_patterns() -> tuple[ScamPattern, ...]:
    """The shipped scam lexicon."""
    return (
        _p("crypto_giveaway", 0.97,
           rf"\b(?:send|transfer)\s+(?:me\s+)?(?:{_NUM}\s+)?{_COIN}\b.{{0,40}}?\b(?:get|receive|double|back)\b"
           rf"|\b(?:giving\s+away|give\s*away)\s+(?:{_NUM}\s+)?{_COIN}\b"
           rf"|\b{_COIN}\s+give\s*away\b|\bgive\s*away\b.{{0,40}}\b(?:send|double)\b"
           rf"|\bdouble\s+your\s+(?:{_COIN}|money|investment|funds)\b"
           rf"|\bdoubl(?:e|ing)\b.{{0,40}}\b{_COIN}\b|\b{_COIN}\b.{{0,40}}\bdoubl(?:e|ing)\b"
           r"|\bsend\s+any\s+amount\b", "send transfer giving giveaway give double doubling"),
        _p("free_crypto", 0.8, rf"\bfree\s+{_COIN}\b", "free"),
        _p("adult_spam", 0.8, r"\bfree\s+nudes\b|\bnudes\b.{0,20}\b(?:bio|profile|dm)\b|\b(?:bio|profile)\b.{0,20}\bnudes\b", "nudes"),

        _p("seed_phrase", 0.97, r"\b(?:send|share|give|enter|type|verify|dm|tell)\s+(?:me\s+|us\s+)?"
           r"(?:your\s+)?(?:(?:seed|recovery|secret)\s+phrase|private\s+key|wallet\s+key)", "phrase key"),
        _p("free_gift", 0.9, r"\bfree\s+(?:discord\s+)?nitro\b|\bnitro\s+(?:give\s*away|gift|drop|free)\b"
           r"|\bfree\s+(?:steam\s+|amazon\s+|apple\s+|google\s+play\s+|itunes\s+)?gift\s*cards?\b"
           r"|\bfree\s+(?:iphone|macbook|ps5|robux|v\s*bucks)\b|\bwin\s+an?\s+free\b", "free nitro win"),
        _p("prize", 0.7, r"\byou\s*(?:ve|have)\s+(?:been\s+selected|won)\b|\bcongratulations\b.{0,40}\b(?:won|winner|selected)\b"
           r"|\bclaim\s+(?:your\s+)?(?:free\s+)?(?:\w+\s+)?(?:prize|reward|gift|airdrop|tokens?|nitro|bonus)\b", "won selected congratulations claim"),
        _p("airdrop", 0.8, r"\b(?:claim|free|connect)\b.{0,40}\bairdrop\b|\bairdrop\b.{0,40}\b(?:claim|connect|wallet|live|free)\b", "airdrop"),
        _p("phishing", 0.7, r"\bverify\s+your\s+(?:account|wallet|identity)\b|\bconnect\s+your\s+wallet\b"
           r"|\blog\s*in\s+with\s+your\s+(?:discord|steam)\b", "verify connect log login"),
        _p("guaranteed_returns", 0.9,
           r"\bguarantee[ds]?\s+(?:\d+\s+)?(?:daily\s+|weekly\s+|monthly\s+)?(?:returns?|profits?|income|roi|payouts?|earnings)\b"
           r"|\b(?:returns?|profits?|roi|income)\s+(?:are\s+|is\s+)?(?:100\s+)?guaranteed\b"
           r"|\b\d+\s+(?:daily|weekly|monthly)\s+(?:profits?|returns?|roi)\b"
           r"|\b(?:100\s+)?guaranteed\b.{0,20}\bno\s+risk\b|\binvest\s+\d+.{0,20}\bget\s+\d+", "guaranteed guarantee guarantees daily weekly monthly invest"),
        _p("easy_money", 0.6,
           rf"\b(?:earn|make|made|making|earning|paying|get)\s+{_NUM}\s+(?:usd\s+|dollars\s+|euros\s+)?"
           r"(?:per|a|an|each|every|daily|weekly|in\s+(?:one|a|1|24|48)|from\s+home)\b"
           r"|\b(?:earn|make)\s+(?:easy\s+|quick\s+|fast\s+)?money\s+(?:fast|quick|online|from\s+home|easily)\b"
           r"|\beasy\s+money\b|\bget\s+rich\s+quick\b|\bno\s+experience\s+(?:needed|required)\b"
           r"|\bearn\s+(?:daily|weekly|passive)\s+(?:profits?|income|returns?)\b", "earn make made making earning paying get easy rich experience"),
        _p("passive_income", 0.35, r"\bpassive\s+income\b|\bone\s+(?:weird|simple)\s+trick\b|\bthis\s+one\s+trick\b", "passive trick"),
        _p("investment_scheme", 0.6,
           r"\b(?:forex|binary\s+options?|crypto|bitcoin|trading)\s+(?:signals?|robot|bot|account\s+manager|"
           r"mining|investment\s+platform)\b|\baccount\s+manager\b", "forex binary crypto bitcoin trading manager"),
        _p("recovery_scam", 0.8,
           r"\brecover(?:ed|y)?\s+(?:of\s+)?(?:your\s+|my\s+|the\s+)?(?:lost|stolen|hacked|scammed)\s+(?:funds|money|crypto|"
           r"bitcoin|accounts?|wallets?)\b|\bhelp\s+(?:you\s+)?recover\s+your\s+(?:hacked|lost|stolen)\b", "recover recovered recovery"),
        _p("off_platform", 0.55,
           rf"\b(?:dm|message|msg|contact|text|reach|add|hit|ping|inbox|chat\s+with)\s+(?:me|him|her|us|them)\s+"
           rf"(?:up\s+)?(?:on|via|at|through|in)\s+{_APPS}\b|\b(?:telegram|whatsapp)\s+\d", "telegram whatsapp whats signal wechat instagram insta snapchat kik viber"),
        _p("pharma", 0.85, r"\b(?:cheap|buy|order|discount|online)\b.{0,30}\b(?:viagra|cialis|levitra|xanax|"
           r"tramadol|oxycodone)\b", "viagra cialis levitra xanax tramadol oxycodone"),
        _p("followers", 0.7, r"\b(?:buy|cheap|get)\s+(?:\d+k?\s+)?(?:real\s+)?(?:instagram\s+|insta\s+|tiktok\s+|"
           r"twitter\s+|youtube\s+)?(?:followers|likes|views|subscribers)\b", "followers likes views subscribers"),
        _p("promo_link", 0.35, r"\bclick\s+(?:the\s+|this\s+|my\s+)?(?:link|here)\b|\blink\s+in\s+(?:my\s+)?bio\b", "click link"),
        _p("self_promo", 0.35, r"\bsubscribe\s+to\s+my\b|\bvisit\s+my\s+(?:channel|page|profile|website|site)\b"
           r"|\bcheck\s+(?:out\s+)?my\s+(?:profile|channel|page|bio)\b", "subscribe visit check"),
        _p("urgency", 0.3, r"\blimited\s+(?:time\s+)?offer\b|\bact\s+now\b|\bhurry\b|\bonly\s+today\b"
           r"|\btoday\s+only\b|\bbefore\s+it\s+expires\b", "limited act hurry only today before"),
    )


_WALLET = re.compile(r"\b(?:0x[a-f0-9]{40}|bc1[a-z0-9]{25,62}|[13][a-km-zA-HJ-NP-Z1-9]{25,34})\b", re.IGNORECASE)
_SEND_TO_WALLET = re.compile(r"\b(?:send|transfer|deposit)\b.{0,40}\bto\s*:?\s*$", re.IGNORECASE)


def wallet_cues(text: str) -> list[tuple[str, float]]:
    """Cues for crypto wallet addresses in the ORIGINAL text (leetspeak decoding would break them)."""
    match = _WALLET.search(text)
    if match is None:
        return []
    if _SEND_TO_WALLET.search(text[:match.start()]) is not None:
        return [("scam:send_to_wallet", 0.75)]
    return [("wallet_address", 0.4)]


@functools.lru_cache(maxsize=1024)
def link_domain(link: str) -> str:
    """The lower-case host of a link found in chat (scheme optional). Memoised: a link
    flood repeats the same links, and ``urlsplit`` is the slow part of a link check."""
    candidate = link if "://" in link else "http://" + link
    host = urlsplit(candidate).hostname or ""
    return host.removeprefix("www.")


def _allowed(domain: str, allowed: frozenset[str]) -> bool:
    """``domain`` is an allowed domain or a subdomain of one: set look-ups of its suffixes
    (same as ``any(domain == a or domain.endswith("." + a) for a in allowed)``)."""
    if domain in allowed:
        return True
    dot = domain.find(".")
    while dot >= 0:
        if domain[dot + 1 :] in allowed:
            return True
        dot = domain.find(".", dot + 1)
    return False


def domain_cues(link: str, allowed: frozenset[str]) -> list[tuple[str, float]]:
    """Cues for one link: unknown, suspicious TLD, URL shortener, brand look-alike."""
    domain = link_domain(link)
    if not domain or _allowed(domain, allowed):
        return []
    if domain in _SHORTENERS:
        return [("url_shortener", 0.35)]
    cues = [("unknown_domain", 0.1)]
    if domain.rsplit(".", 1)[-1] in _SUSPICIOUS_TLDS:
        cues.append(("suspicious_tld", 0.3))
    if _lookalike(domain):
        cues.append(("lookalike_domain", 0.7))
    return cues


# (brand, brand folded like a domain, the brand's own domains)
_FOLDED_BRANDS = tuple(
    (brand, brand.translate(_DOMAIN_FOLD), frozenset(owners)) for brand, owners in _BRANDS.items()
)


def _lookalike(domain: str) -> bool:
    """A brand name disguised in someone else's domain: misspelt or hyphenated."""
    registrable = ".".join(domain.split(".")[-2:])
    folded = registrable.translate(_DOMAIN_FOLD)
    for brand, folded_brand, owners in _FOLDED_BRANDS:
        if folded_brand not in folded or _allowed(domain, owners):
            continue
        if brand not in registrable or "-" in registrable:
            return True
    return False
