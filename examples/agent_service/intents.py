"""A small keyword intent classifier, pure Python: the kind of cheap first step agent
services run before retrieval. Returns one of INTENTS with a confidence in [0, 1]."""

from __future__ import annotations

import re
from dataclasses import dataclass

INTENTS = ("billing", "technical", "account", "smalltalk", "other")

# keyword -> weight; a phrase (with a space) matches as a substring of the normalised text.
_KEYWORDS: dict[str, dict[str, float]] = {
    "billing": {
        "invoice": 2.0, "invoices": 2.0, "receipt": 1.5, "refund": 2.0, "charged": 2.0, "charge": 1.5,
        "price": 1.5, "prices": 1.5, "pricing": 1.5, "plan": 1.0, "plans": 1.0, "subscription": 2.0,
        "cancel": 1.0, "payment": 2.0, "pay": 1.0, "card": 1.0, "vat": 1.5, "billing": 2.5, "upgrade": 1.0,
        "downgrade": 1.5, "cost": 1.5, "expensive": 1.0, "money": 1.0, "twice": 1.0,
    },
    "technical": {
        "error": 2.0, "crash": 2.0, "crashes": 2.0, "bug": 2.0, "sync": 2.0, "slow": 1.5, "stuck": 1.5,
        "api": 2.0, "webhook": 2.0, "webhooks": 2.0, "import": 1.5, "csv": 1.5, "integration": 1.5,
        "calendar": 1.0, "offline": 1.5, "browser": 1.5, "load": 1.0, "500": 2.0, "429": 2.0,
        "rate limit": 2.0, "broken": 1.5, "not working": 2.0, "install": 1.5, "update": 1.0, "desktop": 1.0,
    },
    "account": {
        "password": 2.5, "login": 2.0, "log in": 2.0, "sign in": 2.0, "2fa": 2.5, "two-factor": 2.5,
        "locked": 2.0, "email": 1.0, "account": 1.5, "delete": 1.0, "invite": 1.5, "members": 1.0,
        "sso": 2.5, "single sign-on": 2.5, "owner": 1.0, "ownership": 1.5, "profile": 1.5, "username": 1.5,
    },
    "smalltalk": {
        "hello": 1.5, "hi": 1.5, "hey": 1.5, "thanks": 2.0, "thank you": 2.0, "good morning": 2.0,
        "how are you": 2.5, "bye": 2.0, "goodbye": 2.0, "who are you": 2.0, "great": 0.5, "cheers": 1.5,
    },
}
_WORD = re.compile(r"[a-z0-9][a-z0-9\-']*")


@dataclass(frozen=True)
class Intent:
    name: str
    confidence: float


def classify(message: str) -> Intent:
    text = " ".join(_WORD.findall(message.lower()))
    words = set(text.split())
    scores = {intent: 0.0 for intent in _KEYWORDS}
    for intent, keywords in _KEYWORDS.items():
        for keyword, weight in keywords.items():
            if (" " in keyword and keyword in text) or keyword in words:
                scores[intent] += weight
    best = max(scores, key=scores.__getitem__)
    total = sum(scores.values())
    if total == 0.0:
        return Intent("other", 0.3)
    # Confidence: share of the evidence, damped when there is little of it.
    share = scores[best] / total
    strength = min(1.0, scores[best] / 4.0)
    return Intent(best, round(0.35 + 0.6 * share * (0.5 + 0.5 * strength), 3))
