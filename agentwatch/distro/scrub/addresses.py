"""Address-shaped detectors: e-mail addresses, credentials in URLs, IPv6 addresses.

Like the other families (``detectors.py``), each is found from a cheap hint: an e-mail from its
``@`` (or ``%40``, ``\\u0040``), URL credentials from ``://``, IPv6 from ``::`` or a run of colon
groups; validation (the address's shape, ``ipaddress``) runs on candidates only. Each one's
work is linear in the input (``tests/test_scrub_adversarial.py``).
"""

from __future__ import annotations

import functools
import ipaddress
import re

__all__ = ["IPV6", "IPV6_HINT", "URL_CREDENTIALS", "email_spans", "ipv6_repl", "ipv6_windows", "sub_emails"]


# --- e-mail, URL credentials, IPv6 ----------------------------------------------------------------
# E-mail: found from its "@" (or URL-encoded %40, JSON \u0040) when a domain label and a dot
# follow (one regex, in C: "a@a@a@..." has no candidate), the local part is walked back over in
# Python and the whole address matched from there; scanning for local parts would stop at
# every letter. Local parts and domains may be non-ASCII (RFC 6531, IDN): on text that is not
# ASCII the walk and the match use Unicode letters; a TLD is ASCII letters, an IDN TLD in
# punycode (xn--...) or non-ASCII letters.
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_LOCAL_STRING = "".join(sorted(_LOCAL_CHARS))  # for str.rstrip: the walk back done in C
_LOCAL_REVERSED = re.compile(r"[\w.%+\-]*")  # the same walk over Unicode text (reversed)
_TLD = r"(?:xn--[A-Za-z0-9\-]{1,59}|[A-Za-z]{2,24}"
# The TLD ends the domain: no letter or digit next, nor "-label." (the domain goes on);
# "alice@example.com-4111" is an address followed by a dash.
_TLD_END = r")(?![A-Za-z0-9]|-[A-Za-z0-9\-]*\.[A-Za-z])"
_EMAIL = re.compile(
    r"[\w.%+\-]{1,64}(?:@|%40|\\u0040)(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+" + _TLD + _TLD_END,
    re.ASCII,
)
_EMAIL_UNICODE = re.compile(
    r"[\w.%+\-]{1,64}(?:@|%40|\\u0040)(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+"
    + _TLD
    + r"|[^\W\d_a-zA-Z]{2,24}"
    + _TLD_END
)


# The "@" of a candidate: a whole domain follows (checked in C: "@a." * n has no candidate).
_DOMAIN = r"(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+" + _TLD + r"|[^\W\d_a-zA-Z]{2,24}" + _TLD_END
_AT = re.compile(r"(?:@|%40|\\u0040)(?=" + _DOMAIN + ")")


def _is_local(char: str) -> bool:
    return char in _LOCAL_CHARS or not char.isascii() and (char.isalnum() or char == "_")


def email_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of every e-mail address in ``text`` (also ``%40``- and ``\\u0040``-encoded).

    Most texts hold a few plain "@": found by ``str.find``. The encoded forms, and texts dense in
    "@" (where a Python step per "@" would cost more than the scan, 14 ns a character), go
    through ``_AT``, which also checks in C that a domain follows.
    """
    if "%40" in text or "\\u0040" in text or text.count("@") * 16 > len(text):
        ats = [match.span() for match in _AT.finditer(text)]
    else:
        ats = []
        at = text.find("@")
        while at >= 0:
            ats.append((at, at + 1))
            at = text.find("@", at + 1)
    spans: list[tuple[int, int]] = []
    last = 0
    ascii = text.isascii()
    email = _EMAIL if ascii else _EMAIL_UNICODE
    for at, at_end in ats:
        if at < last:
            continue
        floor = max(last, at - 64)
        # Walk back over the local part: what rstrip leaves is the text before it.
        window = text[floor:at]
        if ascii or window.isascii():
            start = floor + len(window.rstrip(_LOCAL_STRING))
        else:
            start = at - _LOCAL_REVERSED.match(window[::-1]).end()  # pyright: ignore[reportOptionalMemberAccess]
        if start == at or start == floor and start > last and _is_local(text[start - 1]):
            continue  # nothing before the @, or a local part longer than an address allows
        match = email.match(text, start)
        if match is None or match.end() <= at_end:
            continue
        spans.append((start, match.end()))
        last = match.end()
    return spans


def sub_emails(text: str) -> str:
    """Every e-mail address in ``text`` (also ``%40``- and ``\\u0040``-encoded) as ``[REDACTED:email]``."""
    pieces: list[str] = []
    last = 0
    for start, end in email_spans(text):
        pieces.append(text[last:start])
        pieces.append("[REDACTED:email]")
        last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


URL_CREDENTIALS = re.compile(r"//(?<=://)[^/\s:@?#\[\]\x00]{0,256}:[^/\s@?#\x00]{1,256}@")

# IPv6 needs "::" or at least four colon-separated groups in a row (12:30:45 is a time);
# candidates are validated with the ipaddress module.
IPV6_HINT = re.compile(r":(?::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:)")
IPV6 = re.compile(
    r"[0-9A-Fa-f:](?<![\w:.%][0-9A-Fa-f:])(?=[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:)[0-9A-Fa-f:.]{1,44}"
    r"(?:%[0-9A-Za-z._\-]{1,32})?(?![\w:])",
    re.ASCII,
)


def ipv6_windows(text: str) -> list[tuple[int, int]]:
    """Where an IPv6 address may be: around each ``IPV6_HINT``, overlapping windows merged (so a
    text dense in colons is searched once, not once per hint)."""
    windows: list[tuple[int, int]] = []
    for count, hint in enumerate(IPV6_HINT.finditer(text)):
        if count > 64 and count * 128 > hint.end():
            return [(0, len(text))]  # dense in hints ("::" * n): one window, not a Python step per hint
        low, high = hint.start() - 40 if hint.start() > 40 else 0, hint.end() + 45
        if windows and low <= windows[-1][1]:
            windows[-1] = (windows[-1][0], high)
        else:
            windows.append((low, high))
    return windows


def ipv6_repl(match: re.Match[str]) -> str:
    """An IPv6 candidate replaced once ``ipaddress`` accepts it (loopback and unspecified are kept)."""
    text = match.group(0)
    candidate = text.rstrip(".")  # "... 2001:db8::1." at the end of a sentence
    if not _is_ipv6(candidate):
        return text
    return "[REDACTED:ipv6]" + text[len(candidate) :]


@functools.lru_cache(maxsize=1024)
def _is_ipv6(candidate: str) -> bool:
    """An address to redact (cached: ``ipaddress`` costs ~10 us, and one address recurs in a batch)."""
    try:
        parsed = ipaddress.IPv6Address(candidate.split("%", 1)[0])
    except ValueError:
        return False
    # ::1, ::, and a::b (C++ scope, not an address anyone has) are kept
    return not (parsed.is_loopback or parsed.is_unspecified or sum(c not in ":." for c in candidate) < 4)
