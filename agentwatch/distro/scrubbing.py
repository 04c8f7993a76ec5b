"""The one scrubber: PII and secrets never leave the process.

Every exporter that agentwatch builds (OTLP gRPC/HTTP, console, ``otlp_json_file``)
is wrapped in a guard (``exporters.py``) that hands the inner exporter scrubbed
*copies* of what it exports; the Prometheus reader scrubs each collection before
it is turned into exposition text (``prometheus.py``). So there is exactly one
place where data is cleaned, once per export, after every processor has run::

    span / log record / metric points  ->  Scrubber  ->  inner exporter

What is cleaned: span names, span and event and link attributes, event names,
the span status message, resource attributes, log bodies (strings, and dicts and
lists at any depth), log attributes and event names, metric data point and
exemplar attributes.

How values are recognised:

* **By key.** An attribute or dict key whose name contains a sensitive word
  (``password``, ``secret``, ``token``, ``api_key``, ``authorization``, ``cookie``,
  ``session``, ``credential``, ``private_key``... see :data:`SENSITIVE_KEYS`) has
  its whole value replaced. Keys are compared word by word (``db.password``,
  ``http.request.header.x-goog-api-key``, ``accessToken`` all match) so token
  *counts* do not: ``gen_ai.usage.input_tokens`` (the word is ``tokens``),
  ``gen_ai.token.type`` and ``llm.token_count.prompt`` (a counting word next to
  ``token``) keep their values, and numbers under the weak words ``token``,
  ``session``, ``auth`` are kept (a secret is a string).
* **By content**, in every string, wherever it is: e-mail addresses, phone
  numbers (E.164 and common national formats), US SSNs, payment cards (Luhn and
  brand checked), IPv4 and IPv6 addresses (loopback and unspecified addresses
  are kept), vendor API keys (Google ``AIza``, OpenAI ``sk-``, Anthropic
  ``sk-ant-``, AWS ``AKIA``, GitHub, Slack, Stripe), JWTs, ``Bearer`` values,
  PEM private keys, credentials in URLs (``https://user:pass@host``), and
  ``name=value`` / ``name: value`` / ``"name": "value"`` pairs with a sensitive
  name in free text, JSON and URL query strings (``?key=...&token=...``).

The replacement keeps the kind: ``[REDACTED:email]``, ``[REDACTED:credit_card]``,
and for a sensitive key the key word that matched: ``[REDACTED:password]``.
Trace and span ids, UUIDs, timestamps, prices and ordinary numbers are left
alone: digit patterns must stand alone (not inside a hex id or a UUID), cards
must pass Luhn and a brand prefix (epoch timestamps start with ``1``), IPv6
needs ``::`` or four colon groups in a row (``12:30:45`` is a time). Metric points
whose attributes become equal once scrubbed are merged (sums added, histograms
combined), so a scrape never shows the same series twice.

Speed: each detector family makes one pass, found from a cheap hint so that ``re``
never has to try a complex pattern at every position: vendor tokens from a rare
character of their prefix (``-``, ``_``, ``z``, ``J``...), digit-shaped PII only inside
runs of digits and separators that have enough digits for one (found with
``bytes.translate`` and substring searches), e-mail addresses from their ``@``, IPv6
from ``::`` or a run of colon groups, and ``name=value`` pairs by scanning the
lower-cased, *reversed* text from the rare ``=``/``:``, which also says where the name
starts. Hints are regexes that start with a literal (``bytes.translate`` first maps the
hint characters to one byte), which ``re`` finds with a fast loop; a pattern that starts
with a character class is tried at every position. Validation (Luhn, address parsing)
only runs on candidates. Attribute keys are classified once and cached. All the
strings of a batch of spans (or log records) are joined and scanned in one call; when
nothing is found the items are passed on as they are, otherwise the joined text is
scrubbed once, split back, and only the items that changed are copied.

With the ``hyperscan`` package (installed with agentwatch where its wheels exist) the
hints of all families are one compiled pass instead (``_hints.py``): it names, for each
string of a batch (or each line of a long text), the families that may have something to
replace, and only those strings go through only those families. Its patterns accept a
superset of what each family replaces, so the output is the same byte for byte
(``tests/test_scrub_engines.py``); ``AGENTWATCH_SCRUB_ENGINE=re`` or a missing package
leaves the families' own hints. A log batch's attributes are walked key by key
(``_parts_by_column``): each key's distinct values not already known clean, not every value.

Failure: the scrubber never raises into the pipeline. If scrubbing an item
fails, one warning is printed and the item is scrubbed again value by value;
a value that still cannot be scrubbed is replaced by ``[REDACTED:error]``
(dropping a value is safer than leaking it), and an item that cannot be
rebuilt at all is dropped from the batch.

Configuration (``settings.py``): ``AGENTWATCH_SCRUB``,
``AGENTWATCH_SCRUB_DISABLED_DETECTORS``, ``AGENTWATCH_SCRUB_EXTRA_PATTERNS``,
``AGENTWATCH_SCRUB_EXTRA_KEYS``, ``AGENTWATCH_SCRUB_ENGINE``.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from functools import reduce
from itertools import accumulate, compress, filterfalse, repeat
from itertools import count as _count
from operator import attrgetter, eq, is_, is_not, ne, or_
from typing import Any, Callable, Iterable, Mapping, Sequence

from opentelemetry._logs import LogRecord as _API_LOG_RECORD  # what ReadableLogRecord.log_record holds

from agentwatch.distro import _hints
from agentwatch.distro._diagnostics import warn_once

__all__ = [
    "DETECTORS",
    "SENSITIVE_KEYS",
    "Scrubber",
    "default_scrubber",
    "parse_extra_patterns",
    "scrub_text",
    "scrubber_for",
]

MARK = "[REDACTED:{}]"
_MARK_PREFIX = "[REDACTED:"
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
_MARKS = {kind: MARK.format(kind) for kind in DETECTORS}

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
# Words that are sensitive only as URL query parameters (``?key=``, ``&sig=``).
_QUERY_ONLY_KEYS = ("key", "sig", "code")

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def key_words(key: str) -> tuple[str, ...]:
    """``"http.request.header.x-goog-api-key"`` -> ``("http", ..., "api", "key")``."""
    return tuple(word.lower() for word in _WORDS.findall(key))


_PLAIN = 0  # scan the value's content
_SAFE = 1  # leave the value alone


@dataclass(frozen=True)
class _Sensitive:
    strong: bool  # numbers are redacted too
    mark: str


# --- content patterns ------------------------------------------------------------------
# Vendor tokens, PEM keys, JWTs, Bearer values (case-sensitive, original text). Every
# branch starts with a literal so `re` gets a first-character set and skips ahead in C;
# the boundary (not preceded by a letter/digit) is checked *after* the literal.
_VENDOR_BRANCHES = {
    "private_key": [
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY-----(?:[\s\S]*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY-----|[\s\S]*)",
    ],
    "sk-": [r"sk-(?<![A-Za-z0-9]sk-)[A-Za-z0-9_\-]{20,}"],
    "stripe_key": [
        r"sk_(?<![A-Za-z0-9]sk_)(?:live|test)_[A-Za-z0-9]{16,}",
        r"rk_(?<![A-Za-z0-9]rk_)(?:live|test)_[A-Za-z0-9]{16,}",
        r"whsec_(?<![A-Za-z0-9]whsec_)[A-Za-z0-9]{20,}",
    ],
    "google_api_key": [r"AIza(?<![A-Za-z0-9]AIza)[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"],
    "aws_access_key_id": [r"A(?:KIA|SIA|BIA|CCA)(?<![A-Za-z0-9]A...)[0-9A-Z]{16}(?![0-9A-Za-z])"],
    "github_token": [
        r"gh[pousr]_(?<![A-Za-z0-9]gh._)[A-Za-z0-9]{36,255}(?![A-Za-z0-9])",
        r"github_pat_(?<![A-Za-z0-9]github_pat_)[A-Za-z0-9_]{22,255}",
    ],
    "slack_token": [r"xox[abposr]-(?<![A-Za-z0-9]xox.-)[A-Za-z0-9\-]{10,}"],
    "jwt": [r"eyJ(?<![A-Za-z0-9_\-]eyJ)[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"],
    "bearer_token": [
        r"Bearer[ \t]+[A-Za-z0-9._~+/=\-]{8,}",
        r"bearer[ \t]+[A-Za-z0-9._~+/=\-]{8,}",
        r"BEARER[ \t]+[A-Za-z0-9._~+/=\-]{8,}",
    ],
}
_AWS_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA")

# Digit-shaped PII. The pattern starts with a character class (fast skip in C); the
# token boundary is a look-behind over the consumed first character.
_END = r"(?![\w@]|[.\-]\d)"
# A token start (the look-behind sees the character before the consumed one), at least
# seven characters of digits and separators (1.2.3.4 is the shortest hit), not a date.
_NUMERIC_START = r"[0-9+(%](?<![\w.+\-%][0-9+(%])(?=[\dBb ().\-/]{6})(?!\d{3}-\d\d-\d\d)"
_NUMERIC_BRANCHES = {
    "phone": [
        r"(?<=\+)(?P<e164>[1-9](?:[ .\-]?\(?\d\)?){6,14})",
        r"(?<=%)(?P<e164u>2[Bb][1-9]\d{6,14})",
        r"(?<=\()(?P<nanp_paren>\d{3}\)[ .\-]?\d{3}[ .\-]\d{4})",
    ],
    "ssn": [r"(?<=\d)(?P<ssn>\d{2}(?P<ss>[\- ])\d{2}(?P=ss)\d{4})"],
    "credit_card": [
        r"(?<=\d)(?P<card>\d{12,18}|\d{3}(?P<cs>[ \-])\d{4}(?P=cs)\d{4}(?P=cs)\d{4}(?:(?P=cs)\d{3})?"
        r"|\d{3}(?P<cs2>[ \-])\d{6}(?P=cs2)\d{4,5})",
    ],
    "ipv4": [
        r"(?<=\d)(?!(?<=1)27\.|(?<=0)\.0\.0\.0(?!\d))(?P<ipv4>\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3})",
    ],
    "phone_national": [
        r"(?<=\d)(?P<nanp>\d{2}(?P<ps>[.\- ])\d{3}(?P=ps)\d{4}|(?<=1)(?P<ps1>[.\- ])\d{3}(?P=ps1)\d{3}(?P=ps1)\d{4})",
        r"(?<=0)(?P<national>\d{1,4}(?P<ns>[ .\-/])\d{2,8}(?:(?P=ns)\d{2,8}){0,3})",
    ],
}
_NUMERIC_KIND = {
    "e164": "phone",
    "e164u": "phone",
    "nanp_paren": "phone",
    "nanp": "phone",
    "national": "phone",
    "ssn": "ssn",
    "card": "credit_card",
    "ipv4": "ipv4",
}

# E-mail: found from its "@" (or URL-encoded %40, JSON \u0040), the local part is walked back
# over in Python and the whole address matched from there; scanning for local parts would
# stop at every letter.
_AT = re.compile(r"@|%40|\\u0040")
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_LOCAL_STRING = "".join(sorted(_LOCAL_CHARS))  # for str.rstrip: the walk back done in C
_EMAIL = re.compile(
    r"[\w.%+\-]{1,64}(?:@|%40|\\u0040)(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
    # The TLD ends the domain: no letter or digit next, nor "-label." (the domain goes on);
    # "alice@example.com-4111" is an address followed by a dash.
    r"(?![A-Za-z0-9]|-[A-Za-z0-9\-]*\.[A-Za-z])",
    re.ASCII,
)
_URL_CREDENTIALS = re.compile(r"//(?<=://)[^/\s:@?#\[\]\x00]{0,256}:[^/\s@?#\x00]{1,256}@")

# IPv6 needs "::" or at least four colon-separated groups in a row (12:30:45 is a time);
# candidates are validated with the ipaddress module.
_IPV6_HINT = re.compile(r":(?::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:)")
_IPV6 = re.compile(
    r"[0-9A-Fa-f:](?<![\w:.%][0-9A-Fa-f:])(?=[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:)[0-9A-Fa-f:.]{1,44}"
    r"(?:%[0-9A-Za-z._\-]{1,32})?(?![\w:])",
    re.ASCII,
)

# Sensitive names in free text: (words, mode). "free": may follow a letter
# (``userPassword=``); "bounded": must not (``pwd``, ``auth``); "query": only as a
# URL query parameter with ``=``.
_PARAM_NAMES = [
    (("password",), "free"),
    (("passwd",), "free"),
    (("passphrase",), "free"),
    (("secret",), "free"),
    (("credentials",), "free"),
    (("credential",), "free"),
    (("private", "key"), "free"),
    (("secret", "key"), "free"),
    (("signing", "key"), "free"),
    (("hmac", "key"), "free"),
    (("encryption", "key"), "free"),
    (("master", "key"), "free"),
    (("api", "key"), "free"),
    (("access", "key"), "free"),
    (("authorization",), "free"),
    (("cookie",), "free"),
    (("session", "id"), "free"),
    (("session",), "free"),
    (("token",), "free"),
    (("csrf",), "free"),
    (("xsrf",), "free"),
    (("pwd",), "bounded"),
    (("auth",), "bounded"),
    (("jwt",), "bounded"),
    (("ssn",), "bounded"),
    (("sid",), "bounded"),
    (("signature",), "bounded"),  # X-Amz-Signature=, X-Goog-Signature=
    *[((word,), "query") for word in _QUERY_ONLY_KEYS],
]
_LINE_PARAMS = ("cookie", "authorization")  # their value runs to the end of the line
_WEAK_PARAMS = frozenset({"token", "session", "session_id", "auth", "sid", "key", "sig", "signature", "code"})
_NOT_A_SECRET = frozenset({"", "null", "none", "true", "false", "nil", "undefined", "***", "-"})
_NUMBERISH = re.compile(r"[\d.,]+")
_SEP = r"[_.\-]?"


# Digits -> "0", everything else -> "x": counts the digits of a run without a regex.
_DIGITS = bytes(48 if 48 <= i <= 57 else 120 for i in range(256))
# Digits -> "0", the separators of numbers (_RUN_SEPARATORS) deleted, the rest -> "x": a run holding n
# digits becomes n "0"s in a row, found by a substring search. Every phone, SSN and card
# number has 9+ digits, or 7+ after a "+" / "%2B" (E.164); the only digit-shaped PII with
# fewer is an IPv4 address (_IPV4_HINT). Most log lines have neither (dates have 8 digits).
_RUN_SEPARATORS = b" ().-/+%"
# Digits -> "0", the separators of numbers (_RUN_SEPARATORS) -> "1", the rest -> "x": the runs ("x" ends
# one) and the separators skipped by the translation above (see _numeric_windows).
# Below this many bytes one scan of the numeric pattern costs less than finding windows.
_SHORT = 512
_DIGITS_SEPARATORS = bytes(48 if 48 <= i <= 57 else 49 if i in _RUN_SEPARATORS else 120 for i in range(256))
# A dot after a digit, two more dotted groups, and not the loopback 127.x: it starts with a
# literal, so `re` skips from dot to dot in C. (Nested lookbehind: "127." not after a digit.)
_IPV4_HINT = re.compile(rb"\.(?<=[0-9]\.)(?<!(?<![0-9])127\.)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")


# A cheap hint for _VENDOR_BRANCHES: each prefix is found from its rarest character (the part
# before it is a look-behind), so the scan only stops at - _ z J B b I C.
_VENDOR_HINT = re.compile(
    r"-(?:(?P<o2>)(?<=sk-)|(?P<o4>)(?<=xox[abposr]-)|(?P<o0>)----BEGIN)"
    r"|_(?:(?P<o2b>)(?<=k_)|(?P<o5>)(?<=whsec_)|(?P<o3>)(?<=gh[pousr]_)|(?P<o6>)(?<=github_)pat_)"
    r"|z(?P<o2c>)(?<=AIz)a|J(?P<o2d>)(?<=eyJ)|B(?P<o0b>)(?:earer|EARER)|b(?P<o0c>)earer"
    r"|I(?P<o2e>)(?<=AKI|ASI|ABI)A|C(?P<o1>)(?<=AC)CA"
)
# How far before the hint's first character the token starts, by the hint's named group.
_VENDOR_OFFSET = {name: int(name[1]) for name in _VENDOR_HINT.groupindex}

# The yes/no form of _VENDOR_HINT for ASCII text, on bytes where all eight hint characters
# were turned into \x01 by one bytes.translate. A pattern that starts with a character class
# makes `re` test every position (~3.5 ns a character); one that starts with a literal is
# found by a fast loop, which halves the cost of a clean line. It accepts a superset of what
# _VENDOR_HINT accepts (sk- and sk_ look alike here), and a hit only means that _sub_vendor
# runs, with the exact hint, on the original text.
_VENDOR_TABLE = bytes(1 if chr(i) in "-_zJBbIC" else i for i in range(256))
_VENDOR_HINT_ASCII = re.compile(
    rb"\x01(?:(?<=k\x01)|(?<=xox[abposr\x01]\x01)|\x01{5}EG\x01N|(?<=whsec\x01)|(?<=gh[pousr]\x01)"
    rb"|(?<=githu\x01\x01)pat\x01|(?<=A\x01)\x01[aA]|(?<=ey\x01)|earer|EARER|(?<=A[KS]\x01)A)"
)
# Lower-cases ASCII letters and turns ":" into "=" (in one bytes.translate), so the reversed
# name hint of sensitive_params starts with the literal "=" (see _VENDOR_HINT_ASCII for why).
_PARAMS_TABLE = bytes(i + 32 if 65 <= i <= 90 else 61 if i == 58 else i for i in range(256))


def _vendor_starts(text: str, raw: bytes | None = None) -> Iterable[int]:
    """Where a vendor token may start in ``text`` (ascending); ``raw``: its bytes if ASCII.

    On ASCII text the literal-led ``_VENDOR_HINT_ASCII`` finds the candidates (a fast loop in
    C) and the exact hint is searched only next to each: the exact hint starts with eight
    different characters, so scanning a long text with it costs ~40 % more. Every exact hint
    has an ASCII hint at its position or one before (the AIza/ABIA/ACCA forms), so a search
    window of 16 characters from each ASCII hint finds them all.
    """
    if raw is None:
        for hint in _VENDOR_HINT.finditer(text):
            yield hint.start() - _VENDOR_OFFSET[hint.lastgroup or "o0"]
        return
    last = -1
    for candidate in _VENDOR_HINT_ASCII.finditer(raw.translate(_VENDOR_TABLE)):
        position = candidate.start()
        if position <= last:
            continue
        hint = _VENDOR_HINT.search(text, position, position + 16)
        if hint is not None:
            last = hint.start()
            yield last - _VENDOR_OFFSET[hint.lastgroup or "o0"]


def _splice(text: str, starts: Iterable[int], pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> str:
    """Replace ``pattern`` matched only at the candidate ``starts`` (ascending), never scanning the text.

    Overlapping candidates are skipped; a match ``repl`` leaves unchanged is not spliced in.
    """
    pieces: list[str] = []
    last = 0
    for start in starts:
        if start < last or start < 0:
            continue
        match = pattern.match(text, start)
        if match is None:
            continue
        replacement = repl(match)
        if replacement == match.group(0):
            continue
        pieces.append(text[last:start])
        pieces.append(replacement)
        last = match.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _name_regex(words: Sequence[str]) -> str:
    return _SEP.join(re.escape(word) for word in words)


def _trie_regex(names: Iterable[Sequence[str]]) -> str:
    """One alternation of the reversed names, factored by common prefix (a trie).

    ``re`` tries the alternatives of a group one after another; factored, each position
    costs one test per distinct first letter instead of one per name.
    """
    trie: dict = {}
    for words in names:
        node = trie
        atoms: list[str] = []
        for index, word in enumerate(reversed(words)):
            if index:
                atoms.append(_SEP)
            atoms.extend(re.escape(char) for char in word[::-1])
        for atom in atoms:
            node = node.setdefault(atom, {})
        node[""] = {}

    def render(node: dict) -> str:
        ends = "" in node
        branches = [atom + render(child) for atom, child in sorted(node.items(), key=lambda kv: -len(kv[1])) if atom]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if ends else body

    return render(trie)


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index & 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """13-19 digits with a card brand prefix of the right length and a valid Luhn sum."""
    n = len(digits)
    if not 13 <= n <= 19 or not digits.isdigit():
        return False
    first, two, three, four = digits[0], int(digits[:2]), int(digits[:3]), int(digits[:4])
    if first == "4":
        ok = n in (13, 16, 19)
    elif 51 <= two <= 55 or 2221 <= four <= 2720:
        ok = n == 16
    elif two in (34, 37):
        ok = n == 15
    elif two in (30, 36, 38, 39):
        ok = 14 <= n <= 19
    elif 3528 <= four <= 3589:
        ok = 16 <= n <= 19
    elif first == "6" or two in (50, 56, 57, 58):
        ok = 16 <= n <= 19 or (n >= 12 and three in range(500, 600))
    else:
        ok = False
    return ok and _luhn(digits)


def _valid_ssn(text: str) -> bool:
    digits = text.replace("-", "").replace(" ", "")
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _valid_ipv4(text: str) -> bool:
    a, b, c, d = text.split(".")
    if a == "127" or text == "0.0.0.0":  # loopback and unspecified are not personal data
        return False
    return int(a) < 256 and int(b) < 256 and int(c) < 256 and int(d) < 256


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


class _ScrubError(Exception):
    pass


# --- the scrubber -----------------------------------------------------------------------
class Scrubber:
    """Redacts PII and secrets from strings, attribute maps, spans, logs and metrics.

    ``disabled``: detector names (see :data:`DETECTORS`, :data:`DETECTOR_ALIASES`) to
    switch off. ``extra_patterns``: ``(kind, regex)`` pairs; a match (or its first
    group, when the regex has groups) becomes ``[REDACTED:<kind>]``. ``extra_keys``:
    more sensitive key names (matched like the built-in ones, values always redacted).
    """

    _CACHE_LIMIT = 4096
    _CLEAN_VALUE_LENGTH = 256  # longer values are rarely repeated: not remembered

    def __init__(
        self,
        disabled: Iterable[str] = (),
        extra_patterns: Iterable[tuple[str, str | re.Pattern[str]]] = (),
        extra_keys: Iterable[str] = (),
        engine: str = "auto",
    ) -> None:
        off: set[str] = set()
        for name in disabled:
            off.update(DETECTOR_ALIASES.get(name, (name,)))
        self.enabled = frozenset(d for d in DETECTORS if d not in off)
        self.extra_patterns = [
            (kind, pattern if isinstance(pattern, re.Pattern) else re.compile(pattern))
            for kind, pattern in extra_patterns
        ]
        self.extra_keys = tuple(k for k in (key.strip() for key in extra_keys) if k)
        self._key_cache: dict[str, Any] = {}
        # Attribute values found clean (code.file.path, http.route, user agents, model names
        # recur on every record): skipped by the next batches. A value's result does not
        # depend on its neighbours, so this changes no output. Bounded; cleared when full.
        self._clean_values: dict[str, None] = {}
        self._resource_cache: dict[int, tuple[Any, Any]] = {}
        self.engine = engine
        self._build()

    # construction ------------------------------------------------------------------------
    def _build(self) -> None:
        on = self.enabled
        # AGENTWATCH_SCRUB_EXTRA_PATTERNS: (pattern.sub, its replacement), built once, not per string.
        self._extra_subs = [(pattern.sub, self._extra_repl(kind)) for kind, pattern in self.extra_patterns]
        vendor: list[str] = []
        for group, branches in _VENDOR_BRANCHES.items():
            wanted = ("openai_api_key" in on or "anthropic_api_key" in on) if group == "sk-" else group in on
            if wanted:
                vendor.extend(branches)
        self._vendor = re.compile("|".join(vendor)) if vendor else None

        numeric: list[str] = []
        for group, branches in _NUMERIC_BRANCHES.items():
            if (group if group != "phone_national" else "phone") in on:
                numeric.extend(branches)
        self._numeric = (
            re.compile(_NUMERIC_START + "(?:" + "|".join(numeric) + ")" + _END, re.ASCII)
            if numeric
            else None
        )

        self._email = "email" in on
        self._url_credentials = "url_credentials" in on
        self._ipv6 = "ipv6" in on
        self._keys_on = "sensitive_keys" in on

        # Sensitive names in text: a forward regex that redacts, and a reversed one over the
        # lower-cased, reversed text that finds candidates fast (it starts at the rare = or :).
        self._params = None
        if "sensitive_params" in on:
            names = list(_PARAM_NAMES) + [(tuple(key_words(k)) or (k.lower(),), "free") for k in self.extra_keys]
            free = [w for w, mode in names if mode == "free"]
            free.sort(key=lambda w: -len("".join(w)))
            bounded = [w for w, mode in names if mode == "bounded"]
            query = [w for w, mode in names if mode == "query"]
            line = "|".join(_name_regex((w,)) for w in _LINE_PARAMS)
            forward = (
                r"(?P<name>(?P<line>" + line + r")"
                + r"|(?:(?<=[?&;\x00])|^)(?:" + "|".join(_name_regex(w) for w in query) + r")(?==)"
                + r"|(?<![a-z0-9])(?:" + "|".join(_name_regex(w) for w in bounded) + r")"
                + r"|(?:" + "|".join(_name_regex(w) for w in free if "_".join(w) not in _WEAK_PARAMS) + r")"
                + r"|" + "|".join(_name_regex(w) for w in free if "_".join(w) in _WEAK_PARAMS) + r")"
                + r"(?P<sep>\\?[\"']?[ \t]{0,8}[=:][ \t]*)"
                + r"(?:\\\"(?P<edq>(?:[^\"\\\x00]|\\[^\"])*)\\\"|\"(?P<dq>(?:[^\"\\\n\x00]|\\.)*)\"|'(?P<sq>[^'\n\x00]*)'"
                # A spaced number ("ssn: 234 56 7890") is one value, not "234" and a tail left in clear.
                + r"|(?P<bare>(?(line)[^\r\n\"'\\\x00]+|(?:\d{3}[ \-]\d{2}[ \-]\d{4}(?!\d)|(?:(?:bearer|basic|digest|token)[ \t]+)?[^\s&;,\"'\\<>#)\]}\x00]+))))"
            )
            reverse = (
                r"[=:](?:[ \t]{0,8}[\"']?\\?(?:"
                + _trie_regex(free + bounded)
                + r")|(?<==)(?:"
                + _trie_regex(query)
                + r")(?=[?&;\x00\n]|$))"
            )
            self._params = re.compile(forward, re.IGNORECASE | re.ASCII | re.MULTILINE)
            self._params_ascii = all(word.isascii() for words, _ in names for word in words)
            # Over text translated by _PARAMS_TABLE (":" is "="): a superset of the exact hint,
            # the forward pattern confirms each candidate.
            self._params_hint = re.compile(reverse.replace("[=:]", "=", 1).encode())

        self._sensitive_names: list[tuple[tuple[str, ...], bool, str]] = []
        self._suffix_names: set[str] = set(_SUFFIX_KEYS)
        if self._keys_on:
            for name in SENSITIVE_KEYS:
                self._sensitive_names.append((tuple(name.split("_")), name not in _WEAK_KEYS, name))
            for name in self.extra_keys:
                words = key_words(name) or (name.lower(),)
                self._sensitive_names.append((words, True, "_".join(words)))
                if len(words) == 1:
                    self._suffix_names.add(words[0])

        # The hint pass over a whole batch (_hints.py), compiled on first use (~45 ms, not at
        # start-up); None: every family runs its own hint.
        self._hints: Any = _PENDING if self.engine != "re" else None

    def _load_hints(self) -> _hints.HintScanner | None:
        # No lock: two threads may both compile once, harmlessly; a lock held while compiling
        # would be inherited locked by a child forked meanwhile (gunicorn) and hang its exports.
        if self._hints is _PENDING:
            names = [w for w, mode in _PARAM_NAMES if mode != "query"]
            names += [tuple(key_words(k)) or (k.lower(),) for k in self.extra_keys]
            try:
                self._hints = _hints.build(tuple(names), tuple(w for w, mode in _PARAM_NAMES if mode == "query"))
            except (ImportError, ValueError):
                # Not installed on this platform, or an extra key name the scan cannot see
                # (not ASCII): Python's re alone.
                self._hints = None
            except Exception as error:  # noqa: BLE001 - the engine cannot run here: re alone
                self._engine_failed(error)
        return self._hints

    @property
    def engine_name(self) -> str:
        """``hyperscan`` when the hint engine runs, else ``re``."""
        return "re" if self._load_hints() is None else "hyperscan"

    def _engine_failed(self, error: BaseException) -> None:
        self._hints = None
        warn_once(
            "scrub-engine",
            f"agentwatch: the scrubber's hint engine (hyperscan) failed ({type(error).__name__}: {error}); "
            "scrubbing goes on with Python's re alone (same results, slower)",
        )

    # keys ----------------------------------------------------------------------------------
    def classify_key(self, key: str) -> Any:
        """``_SAFE``, ``_PLAIN`` or a :class:`_Sensitive` for an attribute/dict key (cached)."""
        found = self._key_cache.get(key)
        if found is not None:
            return found
        found = self._classify(key)
        if len(self._key_cache) >= self._CACHE_LIMIT:
            self._key_cache.clear()
        self._key_cache[key] = found
        return found

    def _classify(self, key: str) -> Any:
        words = key_words(key) if isinstance(key, str) else ()
        if not words:
            return _PLAIN
        for suffix in _SAFE_KEY_SUFFIXES:
            if words[-len(suffix) :] == suffix:
                return _SAFE
        counting = any(word in _COUNTING_WORDS for word in words)
        names = self._sensitive_names
        if key in _AGENTWATCH_ID_KEYS:
            names = names[-len(self.extra_keys):] if self.extra_keys and self._keys_on else []
        for name_words, strong, name in names:
            n = len(name_words)
            if n == 1 and name in self._suffix_names:  # dbpassword, csrftoken, clientsecret
                hit = any(word.endswith(name) for word in words)
            else:
                hit = any(words[i : i + n] == name_words for i in range(len(words) - n + 1))
            if hit and (strong or not counting):
                return _Sensitive(strong, MARK.format(name))
        return _PLAIN

    # text ------------------------------------------------------------------------------------
    def scrub_text(self, text: str) -> str:
        """``text`` with every detected secret replaced; the same object when nothing was found.

        Each detector family scans the text once, from a cheap hint (a rare character, a run
        of digits, a literal), and replaces what it confirms; nothing is scanned twice. With
        the hint engine, one pass of it says which families need to look at all.
        """
        out = self._hinted_text(text)
        if out is None:  # no hint engine: every family looks
            out = self._families(text, _hints.ALL)
        return self._sub_extras(out) if self._extra_subs else out

    def _sub_extras(self, text: str) -> str:
        """``AGENTWATCH_SCRUB_EXTRA_PATTERNS`` over ``text``, after the built-in families."""
        for sub, repl in self._extra_subs:
            text = sub(repl, text)
        return text

    def _hinted_text(self, text: str) -> str | None:
        """``text`` through the families the hint engine points at; ``None`` without the engine."""
        hints = self._hints if self._hints is not _PENDING else self._load_hints()
        if hints is None or "\x00" in text:
            return None
        try:
            hits = hints.scan(text.encode("ascii", "replace"))
        except Exception as error:  # noqa: BLE001 - the engine failed: the families' own hints
            self._engine_failed(error)
            return None
        families = reduce(or_, hits, 0) & _hints.ALL
        if not families:
            return text
        if (
            len(text) >= _LINE_SPLIT
            and "\n" in text
            # What can match across a line end: a PEM block, an escaped-quoted JSON value.
            and not (families & _hints.VENDOR and "-----BEGIN" in text)
            and not (families & _hints.PARAMS and '\\"' in text)
        ):
            # A long text, line by line: only the lines the hints point at are looked at.
            parts = self._hinted(text.split("\n"), hits)
            return text if parts is None else "\n".join(parts)
        return self._families(text, families)

    def _families(self, text: str, families: int) -> str:
        """``text`` through the detector families whose bit (``_hints``) is set in ``families``."""
        out = text
        # ``raw``: the UTF-8 bytes of the text as given, reused by every family while ``out`` is
        # still ``text`` (most texts are clean: encoded once). A C-level call costs about as
        # much as scanning 100 characters, so the checks of a clean line are inlined here and
        # kept to a few translates, substring searches and literal-led regexes.
        raw = text.encode("utf-8", "surrogatepass")
        ascii = len(raw) == len(text)
        if families & _hints.VENDOR and self._vendor is not None and (
            _VENDOR_HINT_ASCII.search(raw.translate(_VENDOR_TABLE)) if ascii else _VENDOR_HINT.search(text)
        ) is not None:
            out = self._sub_vendor(out, raw if ascii else None)
        if families & _hints.URL and self._url_credentials and "://" in out and "@" in out:
            out = _URL_CREDENTIALS.sub("//[REDACTED:url_credentials]@", out)
        if families & _hints.PARAMS and self._params is not None and ("=" in out or ":" in out):
            if out is not text or not ascii:
                out = self._sub_params(out)
            elif self._params_hint.search(raw.translate(_PARAMS_TABLE)[::-1]) is not None:
                out = self._sub_params(out, raw)
        # "%40" and "\u0040" both hold "40": one search rules both out on most lines.
        if families & _hints.AT and self._email and ("@" in out or "40" in out and ("%40" in out or "\\u0040" in out)):
            out = _sub_emails(out)
        if families & _hints.IPV6 and self._ipv6 and ":" in out and _IPV6_HINT.search(out) is not None:
            windows = [(m.start() - 40 if m.start() > 40 else 0, m.end() + 45) for m in _IPV6_HINT.finditer(out)]
            out = _windowed_sub(_IPV6, self._ipv6_repl, out, windows)
        # (The numeric hint wants a token start before the digits; a replacement just before
        # them may make one, so a changed text is always looked at: the families' own hints.)
        if (families & _hints.NUMERIC or out is not text) and self._numeric is not None:
            if out is not text:
                raw = out.encode("utf-8", "surrogatepass")
            # Most log lines hold no run of 9 digits (7 after a "+") and no IPv4 address: a few
            # C-level checks rule them out before any run is looked at (see _numeric_windows).
            digits = raw.translate(_DIGITS, _RUN_SEPARATORS)
            long_run = b"000000000" in digits or (b"+" in raw or b"%2" in raw) and b"0000000" in digits
            if long_run or _IPV4_HINT.search(raw) is not None:
                if len(raw) != len(out) or len(raw) < _SHORT:
                    # Not ASCII (byte offsets are not str offsets), or short enough that one
                    # scan costs less than finding the windows: scan the whole text.
                    out = self._numeric.sub(self._numeric_repl, out)
                else:
                    kinds = raw.translate(_DIGITS_SEPARATORS)
                    if long_run:
                        windows = self._numeric_windows(raw, kinds, digits)
                    else:  # only an IPv4 address is possible: just the runs holding a hint
                        windows = _ipv4_windows(raw, kinds)
                    if len(windows) * 160 > len(raw) > 4096:
                        # Long and dense in candidates: one scan costs less than a search per window.
                        out = self._numeric.sub(self._numeric_repl, out)
                    elif windows:
                        out = _windowed_sub(self._numeric, self._numeric_repl, out, windows)
        return out

    def _scrub_segments(self, segments: list[str]) -> list[str] | None:
        """``segments`` scrubbed one by one, as a new list; ``None`` when none changed.

        All are checked in one pass over the text joined with NUL: the hint engine's, which
        says which strings each family must look at, or (without it) the families' own.
        """
        joined = "\x00".join(segments)
        hints = self._hints if self._hints is not _PENDING else self._load_hints()
        # Below _HINT_BATCH characters (one span, a few records) the engine's fixed cost and the
        # book-keeping per string outweigh what it saves: the families' own hints are cheaper.
        if hints is not None and len(joined) >= _HINT_BATCH and joined.count("\x00") == len(segments) - 1:
            try:
                hits = hints.scan(joined.encode("ascii", "replace"))
            except Exception as error:  # noqa: BLE001 - the engine failed: the families' own hints
                self._engine_failed(error)
            else:
                parts = self._hinted(segments, hits)
                if self._extra_subs:
                    parts = self._extras(segments if parts is None else parts, parts is not None)
                return parts
        scrubbed = self.scrub_text(joined)
        if scrubbed is joined:
            return None
        if joined.count("\x00") == len(segments) - 1 and scrubbed.count("\x00") == len(segments) - 1:
            return scrubbed.split("\x00")
        # NUL inside a value, or a match across two values: one by one
        return [self.scrub_text(segment) for segment in segments]

    def _hinted(self, segments: list[str], hits: list[int]) -> list[str] | None:
        """The segments of a text (split at one-character separators) the ``hits`` of the hint
        engine point at, through the families they name; ``None`` when none changed."""
        if not hits:
            return None
        # A hit ends in segment i when its last character is before the i-th separator.
        bounds = list(accumulate(map(_PLUS_ONE, map(len, segments))))
        families: dict[int, int] = {}
        for hit in hits:
            index = bisect.bisect_left(bounds, hit >> 6)
            families[index] = families.get(index, 0) | hit
        # The strings pointed at, each once (a batch repeats values: a client's address on each
        # of its spans), go through the families together, joined with NUL as _scrub_segments does.
        wanted: dict[str, int] = {}
        for index, bits in families.items():
            text = segments[index]
            wanted[text] = wanted.get(text, 0) | bits
        texts = list(wanted)
        bits = reduce(or_, wanted.values()) & _hints.ALL
        if len(texts) == 1:
            results = [self._families(texts[0], bits)]
        else:
            joined = "\x00".join(texts)
            out = self._families(joined, bits)
            if out is joined:
                return None
            results = out.split("\x00")
            if len(results) != len(texts):  # a match across two strings: one by one
                results = [self._families(text, wanted[text] & _hints.ALL) for text in texts]
        new = {text: result for text, result in zip(texts, results) if result != text}
        if not new:
            return None
        parts = list(segments)
        for index in families:
            result = new.get(segments[index])
            if result is not None:
                parts[index] = result
        return parts

    def _extras(self, segments: list[str], changed: bool) -> list[str] | None:
        """``AGENTWATCH_SCRUB_EXTRA_PATTERNS`` over every segment (one pass over them joined)."""
        joined = "\x00".join(segments)
        out = self._sub_extras(joined)
        if out is joined:
            return segments if changed else None
        if out.count("\x00") == len(segments) - 1:
            return out.split("\x00")
        return [self._sub_extras(segment) for segment in segments]  # a match across two strings

    def _numeric_windows(self, raw: bytes, kinds: bytes, digits: bytes) -> list[tuple[int, int]]:
        """The slices of the text where a numeric detection can be, one per run that may hold one.

        ``raw``: the ASCII text as bytes; ``kinds``: it translated by ``_DIGITS_SEPARATORS``
        (digit "0", separator "1", other "x"); ``digits``: by ``_DIGITS`` with the separators
        deleted (a run holding n digits is n "0"s in a row). Most runs of digits and
        separators in logs are durations, ports, short ids, dates (`` 767.8 ``, ``40224 - ``,
        ``2026-11-05``): a run is kept only if it can hold what a replacement needs: 9+ digits
        (national and NANP phones, SSNs, cards), 7+ after a ``+`` or ``%2B`` (E.164), or an
        IPv4 hint (``_ipv4_windows``). The runs of nine are found by substring search in
        ``digits`` and mapped back to ``raw`` by counting the separators skipped since the
        previous one, so the text is walked once in C, not run by run in Python. A window is
        its run widened by 3 on the left (``%2B`` before an encoded phone number) and 2 on the
        right (the end-of-token look-ahead sees the real next two characters, so
        ``_windowed_sub`` need not match a hit again on the whole text). Sorted, merged.
        """
        windows: list[tuple[int, int]] = []
        k_prev = p_prev = 0  # a digit's index in ``digits`` and its position in ``raw``
        k = digits.find(b"000000000")
        while k >= 0:
            # Position p of the k-th kept character: p - p_prev = (k - k_prev) + separators in raw[p_prev:p].
            p = p_prev + (k - k_prev)
            while True:
                q = p_prev + (k - k_prev) + kinds.count(b"1", p_prev, p)
                if q == p:
                    break
                p = q
            at = kinds.rfind(b"x", 0, p) + 1
            end = kinds.find(b"x", p)
            if end < 0:
                end = len(kinds)
            windows.append((at - 3 if at > 3 else 0, end + 2))
            k_prev, p_prev = k, p
            k = digits.find(b"x", k)
            if k < 0:
                break
            k = digits.find(b"000000000", k)
        if b"+" in raw or b"%2" in raw:
            for sign in (b"+", b"%2"):
                position = raw.find(sign)
                while position >= 0:
                    # the run holding the sign, or the one right after "%2B"
                    at = kinds.rfind(b"x", 0, position) + 1 if sign == b"+" else position + 3
                    end = kinds.find(b"x", at)
                    if end < 0:
                        end = len(kinds)
                    if kinds.count(b"0", at, end) >= 7:
                        windows.append((at - 3 if at > 3 else 0, end + 2))
                    position = raw.find(sign, position + 1)
        windows += _ipv4_windows(raw, kinds)
        if len(windows) < 2:
            return windows
        windows.sort()
        merged = [windows[0]]
        for low, high in windows[1:]:
            if low <= merged[-1][1]:
                if high > merged[-1][1]:
                    merged[-1] = (merged[-1][0], high)
            else:
                merged.append((low, high))
        return merged

    def _sub_vendor(self, text: str, raw: bytes | None = None) -> str:
        """Vendor tokens, matched only where the hint says one starts (no scan of the whole text).

        ``raw``: the text's bytes when it is ASCII (offsets agree), for the faster hint.
        """
        return _splice(text, _vendor_starts(text, raw), self._vendor, self._vendor_repl)

    def _vendor_repl(self, match: re.Match[str]) -> str:
        text = match.group(0)
        on = self.enabled
        if text.startswith("-----BEGIN"):
            kind = "private_key"
        elif text.startswith("sk-ant-"):
            kind = "anthropic_api_key"
        elif text.startswith("sk-"):
            if not _looks_like_key(text[3:]):
                return text  # a slug such as sk-learn-tutorial, not a key
            kind = "openai_api_key"
        elif text.startswith(("sk_", "rk_", "whsec_")):
            kind = "stripe_key"
        elif text.startswith("AIza"):
            kind = "google_api_key"
        elif text[:4] in _AWS_PREFIXES:
            kind = "aws_access_key_id"
        elif text.startswith(("gh", "github_pat_")):
            kind = "github_token"
        elif text.startswith("xox"):
            kind = "slack_token"
        elif text.startswith("eyJ"):
            kind = "jwt"
        else:
            scheme, _, value = text.partition(" ") if " " in text else text.partition("\t")
            value = value.strip()
            if value.isalpha() and value.islower() or value.startswith(_MARK_PREFIX):
                return text  # "Bearer authentication": an English word, not a token
            return f"{scheme} [REDACTED:bearer_token]"
        return MARK.format(kind) if kind in on else text

    def _param_repl(self, match: re.Match[str]) -> str:
        for group in ("bare", "dq", "sq", "edq"):
            start, end = match.span(group)
            if start >= 0:
                break
        else:  # pragma: no cover - one value alternative always matches
            return match.group(0)
        value = match.string[start:end]
        name = re.sub(r"[.\-]", "_", match.group("name").lower())
        stripped = value.strip().lower()
        if stripped in _NOT_A_SECRET or stripped.startswith(_MARK_PREFIX.lower()):
            return match.group(0)
        if name in _WEAK_PARAMS and _NUMBERISH.fullmatch(stripped):
            return match.group(0)
        if group == "bare" and stripped.split()[0] in ("bearer", "basic", "digest", "token") and _MARK_PREFIX.lower() in stripped:
            return match.group(0)
        whole = match.group(0)
        offset = match.start()
        return whole[: start - offset] + MARK.format(name) + whole[end - offset :]

    def _ipv6_repl(self, match: re.Match[str]) -> str:
        text = match.group(0)
        candidate = text.rstrip(".")  # "... 2001:db8::1." at the end of a sentence
        rest = text[len(candidate) :]
        try:
            parsed = ipaddress.IPv6Address(candidate.split("%", 1)[0])
        except ValueError:
            return text
        if parsed.is_loopback or parsed.is_unspecified or sum(c not in ":." for c in candidate) < 4:
            return text  # ::1, ::, and a::b (C++ scope, not an address anyone has)
        return "[REDACTED:ipv6]" + rest

    def _sub_params(self, text: str, raw: bytes | None = None) -> str:
        """Redact the values of sensitive ``name=value`` pairs (``raw``: the UTF-8 bytes, if known).

        The reversed hint finds each candidate from its ``=``/``:`` and tells where the
        name starts, so the (case-insensitive, slow to scan) forward pattern is only
        *matched* there, never scanned over the whole text.
        """
        if raw is None:
            if not self._params_ascii and not text.isascii():  # a name the hint cannot see
                return self._params.sub(self._param_repl, text)
            # One byte per character (non-ASCII ones become "?"), so byte offsets are character
            # offsets. (A regex sub would stop at a pair left as is and hide the pairs after it.)
            raw = text.encode("ascii", "replace")
        reverse = raw.translate(_PARAMS_TABLE)[::-1]
        if self._params_hint.search(reverse) is None:
            return text
        n = len(raw)
        starts = sorted(n - hint.end() for hint in self._params_hint.finditer(reverse))
        # A pair left as is (a count, already redacted) does not hide later pairs.
        return _splice(text, starts, self._params, self._param_repl)

    def _numeric_repl(self, match: re.Match[str]) -> str:
        text = match.group(0)
        group = match.lastgroup  # the named alternative (separator groups close before it)
        kind = _NUMERIC_KIND.get(group or "")
        if kind == "ipv4":
            ok = _valid_ipv4(text) and not self._version_context(match)
        elif kind == "credit_card":
            ok = is_card_number(text.replace(" ", "").replace("-", "")) and not self._id_context(match)
        elif kind == "ssn":
            ok = _valid_ssn(text)
        elif kind == "phone":
            if group == "e164" or group == "e164u":
                digits = sum(c.isdigit() for c in text)
                ok = 8 <= digits <= 15 + (group == "e164u")
            elif group == "national":
                ok = 9 <= sum(c.isdigit() for c in text) <= 12
            else:
                ok = True
        else:
            ok = False
        return _MARKS[kind] if ok else text

    @staticmethod
    def _id_context(match: re.Match[str]) -> bool:
        """``span_id=4111111111111111``: an all-digit span/trace id, not a card."""
        start = match.start()
        before = match.string[start - 16 if start > 16 else 0 : start].lower()
        before = before[before.rfind("\x00") + 1 :]
        return "span" in before or "trace" in before

    @staticmethod
    def _version_context(match: re.Match[str]) -> bool:
        """``version 1.2.3.4`` is a version, not an address."""
        start = match.start()
        before = match.string[start - 10 if start > 10 else 0 : start]
        if "ersion" in before or "ERSION" in before:
            return "\x00" not in before[before.find("ersion") if "ersion" in before else before.find("ERSION") :]
        return before.endswith(("v ", "V ", "ver ", "Ver "))

    def _extra_repl(self, kind: str):
        mark = MARK.format(kind)

        def repl(match: re.Match[str]) -> str:
            if match.re.groups and match.start(1) >= 0:
                whole, offset = match.group(0), match.start()
                return whole[: match.start(1) - offset] + mark + whole[match.end(1) - offset :]
            return mark

        return repl

    # values ------------------------------------------------------------------------------------
    def scrub_value(self, value: Any, key: str | None = None) -> Any:
        """One attribute or body value (nested dicts and lists included); ``key`` is its key."""
        if key is not None:
            kind = self.classify_key(key)
            if kind is _SAFE:
                return value
            if kind is not _PLAIN:
                return self._redact(value, kind)
        return self._scan(value, 0)

    def _scan(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str:
            return self.scrub_text(value)
        if kind is bool or kind is float or value is None:
            return value
        if kind is int:
            if value >= 1_000_000_000_000 and "credit_card" in self.enabled and is_card_number(str(value)):
                return MARK.format("credit_card")
            return value
        if depth > 64:
            raise _ScrubError("value nested more than 64 levels deep")
        if isinstance(value, Mapping):
            return self._scrub_mapping(value, depth + 1)
        if isinstance(value, (list, tuple)):
            items = [self._scan(item, depth + 1) for item in value]
            if all(a is b for a, b in zip(items, value)):
                return value
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, (bytes, bytearray)):
            return value
        return self.scrub_text(str(value))  # a str subclass, or anything else as text

    def _scrub_mapping(self, mapping: Mapping, depth: int) -> Mapping:
        changed: dict | None = None
        for key, value in _items(mapping):
            kind = self.classify_key(key) if isinstance(key, str) else _PLAIN
            if kind is _SAFE:
                new = value
            elif kind is _PLAIN:
                new = self._scan(value, depth)
            else:
                new = self._redact(value, kind)
            if new is not value:
                if changed is None:
                    changed = dict(_items(mapping))
                changed[key] = new
        return mapping if changed is None else changed

    @staticmethod
    def _redact(value: Any, kind: _Sensitive) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            if value.strip().lower() in _NOT_A_SECRET or value.startswith(_MARK_PREFIX):
                return value
            if not kind.strong and _NUMBERISH.fullmatch(value):
                return value
            return kind.mark
        if isinstance(value, (int, float)):
            return kind.mark if kind.strong else value
        if isinstance(value, (list, tuple)):
            items = [Scrubber._redact(item, kind) for item in value]
            return tuple(items) if isinstance(value, tuple) else items
        return kind.mark

    def scrub_attributes(self, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """A scrubbed copy of an attribute map, or the same object when nothing needed scrubbing."""
        if not attributes:
            return attributes
        done = self._scrub_parts((), (attributes,))
        return attributes if done is None else done[1][0]

    def _scrub_parts(
        self, texts: Sequence[Any], maps: Sequence[Mapping[str, Any] | None]
    ) -> tuple[list[Any], list[Any]] | None:
        """Scrub loose strings and attribute maps together; ``None`` when nothing changes.

        The strings of all of them (texts, values, sequence items) are joined with NUL and
        checked in one pass; when something is found the joined text is scrubbed once and
        split back, and only the maps whose strings changed are copied. A map with a
        sensitive key, a large int or a nested value is scrubbed value by value instead.
        Unchanged entries are returned as the same objects.
        """
        segments: list[str] = []
        slow: set[int] = set()
        starts: list[int] = []  # index of the first segment of each map
        add = segments.append
        for text in texts:
            if type(text) is str and text:
                add(text)
        text_segments = len(segments)
        # The key of each map segment (``(key, position)`` for an item of a sequence value), so
        # that a changed value is put back without walking its map again.
        owners: list[Any] = []
        own = owners.append
        cache = self._key_cache
        clean = self._clean_values
        mark = starts.append
        for index, attributes in enumerate(maps):
            mark(len(segments))
            if attributes is None:
                continue
            # _items inlined (a call per map counts here): the dict inside a BoundedAttributes.
            inner = getattr(attributes, "_dict", None)
            for key, value in (inner if type(inner) is dict or isinstance(inner, dict) else attributes).items():
                kind = cache.get(key)
                if kind is None:
                    kind = self.classify_key(key)
                if kind is _PLAIN:
                    t = type(value)
                    if t is str:
                        if value in clean:
                            continue
                        add(value)
                        own(key)
                    elif t is int:
                        if value >= 1_000_000_000_000:
                            slow.add(index)
                    elif t is tuple or t is list:
                        for position, item in enumerate(value):
                            t = type(item)
                            if t is str:
                                add(item)
                                own((key, position))
                            elif not (t is float or t is bool or item is None or (t is int and item < 1_000_000_000_000)):
                                slow.add(index)
                    elif not (t is float or t is bool or value is None):
                        slow.add(index)  # bytes, mappings, other objects
                elif kind is not _SAFE:
                    slow.add(index)
        parts = self._scrub_segments(segments) if segments else None
        if parts is None and not slow:
            self._remember_clean(segments, owners, text_segments)
            return None
        new_texts, new_maps = list(texts), list(maps)
        for index in slow:
            new_maps[index] = self._scrub_mapping(maps[index], 0)
        if parts is None:
            self._remember_clean(segments, owners, text_segments)
            return new_texts, new_maps
        changed = list(compress(_count(), map(ne, segments, parts)))  # the indices where they differ
        if not changed:
            self._remember_clean(segments, owners, text_segments)
            return new_texts, new_maps
        # Texts: the first segments, in order (empty or non-str texts have none).
        if changed[0] < text_segments:
            position = 0
            for index, text in enumerate(texts):
                if type(text) is str and text:
                    if parts[position] != text:
                        new_texts[index] = parts[position]
                    position += 1
        # Maps: walk again only those holding a changed segment.
        touched: dict[int, list[int]] = {}  # map index -> its changed segments
        for k in changed:
            if k >= text_segments:
                touched.setdefault(bisect.bisect_right(starts, k) - 1, []).append(k)
        for index, ks in touched.items():
            if index not in slow:
                new_maps[index] = _put_back(maps[index], parts, ks, owners, text_segments)
        self._remember_clean(segments, owners, text_segments, set(changed))
        return new_texts, new_maps

    def _parts_by_column(self, texts: Sequence[Any], maps: Sequence[Any]) -> Any:
        """``_scrub_parts`` for a batch of log records, walked key by key rather than map by map.

        The records of a batch share their keys (``code.*``, ``request_id``...) and most of
        their values: each distinct key is classified once, and only the distinct values of a
        key that are not already known clean are scanned (a set per key, built in C). A value
        that changes is put back in every map holding it. ``NotImplemented`` when a map is not
        a dict, a key is sensitive, or a value is not a string, a number or ``None`` (or is an
        int long enough to be a card number): the walk of ``_scrub_parts`` handles those.
        """
        inners = list(map(getattr, maps, repeat("_dict"), maps))  # a BoundedAttributes' dict, or the map
        if None in inners:
            inners = [_NO_ATTRIBUTES if inner is None else inner for inner in inners]
        if set(map(type, inners)) != {dict}:
            return NotImplemented
        cache = self._key_cache
        clean = self._clean_values
        text_types = set(map(type, texts))
        if text_types == {str}:
            text_at: Sequence[int] = range(len(texts))
            segments = list(texts)
        elif text_types <= _SIMPLE_TYPES:
            text_at = list(compress(range(len(texts)), map(is_, map(type, texts), repeat(str))))
            segments = [texts[i] for i in text_at]
        else:
            return NotImplemented
        first = len(segments)
        keys: list[str] = []  # the key of each attribute segment
        try:
            for key in set().union(*inners):
                kind = cache.get(key)
                if kind is None:
                    kind = self.classify_key(key)
                if kind is _SAFE:
                    continue
                if kind is not _PLAIN:
                    return NotImplemented
                # (Not ``- clean.keys()``: that walks the whole cache, which another exporter's
                # thread may be filling.)
                fresh = set(filterfalse(clean.__contains__, set(map(dict.get, inners, repeat(key)))))
                types = set(map(type, fresh))
                if float in types:  # an int equal to a float is the same set member: the real types
                    types = set(map(type, map(dict.get, inners, repeat(key))))
                if not types <= _SIMPLE_TYPES or int in types and (
                    float in types or max(v for v in fresh if type(v) is int) >= 1_000_000_000_000
                ):
                    return NotImplemented
                if str in types:
                    before = len(segments)
                    segments.extend(v for v in fresh if type(v) is str)
                    keys.extend(repeat(key, len(segments) - before))
        except TypeError:  # an unhashable value
            return NotImplemented
        parts = self._scrub_segments(segments) if segments else None
        changed = [] if parts is None else list(compress(_count(), map(ne, segments, parts)))
        self._remember_clean(segments, keys, first, set(changed))
        if not changed:
            return None
        new_texts, new_maps = list(texts), list(maps)
        copies: dict[int, dict] = {}
        for k in changed:
            if k < first:
                new_texts[text_at[k]] = parts[k]  # type: ignore[index]
                continue
            key, old = keys[k - first], segments[k]
            for row in compress(_count(), map(eq, map(dict.get, inners, repeat(key)), repeat(old))):
                copy_ = copies.get(row)
                if copy_ is None:
                    copy_ = copies[row] = dict(inners[row])
                copy_[key] = parts[k]  # type: ignore[index]
        for row, copy_ in copies.items():
            new_maps[row] = copy_
        return new_texts, new_maps

    def _remember_clean(
        self, segments: list[str], owners: list[Any], first: int, changed: set[int] | frozenset = frozenset()
    ) -> None:
        """Add the attribute values of ``segments`` (from index ``first``) left unchanged to
        ``_clean_values``. Called last: ``_put_back`` must skip the same values as the walk."""
        clean = self._clean_values
        if len(clean) >= self._CACHE_LIMIT:
            clean.clear()
        limit = self._CLEAN_VALUE_LENGTH
        for k, owner in enumerate(owners, first):
            if type(owner) is str and k not in changed:
                value = segments[k]
                if len(value) <= limit:
                    clean[value] = None

    # signals ----------------------------------------------------------------------------------
    def scrub_resource(self, resource: Any) -> Any:
        """A resource with scrubbed attributes (cached per resource object)."""
        cached = self._resource_cache.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        attributes = resource.attributes
        scrubbed = self.scrub_attributes(attributes)
        if scrubbed is attributes:
            result = resource
        else:
            from opentelemetry.sdk.resources import Resource

            result = Resource(dict(scrubbed), resource.schema_url)
        if len(self._resource_cache) > 64:
            self._resource_cache.clear()
        self._resource_cache[id(resource)] = (resource, result)
        return result

    def scrub_span(self, span: Any) -> Any:
        """A scrubbed copy of a ``ReadableSpan``, or the span itself when it is clean."""
        return self._span_batch([span])[0]

    def _span_batch(self, spans: Sequence[Any]) -> list[Any]:
        """Scrub a batch of spans; all their strings are checked (and scrubbed) in one pass."""
        texts: list[Any] = []
        maps: list[Any] = []
        layout = []
        for span in spans:
            events, links, status = span.events, span.links, span.status
            layout.append((len(texts), len(maps), events, links))
            texts.append(span.name)
            texts.append(status.description if status is not None else None)
            texts.extend(event.name for event in events)
            maps.append(getattr(span, "_attributes", None) if isinstance(span, _READABLE_SPAN) else span.attributes)
            maps.extend(event.attributes for event in events)
            maps.extend(link.attributes for link in links)
        done = self._scrub_parts(texts, maps)
        new_texts, new_maps = done if done is not None else (texts, maps)
        out = []
        for span, (t0, m0, events, links) in zip(spans, layout):
            resource = self.scrub_resource(span.resource)
            t1, m1 = t0 + 2 + len(events), m0 + 1 + len(events) + len(links)
            if resource is span.resource and (
                done is None
                or all(a is b for a, b in zip(new_texts[t0:t1], texts[t0:t1]))
                and all(a is b for a, b in zip(new_maps[m0:m1], maps[m0:m1]))
            ):
                out.append(span)
            else:
                out.append(self._rebuild_span(span, new_texts[t0:t1], new_maps[m0:m1], resource, events, links))
        return out

    @staticmethod
    def _rebuild_span(
        span: Any, texts: list[Any], maps: list[Any], resource: Any, old_events=None, old_links=None
    ) -> Any:
        old_events = span.events if old_events is None else old_events
        old_links = span.links if old_links is None else old_links
        events = []
        for index, event in enumerate(old_events):
            name, attributes = texts[2 + index], maps[1 + index]
            if name is event.name and attributes is event.attributes:
                events.append(event)
            else:
                events.append(_ScrubbedEvent(name, attributes, event.timestamp, _dropped(event)))
        links = []
        for index, link in enumerate(old_links):
            attributes = maps[1 + len(old_events) + index]
            links.append(link if attributes is link.attributes else _ScrubbedLink(link.context, attributes, _dropped(link)))
        status = span.status
        if status is not None and texts[1] is not status.description:
            from opentelemetry.trace import Status

            status = Status(status.status_code, texts[1])
        attributes = maps[0]
        if type(attributes) is not dict:  # unchanged: copy it out of its BoundedAttributes
            attributes = dict(_items(attributes or {}))
        return _ScrubbedSpan(span, texts[0], attributes, events, links, status, resource)

    def scrub_log(self, record: Any) -> Any:
        """A scrubbed copy of a ``ReadableLogRecord``, or the record itself when it is clean."""
        return self._log_batch([record])[0]

    def _log_batch(self, records: Sequence[Any]) -> list[Any]:
        """Scrub a batch of log records; all their strings are checked (and scrubbed) in one pass.

        The per-record work is done by C-level ``map``/``compress`` over the batch; only the
        records that changed (or have a non-string body, or another resource) are looked at
        one by one.
        """
        n = len(records)
        logs = list(map(_LOG_RECORD, records))
        bodies = list(map(_BODY, logs))
        try:
            events = list(map(_EVENT_NAME, logs))
        except AttributeError:  # a record type without event_name
            events = [getattr(log, "event_name", None) for log in logs]
        maps = list(map(_ATTRIBUTES, logs))
        with_events = events.count(None) != n  # event names are rare in logs
        texts = bodies + events if with_events else bodies  # _scrub_parts takes the strings among them
        # Records of a batch share keys and values: walked key by key. (Spans are not: many keys,
        # sequence values, few repeats; and one record gains nothing.)
        done = self._parts_by_column(texts, maps) if n >= _COLUMN_BATCH else NotImplemented
        if done is NotImplemented:
            done = self._scrub_parts(texts, maps)
        redo: set[int] = set()
        if done is not None:
            new_texts, new_maps = done
            redo.update(compress(range(len(texts)), map(is_not, new_texts, texts)))
            redo = {i % n for i in redo}
            redo.update(compress(range(n), map(is_not, new_maps, maps)))
        else:
            new_texts, new_maps = texts, maps
        # Bodies that are not strings (mappings, lists, bytes...) are scanned value by value.
        others = [i for i in compress(range(n), map(is_not, map(type, bodies), repeat(str))) if bodies[i] is not None]
        redo.update(others)
        resources = list(map(_RESOURCE, records))
        first = resources[0] if n else None
        if n and all(map(is_, resources, repeat(first))):  # one resource for the batch, mostly
            scrubbed = self.scrub_resource(first)
            new_resources = None if scrubbed is first else [scrubbed] * n
        else:  # several resources: each scrubbed (cached per resource object)
            new_resources = [self.scrub_resource(resource) for resource in resources]
            if all(map(is_, new_resources, resources)):
                new_resources = None
        if new_resources is not None:
            redo = range(n)  # type: ignore[assignment]
        if not redo:
            return list(records)
        out = list(records)
        others_set = set(others)
        for index in sorted(redo):
            record, body = records[index], bodies[index]
            new_body = self._scan(body, 0) if index in others_set else new_texts[index]
            event_name, attributes = new_texts[n + index] if with_events else events[index], new_maps[index]
            resource = new_resources[index] if new_resources is not None else resources[index]
            if new_body is body and event_name is events[index] and attributes is maps[index] and resource is resources[index]:
                continue
            out[index] = self._rebuild_log(record, new_body, attributes, event_name, resource)
        return out

    @staticmethod
    def _rebuild_log(record: Any, body: Any, attributes: Any, event_name: Any, resource: Any) -> Any:
        old = record.log_record
        if type(old) is _API_LOG_RECORD:  # a plain object: its __dict__ copied (copy.copy costs 4x)
            log = object.__new__(_API_LOG_RECORD)
            log.__dict__.update(old.__dict__)
        else:
            log = copy.copy(old)
        log.body = body
        # A changed map is already a fresh dict; an unchanged one is shared (exporters only read it).
        log.attributes = attributes
        if hasattr(log, "event_name"):
            log.event_name = event_name
        if hasattr(log, "exception"):
            log.exception = None  # exported as exception.* attributes, which were scrubbed
        return _ScrubbedLogRecord(
            log_record=log,
            resource=resource,
            instrumentation_scope=record.instrumentation_scope,
            limits=record.limits,
            scrub_dropped=record.dropped_attributes,
        )

    def scrub_metrics(self, metrics_data: Any, safely: bool = False) -> Any:
        """A scrubbed copy of ``MetricsData`` (resource, data point and exemplar attributes)."""
        resource_metrics = []
        changed = False
        for rm in metrics_data.resource_metrics:
            resource = self.scrub_resource(rm.resource)
            scope_metrics = []
            rm_changed = resource is not rm.resource
            for sm in rm.scope_metrics:
                metrics = []
                sm_changed = False
                for metric in sm.metrics:
                    data = self._scrub_metric_data(metric.data, safely)
                    if data is not metric.data:
                        sm_changed = True
                        metric = dataclasses.replace(metric, data=data)
                    metrics.append(metric)
                if sm_changed:
                    rm_changed = True
                    sm = dataclasses.replace(sm, metrics=metrics)
                scope_metrics.append(sm)
            if rm_changed:
                changed = True
                rm = dataclasses.replace(rm, resource=resource, scope_metrics=scope_metrics)
            resource_metrics.append(rm)
        if not changed:
            return metrics_data
        return dataclasses.replace(metrics_data, resource_metrics=resource_metrics)

    def _scrub_metric_data(self, data: Any, safely: bool) -> Any:
        points = getattr(data, "data_points", None)
        if not points:
            return data
        maps: list[Any] = []
        for point in points:
            maps.append(point.attributes)
            maps.extend(exemplar.filtered_attributes for exemplar in (getattr(point, "exemplars", None) or ()))
        if safely:
            new_maps = [self._attributes_safely(m) for m in maps]
        else:
            done = self._scrub_parts((), maps)
            if done is None:
                return data
            new_maps = done[1]
        new_points = []
        at = 0
        for point in points:
            attributes = new_maps[at]
            exemplars = list(getattr(point, "exemplars", None) or ())
            new_exemplars = []
            changed = attributes is not point.attributes
            for offset, exemplar in enumerate(exemplars, start=1):
                filtered = new_maps[at + offset]
                if filtered is not exemplar.filtered_attributes:
                    changed = True
                    exemplar = dataclasses.replace(exemplar, filtered_attributes=dict(filtered or {}))
                new_exemplars.append(exemplar)
            at += 1 + len(exemplars)
            if changed:
                point = dataclasses.replace(point, attributes=dict(attributes or {}), exemplars=new_exemplars)
            new_points.append(point)
        return dataclasses.replace(data, data_points=_merge_points(data, new_points))

    # batches (what the exporters call): never raise ---------------------------------------------
    def scrub_spans(self, spans: Sequence[Any]) -> list[Any]:
        """Scrubbed copies of a batch of spans (clean ones are passed on as they are). Never raises."""
        try:
            return self._span_batch(spans)
        except Exception as error:  # noqa: BLE001 - never break the pipeline
            _fault("span batch", error)
        return self._batch(spans, self.scrub_span, self._scrub_span_safely, "span")

    def scrub_logs(self, records: Sequence[Any]) -> list[Any]:
        """Scrubbed copies of a batch of log records (clean ones are passed on as they are). Never raises."""
        try:
            return self._log_batch(records)
        except Exception as error:  # noqa: BLE001 - never break the pipeline
            _fault("log batch", error)
        return self._batch(records, self.scrub_log, self._scrub_log_safely, "log record")

    def scrub_metrics_safely(self, metrics_data: Any) -> Any:
        """``scrub_metrics`` that never raises: on failure, values are scrubbed one by one; ``None`` if even that fails."""
        try:
            return self.scrub_metrics(metrics_data)
        except Exception as error:  # noqa: BLE001 - never break the pipeline
            _fault("metric collection", error)
        try:
            return self.scrub_metrics(metrics_data, safely=True)
        except Exception as error:  # noqa: BLE001
            _fault("metric collection (value by value)", error, dropped=True)
            return None

    def _batch(self, items: Sequence[Any], scrub, safely, what: str) -> list[Any]:
        out = []
        for item in items:
            try:
                out.append(scrub(item))
                continue
            except Exception as error:  # noqa: BLE001 - never break the pipeline
                _fault(what, error)
            try:
                out.append(safely(item))
            except Exception as error:  # noqa: BLE001
                _fault(f"{what} (value by value)", error, dropped=True)
        return out

    def _safe_value(self, value: Any) -> Any:
        try:
            return self._scan(value, 0)
        except Exception:  # noqa: BLE001 - drop the value rather than leak it
            return ERROR_MARK

    def _attributes_safely(self, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        if not attributes:
            return attributes
        out = {}
        for key, value in attributes.items():
            try:
                out[key] = self.scrub_value(value, key)
            except Exception:  # noqa: BLE001 - drop the value rather than leak it
                out[key] = ERROR_MARK
        return out

    def _resource_safely(self, resource: Any) -> Any:
        try:
            return self.scrub_resource(resource)
        except Exception:  # noqa: BLE001
            from opentelemetry.sdk.resources import Resource

            return Resource(self._attributes_safely(resource.attributes) or {}, resource.schema_url)

    def _scrub_span_safely(self, span: Any) -> Any:
        events, links = span.events, span.links
        description = span.status.description if span.status is not None else None
        texts = [self._safe_value(t) for t in (span.name, description, *(e.name for e in events))]
        maps = [
            self._attributes_safely(m)
            for m in (span.attributes, *(e.attributes for e in events), *(link.attributes for link in links))
        ]
        return self._rebuild_span(span, texts, maps, self._resource_safely(span.resource))

    def _scrub_log_safely(self, record: Any) -> Any:
        log = record.log_record
        return self._rebuild_log(
            record,
            self._safe_value(log.body),
            self._attributes_safely(log.attributes),
            self._safe_value(getattr(log, "event_name", None)),
            self._resource_safely(record.resource),
        )


def _items(mapping: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """``mapping.items()``, read from the dict inside a ``BoundedAttributes`` (its own ``items()`` is slow)."""
    inner = getattr(mapping, "_dict", None)
    return inner.items() if type(inner) is dict or isinstance(inner, dict) else mapping.items()


_LOG_RECORD = attrgetter("log_record")
_BODY = attrgetter("body")
_EVENT_NAME = attrgetter("event_name")
_ATTRIBUTES = attrgetter("attributes")
_RESOURCE = attrgetter("resource")



_KEY_SEGMENT = re.compile(r"[A-Za-z0-9]{16,}")


def _looks_like_key(body: str) -> bool:
    """An ``sk-`` body that is a key, not a slug: mixed case with digits (OpenAI), or one run of 16+
    letters and digits holding both (``sk-proj-<hex>``, 32-hex keys of OpenAI-compatible vendors)."""
    if any(c.isdigit() for c in body) and any(c.isupper() for c in body) and any(c.islower() for c in body):
        return True
    return any(
        any(c.isdigit() for c in run) and any(c.isalpha() for c in run) for run in _KEY_SEGMENT.findall(body)
    )


def _put_back(attributes: Mapping[str, Any], parts: list[str], ks: list[int], owners: list[Any], first: int) -> dict:
    """A copy of ``attributes`` with the changed segments ``ks`` of ``parts`` put back.

    ``owners[k - first]`` says where segment ``k`` came from: a key, or ``(key, position)``
    for an item of a sequence value. Recorded by the walk of ``_scrub_parts``, not re-derived
    (``_clean_values`` may change under another thread's batch in the meantime).
    """
    out = dict(_items(attributes))
    for k in ks:
        owner = owners[k - first]
        if type(owner) is str:
            out[owner] = parts[k]
        else:
            key, position = owner
            value = out[key]
            items = list(value)
            items[position] = parts[k]
            out[key] = tuple(items) if type(value) is tuple else items
    return out


def _ipv4_windows(raw: bytes, runs: bytes) -> list[tuple[int, int]]:
    """The windows of ``Scrubber._numeric_windows`` for the runs holding an ``_IPV4_HINT``."""
    windows: list[tuple[int, int]] = []
    for hint in _IPV4_HINT.finditer(raw):
        dot = hint.start()
        if windows and dot < windows[-1][1]:
            continue  # another hint in the same run
        start = runs.rfind(b"x", 0, dot) + 1
        end = runs.find(b"x", dot)
        if end < 0:
            end = len(runs)
        windows.append((start - 3 if start > 3 else 0, end + 2))
    return windows


def _windowed_sub(pattern: re.Pattern[str], repl, text: str, windows: Iterable[tuple[int, int]]) -> str:
    """``pattern.sub(repl, text)`` looking only inside ``windows`` (sorted, as slices of ``text``).

    Each match found in a window is matched again from its start on the whole text, so
    look-aheads at a window's edge see the real text.
    """
    pieces: list[str] = []
    last = 0
    for low, high in windows:
        position = max(low, last)
        while position < high:
            found = pattern.search(text, position, high)
            if found is None:
                break
            # A match ending close to the window's edge is matched again on the whole text,
            # so its end-of-token look-ahead sees the real next characters.
            match = found if found.end() + 2 <= high else pattern.match(text, found.start())
            if match is None or match.end() == match.start():
                position = found.start() + 1
                continue
            replacement = repl(match)
            if replacement != match.group(0):
                pieces.append(text[last : match.start()])
                pieces.append(replacement)
                last = match.end()
            position = match.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _sub_emails(text: str) -> str:
    pieces: list[str] = []
    last = 0
    if "%40" in text or "\\u0040" in text:
        ats = [(m.start(), m.end()) for m in _AT.finditer(text)]
    else:  # only "@": found by str.find, without a regex scan
        ats = []
        at = text.find("@")
        while at >= 0:
            ats.append((at, at + 1))
            at = text.find("@", at + 1)
    for at, at_end in ats:
        if at < last:
            continue
        floor = max(last, at - 64)
        # Walk back over the local part: what rstrip leaves is the text before it.
        start = floor + len(text[floor:at].rstrip(_LOCAL_STRING))
        if start == at or start == floor and start > last and text[start - 1] in _LOCAL_CHARS:
            continue  # nothing before the @, or a local part longer than an address allows
        match = _EMAIL.match(text, start)
        if match is None or match.end() <= at_end:
            continue
        pieces.append(text[last:start])
        pieces.append("[REDACTED:email]")
        last = match.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _fault(what: str, error: BaseException, dropped: bool = False) -> None:
    if dropped:
        outcome = "it was dropped"
    elif what.endswith("batch"):
        outcome = "its items were scrubbed again one by one"
    else:
        outcome = "its values were scrubbed one by one, and any that failed replaced by [REDACTED:error]"
    warn_once(
        f"scrub-fault:{what}:{type(error).__name__}",
        f"scrubbing a {what} failed ({error!r}); {outcome}, so nothing unscrubbed was exported",
    )


def _dropped(item: Any) -> int:
    try:
        return int(item.dropped_attributes)
    except Exception:  # noqa: BLE001
        return 0


def _merge_points(data: Any, points: list[Any]) -> list[Any]:
    """Points whose attributes became equal after scrubbing are merged (no duplicate series)."""
    from opentelemetry.sdk.metrics.export import Gauge, Histogram, HistogramDataPoint, NumberDataPoint, Sum

    merged: dict[Any, int] = {}
    out: list[Any] = []
    for point in points:
        key = frozenset((k, _hashable(v)) for k, v in (point.attributes or {}).items())
        index = merged.get(key)
        if index is None:
            merged[key] = len(out)
            out.append(point)
            continue
        first = out[index]
        exemplars = list(first.exemplars or []) + list(point.exemplars or [])
        if isinstance(data, Sum) and isinstance(point, NumberDataPoint):
            out[index] = dataclasses.replace(first, value=first.value + point.value, exemplars=exemplars,
                                             time_unix_nano=max(first.time_unix_nano, point.time_unix_nano))
        elif isinstance(data, Gauge) and isinstance(point, NumberDataPoint):
            if point.time_unix_nano >= first.time_unix_nano:
                out[index] = dataclasses.replace(point, exemplars=exemplars)
        elif (
            isinstance(data, Histogram)
            and isinstance(point, HistogramDataPoint)
            and list(point.explicit_bounds) == list(first.explicit_bounds)
        ):
            out[index] = dataclasses.replace(
                first,
                count=first.count + point.count,
                sum=first.sum + point.sum,
                bucket_counts=[a + b for a, b in zip(first.bucket_counts, point.bucket_counts)],
                min=min(first.min, point.min),
                max=max(first.max, point.max),
                time_unix_nano=max(first.time_unix_nano, point.time_unix_nano),
                exemplars=exemplars,
            )
        # other kinds (exponential histograms): the first point is kept
    return out


# --- copies that keep the original dropped counts -------------------------------------------
def _span_classes():
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link

    class ScrubbedSpan(ReadableSpan):
        def __init__(self, span, name, attributes, events, links, status, resource) -> None:
            if type(span) is ReadableSpan:
                # What the SDK hands exporters: reuse its fields, replace the scrubbed ones
                # (a third of the cost of the keyword constructor, on every span that changed).
                self.__dict__.update(span.__dict__)
                self._name, self._attributes, self._events, self._links = name, attributes, events, links
                self._status, self._resource = status, resource
                self._scrub_dropped = (span.dropped_attributes, span.dropped_events, span.dropped_links)
                return
            super().__init__(
                name=name,
                context=span.context,
                parent=span.parent,
                resource=resource,
                attributes=attributes,
                events=events,
                links=links,
                kind=span.kind,
                instrumentation_info=getattr(span, "_instrumentation_info", None),
                status=status,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
            self._scrub_dropped = (span.dropped_attributes, span.dropped_events, span.dropped_links)

        @property
        def dropped_attributes(self) -> int:
            return self._scrub_dropped[0]

        @property
        def dropped_events(self) -> int:
            return self._scrub_dropped[1]

        @property
        def dropped_links(self) -> int:
            return self._scrub_dropped[2]

    class ScrubbedEvent(Event):
        def __init__(self, name, attributes, timestamp, dropped) -> None:
            super().__init__(name, attributes, timestamp)
            self._scrub_dropped = dropped

        @property
        def dropped_attributes(self) -> int:
            return self._scrub_dropped

    class ScrubbedLink(Link):
        def __init__(self, context, attributes, dropped) -> None:
            super().__init__(context, attributes)
            self._scrub_dropped = dropped

        @property
        def dropped_attributes(self) -> int:
            return self._scrub_dropped

    @dataclass(frozen=True)
    class ScrubbedLogRecord(ReadableLogRecord):
        scrub_dropped: int = 0

        @property
        def dropped_attributes(self) -> int:
            return self.scrub_dropped

    return ScrubbedSpan, ScrubbedEvent, ScrubbedLink, ScrubbedLogRecord


_ScrubbedSpan, _ScrubbedEvent, _ScrubbedLink, _ScrubbedLogRecord = _span_classes()
_PLUS_ONE = (1).__add__
_HINT_BATCH = 512  # joined batches this long go through the hint engine (_scrub_segments)
_LINE_SPLIT = 1024  # texts this long are scrubbed line by line where the hints point (scrub_text)
_COLUMN_BATCH = 16  # log batches at least this long are walked key by key (_parts_by_column)
_PENDING = object()  # the hint engine is not compiled yet
_NO_ATTRIBUTES: dict = {}
_SIMPLE_TYPES = frozenset({str, int, float, bool, type(None)})
_READABLE_SPAN = _ScrubbedSpan.__mro__[1]


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


_cached: tuple[Any, Scrubber | None] | None = None


def scrubber_for(settings: Any) -> Scrubber | None:
    """The scrubber the settings ask for (``None`` when ``AGENTWATCH_SCRUB=false``), built once per settings."""
    global _cached  # noqa: PLW0603 - one scrubber per settings object
    if _cached is not None and _cached[0] is settings:
        return _cached[1]
    scrubber = None
    if getattr(settings, "scrub", True):
        scrubber = Scrubber(
            disabled=getattr(settings, "scrub_disabled_detectors", ()),
            extra_patterns=getattr(settings, "scrub_extra_patterns", ()),
            extra_keys=getattr(settings, "scrub_extra_keys", ()),
            engine=getattr(settings, "scrub_engine", "auto"),
        )
    _cached = (settings, scrubber)
    return scrubber


def default_scrubber() -> Scrubber | None:
    """The scrubber of this process's settings (for readers and exporters built outside ``setup()``)."""
    from agentwatch.distro.settings import settings

    return scrubber_for(settings())


def scrub_text(text: str) -> str:
    """One string through this process's scrubber (for code that exports or returns free text itself).

    Never raises; returns ``text`` unchanged when ``AGENTWATCH_SCRUB=false``, and
    ``[REDACTED:error]`` if the text cannot be scrubbed.
    """
    try:
        scrubber = default_scrubber()
        return text if scrubber is None else scrubber.scrub_text(text)
    except Exception as error:  # noqa: BLE001 - never break the caller
        _fault("text", error, dropped=True)
        return ERROR_MARK
