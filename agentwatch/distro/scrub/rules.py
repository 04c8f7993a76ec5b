"""What the scrubber redacts, as data: detector names, marks, sensitive key rules, extra patterns.

A leaf module (it imports nothing from agentwatch), so ``settings.py`` can validate the
scrubber's variables against it without importing the scrubber.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DETECTORS",
    "DETECTOR_ALIASES",
    "ERROR_MARK",
    "MARK",
    "MARK_PREFIX",
    "MARKS",
    "NOT_A_SECRET",
    "NUMBERISH",
    "PLAIN",
    "SAFE",
    "SENSITIVE_KEYS",
    "KeyRules",
    "Sensitive",
    "key_words",
    "parse_extra_patterns",
]

MARK = "[REDACTED:{}]"
MARK_PREFIX = "[REDACTED:"
ERROR_MARK = "[REDACTED:error]"

#: Every content detector, by the name used in ``AGENTWATCH_SCRUB_DISABLED_DETECTORS``
#: and in the replacement (``[REDACTED:<name>]``). ``sensitive_keys`` is the
#: key-name rule for attributes and dicts; ``sensitive_params`` the same names in
#: free text and URL query strings.
DETECTORS = (
    "email",
    "phone",
    "ssn",
    "credit_card",
    "ipv4",
    "ipv6",
    "google_api_key",
    "openai_api_key",
    "anthropic_api_key",
    "aws_access_key_id",
    "github_token",
    "slack_token",
    "stripe_key",
    "jwt",
    "bearer_token",
    "private_key",
    "url_credentials",
    "sensitive_params",
    "sensitive_keys",
)
MARKS = {kind: MARK.format(kind) for kind in DETECTORS}

#: Shorthands accepted in ``AGENTWATCH_SCRUB_DISABLED_DETECTORS``.
DETECTOR_ALIASES = {
    "ip": ("ipv4", "ipv6"),
    "api_keys": (
        "google_api_key",
        "openai_api_key",
        "anthropic_api_key",
        "aws_access_key_id",
        "github_token",
        "slack_token",
        "stripe_key",
    ),
}

# Values that are not secrets whatever their key or name: placeholders, booleans, "***".
NOT_A_SECRET = frozenset({"", "null", "none", "true", "false", "nil", "undefined", "***", "-"})
# A number (kept under the weak names: token counts, session durations).
NUMBERISH = re.compile(r"[\d.,]+")

# --- key names -------------------------------------------------------------------------
#: Sensitive key words. A key matches when its words (split on ``._-`` and camelCase,
#: lower-cased) contain one of these as a run of words, or a word ending with a
#: one-word name (``dbpassword``, ``csrftoken``).
SENSITIVE_KEYS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "secrets",
    "credential",
    "credentials",
    "private_key",
    "privatekey",
    "signing_key",
    "hmac_key",
    "encryption_key",
    "master_key",
    "api_key",
    "apikey",
    "access_key",
    "accesskey",
    "authorization",
    "cookie",
    "cookies",
    "csrf",
    "xsrf",
    "jwt",
    "ssn",
    "cvv",
    "token",
    "session",
    "sessionid",
    "auth",
)
# Weak words: their numbers and booleans are kept, and a counting word beside them
# (gen_ai.token.type, token_count, session.duration) means the key is not a secret.
_WEAK_KEYS = frozenset({"token", "session", "auth"})
_SUFFIX_KEYS = frozenset(
    {"password", "passwd", "passphrase", "secret", "token", "apikey", "cookie", "credential", "credentials",
     "privatekey", "accesskey", "sessionid", "authorization"}
)
_COUNTING_WORDS = frozenset(
    {
        "count", "counts", "type", "types", "usage", "limit", "limits", "max", "min", "total", "num", "number",
        "estimate", "estimated", "budget", "length", "len", "size", "used", "remaining", "input", "output",
        "prompt", "completion", "completions", "cached", "cache", "reasoning", "duration", "time", "timestamp",
        "start", "end", "started", "ended", "expiry", "expires", "expired", "expiration", "ttl", "age", "rate",
        "ms", "seconds", "status", "state", "valid", "present", "kind", "source", "index", "position", "ratio",
    }
)
# Keys whose values are ids that must survive untouched (and need no scanning).
_SAFE_KEY_SUFFIXES = (
    ("trace", "id"),
    ("span", "id"),
    ("traceid",),
    ("spanid",),
    ("otel", "trace", "sampled"),
    ("otel", "service", "name"),
    ("trace", "flags"),
)
# Keys agentwatch sets itself to ids it validated (``X-Session-ID``, 1-128 of ``[A-Za-z0-9._:-]``):
# not redacted for the word ``session`` (their content is still scanned, and
# AGENTWATCH_SCRUB_EXTRA_KEYS can still name them).
_AGENTWATCH_ID_KEYS = frozenset({"agentwatch.session.id"})

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def key_words(key: str) -> tuple[str, ...]:
    """``"http.request.header.x-goog-api-key"`` -> ``("http", ..., "api", "key")``."""
    return tuple(word.lower() for word in _WORDS.findall(key))


PLAIN = 0  # scan the value's content
SAFE = 1  # leave the value alone


@dataclass(frozen=True)
class Sensitive:
    """A sensitive key: its value is replaced by ``mark`` (numbers too when ``strong``)."""

    strong: bool  # numbers are redacted too
    mark: str


class KeyRules:
    """Classifies attribute and dict keys: :data:`SAFE`, :data:`PLAIN` or a :class:`Sensitive`.

    ``extra_keys``: ``AGENTWATCH_SCRUB_EXTRA_KEYS`` (always strong); ``on``: whether the
    ``sensitive_keys`` detector is enabled (off, only the safe id keys are recognised).
    """

    CACHE_LIMIT = 4096

    def __init__(self, extra_keys: Iterable[str] = (), on: bool = True) -> None:
        self.extra_keys = tuple(extra_keys)
        self.on = on
        # Keys recur on every record: classified once. Bounded; cleared when full.
        self.cache: dict[str, Any] = {}
        self._names: list[tuple[tuple[str, ...], bool, str]] = []
        self._suffix_names: set[str] = set(_SUFFIX_KEYS)
        if on:
            for name in SENSITIVE_KEYS:
                self._names.append((tuple(name.split("_")), name not in _WEAK_KEYS, name))
            for name in self.extra_keys:
                words = key_words(name) or (name.lower(),)
                self._names.append((words, True, "_".join(words)))
                if len(words) == 1:
                    self._suffix_names.add(words[0])

    def classify(self, key: str) -> Any:
        """``SAFE``, ``PLAIN`` or a :class:`Sensitive` for ``key`` (cached)."""
        found = self.cache.get(key)
        if found is not None:
            return found
        found = self._classify(key)
        if len(self.cache) >= self.CACHE_LIMIT:
            self.cache.clear()
        self.cache[key] = found
        return found

    def _classify(self, key: str) -> Any:
        words = key_words(key) if isinstance(key, str) else ()
        if not words:
            return PLAIN
        for suffix in _SAFE_KEY_SUFFIXES:
            if words[-len(suffix) :] == suffix:
                return SAFE
        counting = any(word in _COUNTING_WORDS for word in words)
        names = self._names
        if key in _AGENTWATCH_ID_KEYS:
            names = names[-len(self.extra_keys):] if self.extra_keys and self.on else []
        for name_words, strong, name in names:
            n = len(name_words)
            if n == 1 and name in self._suffix_names:  # dbpassword, csrftoken, clientsecret
                hit = any(word.endswith(name) for word in words)
            else:
                hit = any(words[i : i + n] == name_words for i in range(len(words) - n + 1))
            if hit and (strong or not counting):
                return Sensitive(strong, MARK.format(name))
        return PLAIN


# --- configuration -------------------------------------------------------------------------------
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")


def parse_extra_patterns(raw: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Parse ``AGENTWATCH_SCRUB_EXTRA_PATTERNS``: ``name=regex`` entries separated by ``;;``.

    Returns the usable ``(name, regex)`` pairs and a list of problems (one per bad entry).
    An entry without a ``name=`` prefix gets the kind ``custom``.
    """
    pairs: list[tuple[str, str]] = []
    problems: list[str] = []
    for entry in raw.split(";;"):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, regex = entry.partition("=")
        if not sep or not _NAME.fullmatch(name.strip()):
            name, regex = "custom", entry
        name, regex = name.strip(), regex.strip()
        try:
            compiled = re.compile(regex)
        except re.error as error:
            problems.append(f"{entry!r} does not compile ({error})")
            continue
        if compiled.search("") is not None:
            problems.append(f"{entry!r} matches the empty string")
            continue
        pairs.append((name, regex))
    return pairs, problems
