"""What the scrubber redacts, as data: detector names, marks, sensitive key rules, extra patterns.

A leaf module (it imports nothing from agentwatch), so ``settings.py`` can validate the
scrubber's variables against it without importing the scrubber.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from typing import Any

from agentwatch._records import Record

__all__ = [
    "DEFAULT_KEEP",
    "DESCRIBING_WORDS",
    "DETECTORS",
    "DETECTOR_ALIASES",
    "ERROR_MARK",
    "KEY_PATTERN",
    "MARK",
    "MARK_PREFIX",
    "MARKS",
    "NOT_A_SECRET",
    "NUMBERISH",
    "PLAIN",
    "SAFE",
    "SENSITIVE_KEYS",
    "Keep",
    "KeyRules",
    "Renamed",
    "Sensitive",
    "expand_detectors",
    "key_words",
    "parse_extra_patterns",
    "parse_keep",
    "parse_key_patterns",
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

# Values that are not secrets whatever their key or name: placeholders, booleans, "***", and SQL
# bind placeholders (``password = ?``, ``%s``, ``$1``, ``:1``), which stand for a value, not hold one.
NOT_A_SECRET = frozenset(
    {"", "null", "none", "true", "false", "nil", "undefined", "***", "-", "?", "%s"}
    | {f"${n}" for n in range(1, 33)}
    | {f":{n}" for n in range(1, 33)}
    | {f"@p{n}" for n in range(1, 33)}
)
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
#: A key whose *last* word is one of these describes a secret rather than holding one
#: (``password_reset_count``, ``auth.method``, ``api_key_type``, ``token.expires``): it is not
#: redacted by name (its value is still scanned by content). Words, not substrings: ``auth.header``
#: and ``password_hash`` are still redacted.
DESCRIBING_WORDS = frozenset(
    {
        "count", "counts", "total", "totals", "length", "len", "size", "attempt", "attempts", "failures",
        "failed", "errors", "retries", "ratio", "rate", "duration", "ms", "seconds", "age", "ttl", "min", "max",
        "limit", "limits", "policy", "version", "algorithm", "algo", "method", "methods", "type", "types", "kind",
        "scheme", "schemes", "mechanism", "provider", "status", "state", "strength", "expiry", "expires",
        "expiration", "enabled", "required", "present", "valid", "mode", "flow", "result", "outcome", "level",
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


class Sensitive(Record):
    """A sensitive key: its value is replaced by ``mark`` (numbers too when ``strong``)."""

    __slots__ = ("strong", "mark")
    strong: bool  # numbers are redacted too
    mark: str

    def __init__(self, strong: bool, mark: str) -> None:
        self._set(strong=strong, mark=mark)


class _Unique(Record):
    """A record compared and hashed by identity (as ``@dataclass(eq=False)``): each is one rule's own."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return object.__hash__(self)


class Keep(_Unique):
    """A key whose value is infrastructure (``server.address``, ``user_agent.original``, versions):
    scanned by content without the detectors ``off`` (``scrub`` is that scan, set by the scrubber).

    ``peer``: the value is the other end of a connection (``network.peer.address``): kept on
    client spans, where the peer is the server called; scanned in full everywhere else (on a
    server span it is the end user's address; in logs and metrics nobody says which end it is)."""

    __slots__ = ("off", "peer", "scrub", "clean")
    _compared = ("off", "peer", "scrub")  # shown
    off: frozenset[str]
    peer: bool
    scrub: Callable[[str], str] | None
    clean: dict[str, None]  # values found clean (bounded)

    def __init__(self, off: frozenset[str], peer: bool = False, scrub: Callable[[str], str] | None = None,
                 clean: dict[str, None] | None = None) -> None:
        self._set(off=off, peer=peer, scrub=scrub, clean={} if clean is None else clean)


class Renamed(_Unique):
    """A key that is itself personal data (``extra=dict(request.query_params)``): exported as
    ``key`` (its scrubbed text); its value is handled as ``inner`` (the original key's class)."""

    __slots__ = ("key", "inner")
    key: str
    inner: Any

    def __init__(self, key: str, inner: Any) -> None:
        self._set(key=key, inner=inner)


#: Built-in keep list: attribute key (``fnmatch`` pattern) -> detectors that do not look at its
#: value, and whether the value is a connection peer (see :class:`Keep`). docs/privacy.md says why.
_ADDRESS = frozenset({"ipv4", "ipv6"})
_VERSION = frozenset({"ipv4", "ipv6", "phone"})
DEFAULT_KEEP: dict[str, tuple[frozenset[str], bool]] = {
    # The server side of a connection: this service's own address, or the server it calls.
    "server.address": (_ADDRESS, False),
    "server.socket.address": (_ADDRESS, False),
    "network.local.address": (_ADDRESS, False),
    "net.host.name": (_ADDRESS, False),
    "net.host.ip": (_ADDRESS, False),
    "net.sock.host.addr": (_ADDRESS, False),
    "host.ip": (_ADDRESS, False),
    # The other end: the server called on client spans (kept there only), maybe the end user elsewhere.
    "network.peer.address": (_ADDRESS, True),
    "net.peer.name": (_ADDRESS, True),
    "net.peer.ip": (_ADDRESS, True),
    "net.sock.peer.addr": (_ADDRESS, True),
    # Product tokens carry four-part versions (Chrome/131.0.0.0) and long build numbers.
    "user_agent.original": (_VERSION, False),
    "http.user_agent": (_VERSION, False),
    # Versions: service.version, telemetry.sdk.version, process.runtime.version, os.version...
    "*.version": (_VERSION, False),
    "*_version": (_VERSION, False),
    # Health-check names are written in code (``postgres 10.0.0.5``): redacting them merges the
    # series of different checks.
    "agentwatch.health.check.name": (_VERSION, False),
}


def expand_detectors(names: Iterable[str]) -> frozenset[str]:
    """Detector names with the aliases (``ip``, ``api_keys``) expanded."""
    out: set[str] = set()
    for name in names:
        out.update(DETECTOR_ALIASES.get(name, (name,)))
    return frozenset(out)


class KeyRules:
    """Classifies attribute and dict keys: :data:`SAFE`, :data:`PLAIN`, a :class:`Sensitive`, a
    :class:`Keep` or a :class:`Renamed`.

    ``extra_keys``: ``AGENTWATCH_SCRUB_EXTRA_KEYS`` (always strong); ``on``: whether the
    ``sensitive_keys`` detector is enabled (off, only the safe id keys are recognised);
    ``keep``: the keep list (pattern -> (detectors off, peer)); ``not_secret``: key patterns
    never redacted by name (``AGENTWATCH_SCRUB_NOT_SECRET_KEYS``); ``scrub_key``: the text
    scrubber keys go through (a key that changes is :class:`Renamed`); ``keep_scrubber``: the
    scan for a set of detectors switched off.
    """

    CACHE_LIMIT = 4096

    def __init__(
        self,
        extra_keys: Iterable[str] = (),
        on: bool = True,
        keep: dict[str, tuple[frozenset[str], bool]] | None = None,
        not_secret: Iterable[str] = (),
        scrub_key: Callable[[str], str] | None = None,
        keep_scrubber: Callable[[frozenset[str]], Callable[[str], str]] | None = None,
    ) -> None:
        self.extra_keys = tuple(extra_keys)
        self.on = on
        # Keys recur on every record: classified once. Bounded; cleared when full.
        self.cache: dict[str, Any] = {}
        self._names: list[tuple[tuple[str, ...], bool, str]] = []
        self._suffix_names: set[str] = set(_SUFFIX_KEYS)
        self._scrub_key = scrub_key
        keep = DEFAULT_KEEP if keep is None else keep
        self._keep_exact: dict[str, Keep] = {}
        self._keep_globs: list[tuple[str, Keep]] = []
        kinds: dict[tuple[frozenset[str], bool], Keep] = {}
        for pattern, (off, peer) in keep.items():
            kind = kinds.get((off, peer))
            if kind is None:
                scan = keep_scrubber(off) if keep_scrubber is not None else None
                kind = kinds[(off, peer)] = Keep(off, peer, scan)
            if "*" in pattern or "?" in pattern or "[" in pattern:
                self._keep_globs.append((pattern, kind))
            else:
                self._keep_exact[pattern] = kind
        self._not_secret = tuple(not_secret)
        if on:
            for name in SENSITIVE_KEYS:
                self._names.append((tuple(name.split("_")), name not in _WEAK_KEYS, name))
            for name in self.extra_keys:
                words = key_words(name) or (name.lower(),)
                self._names.append((words, True, "_".join(words)))
                if len(words) == 1:
                    self._suffix_names.add(words[0])

    def classify(self, key: str) -> Any:
        """``SAFE``, ``PLAIN``, a :class:`Sensitive`, :class:`Keep` or :class:`Renamed` for ``key`` (cached)."""
        found = self.cache.get(key)
        if found is not None:
            return found
        found = self._classify(key)
        if self._scrub_key is not None and isinstance(key, str) and key:
            new = self._scrub_key(key)
            if new != key:
                found = Renamed(new, found)
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
        kept = self._keep_exact.get(key)
        if kept is None:
            for pattern, kind in self._keep_globs:
                if fnmatchcase(key, pattern):
                    kept = kind
                    break
        if kept is not None:
            return kept
        if any(fnmatchcase(key, pattern) for pattern in self._not_secret):
            return PLAIN
        counting = any(word in _COUNTING_WORDS for word in words)
        describing = words[-1] in DESCRIBING_WORDS
        names = self._names
        if key in _AGENTWATCH_ID_KEYS:
            names = names[-len(self.extra_keys):] if self.extra_keys and self.on else []
        last = len(words) - 1
        for name_words, strong, name in names:
            n = len(name_words)
            if n == 1 and name in self._suffix_names:  # dbpassword, csrftoken, clientsecret
                at = [i for i, word in enumerate(words) if word.endswith(name)]
                covers_last = bool(at) and at[-1] == last
            else:
                at = [i for i in range(len(words) - n + 1) if words[i : i + n] == name_words]
                covers_last = bool(at) and at[-1] + n - 1 == last
            if not at:
                continue
            if describing and not covers_last:
                continue  # password_reset_count, auth.method: about a secret, not one
            if strong or not counting:
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


#: An attribute key or key pattern as these settings take it: printable ASCII, no spaces or commas.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.\-*?\[\]/:@]{1,256}")


def parse_key_patterns(raw: str) -> tuple[list[str], list[str]]:
    """Parse a comma list of attribute keys or ``fnmatch`` patterns (``AGENTWATCH_SCRUB_NOT_SECRET_KEYS``).

    Returns the good entries and a list of problems (one per bad entry)."""
    good: list[str] = []
    problems: list[str] = []
    for entry in (item.strip() for item in raw.split(",")):
        if not entry:
            continue
        if KEY_PATTERN.fullmatch(entry):
            good.append(entry)
        else:
            problems.append(f"{entry!r} is not a key (ASCII letters, digits, _ . - / : @ and * ? [ ])")
    return good, problems


def parse_keep(raw: str) -> tuple[dict[str, tuple[frozenset[str], bool]], list[str], list[str]]:
    """Parse ``AGENTWATCH_SCRUB_KEEP_ATTRIBUTES``: ``key=detector+detector`` entries (keys may be
    ``fnmatch`` patterns such as ``*.build_id``) add to the keep list, ``-key`` removes a built-in entry.

    Returns the additions, the removals and a list of problems (one per bad entry).
    """
    added: dict[str, tuple[frozenset[str], bool]] = {}
    removed: list[str] = []
    problems: list[str] = []
    known = set(DETECTORS) | set(DETECTOR_ALIASES)
    for entry in raw.split(","):
        entry = entry.strip()
        if not entry:
            continue
        if entry.startswith("-"):
            if KEY_PATTERN.fullmatch(entry[1:].strip()):
                removed.append(entry[1:].strip())
            else:
                problems.append(f"{entry!r} is not -key")
            continue
        key, sep, names = entry.partition("=")
        key = key.strip()
        detectors = [name.strip().lower() for name in names.split("+") if name.strip()]
        if not sep or not KEY_PATTERN.fullmatch(key) or not detectors:
            problems.append(f"{entry!r} is not key=detector+detector or -key")
            continue
        unknown = [name for name in detectors if name not in known]
        if unknown:
            problems.append(f"{entry!r} names unknown detectors ({', '.join(unknown)})")
            continue
        added[key] = (expand_detectors(detectors), False)
    return added, removed, problems
