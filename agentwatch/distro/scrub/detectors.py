"""The content detectors: what each family looks for in text and how it finds candidates fast.

Each family makes one pass, found from a cheap hint so that ``re`` never has to try a complex
pattern at every position: vendor tokens from a rare character of their prefix (``-``, ``_``,
``z``, ``J``...), digit-shaped PII only inside runs of digits and separators that have enough
digits for one (found with ``bytes.translate`` and substring searches), e-mail addresses from
their ``@``, IPv6 from ``::`` or a run of colon groups, and ``name=value`` pairs by scanning the
lower-cased, *reversed* text from the rare ``=``/``:``, which also says where the name starts.
Hints are regexes that start with a literal (``bytes.translate`` first maps the hint characters
to one byte), which ``re`` finds with a fast loop; a pattern that starts with a character class
is tried at every position. Validation (Luhn, address parsing) only runs on candidates.

Linear time, whatever the input (``tests/test_scrub_adversarial.py``): each pattern's work at a
candidate is bounded or ends at the next candidate's start, a rejected vendor candidate is
skipped with what it covers (``splice``'s ``skip_rejected``: ``"sk-" * n`` is one match), a
value already redacted fails a pair's match at once, windows are merged before they are
searched, each run after a ``+`` or ``%2`` is looked at once, and where candidates are dense
the pattern scans the text itself (in C) instead of a Python step per candidate.

Stateless: the patterns a scrubber's configuration switches on are compiled by
``vendor_pattern``/``numeric_pattern``/``params_patterns`` and run by ``text.TextScrubber``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from agentwatch.distro.scrub.rules import MARK, MARK_PREFIX, MARKS, NOT_A_SECRET, NUMBERISH, key_words

__all__ = [
    "AWS_PREFIXES",
    "DIGITS",
    "DIGITS_SEPARATORS",
    "IPV4_HINT",
    "PARAM_NAMES",
    "PARAMS_TABLE",
    "RUN_SEPARATORS",
    "VENDOR_HINT",
    "VENDOR_HINT_ASCII",
    "VENDOR_HINT_INSIDE",
    "VENDOR_TABLE",
    "hint_names",
    "ipv4_windows",
    "is_card_number",
    "looks_like_key",
    "numeric_pattern",
    "numeric_repl",
    "numeric_windows",
    "param_repl",
    "params_patterns",
    "splice",
    "slug_starts",
    "vendor_pattern",
    "vendor_finder",
    "vendor_starts",
    "windowed_sub",
]


# --- vendor tokens ----------------------------------------------------------------------
# Vendor tokens, PEM keys, JWTs, Bearer values (case-sensitive, original text). Every
# branch starts with a literal so `re` gets a first-character set and skips ahead in C;
# the boundary (not preceded by a letter/digit) is checked *after* the literal.
VENDOR_BRANCHES = {
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
AWS_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA")

# A cheap hint for VENDOR_BRANCHES: each prefix is found from its rarest character (the part
# before it is a look-behind), so the scan only stops at - _ z J B b I C.
VENDOR_HINT = re.compile(
    r"-(?:(?P<o2>)(?<=sk-)|(?P<o4>)(?<=xox[abposr]-)|(?P<o0>)----BEGIN)"
    r"|_(?:(?P<o2b>)(?<=k_)|(?P<o5>)(?<=whsec_)|(?P<o3>)(?<=gh[pousr]_)|(?P<o6>)(?<=github_)pat_)"
    r"|z(?P<o2c>)(?<=AIz)a|J(?P<o2d>)(?<=eyJ)|B(?P<o0b>)(?:earer|EARER)|b(?P<o0c>)earer"
    r"|I(?P<o2e>)(?<=AKI|ASI|ABI)A|C(?P<o1>)(?<=AC)CA"
)
# How far before the hint's first character the token starts, by the hint's named group.
_VENDOR_OFFSET = {name: int(name[1]) for name in VENDOR_HINT.groupindex}

# The yes/no form of VENDOR_HINT for ASCII text, on bytes where all eight hint characters
# were turned into \x01 by one bytes.translate. A pattern that starts with a character class
# makes `re` test every position (~3.5 ns a character); one that starts with a literal is
# found by a fast loop, which halves the cost of a clean line. It accepts a superset of what
# VENDOR_HINT accepts (sk- and sk_ look alike here), and a hit only means that _sub_vendor
# runs, with the exact hint, on the original text.
VENDOR_TABLE = bytes(1 if chr(i) in "-_zJBbIC" else i for i in range(256))
VENDOR_HINT_ASCII = re.compile(
    rb"\x01(?:(?<=k\x01)|(?<=xox[abposr\x01]\x01)|\x01{5}EG\x01N|(?<=whsec\x01)|(?<=gh[pousr]\x01)"
    rb"|(?<=githu\x01\x01)pat\x01|(?<=A\x01)\x01[aA]|(?<=ey\x01)|earer|EARER|(?<=A[KS]\x01)A)"
)


def vendor_pattern(enabled: frozenset[str]) -> re.Pattern[str] | None:
    """The vendor-token pattern for the ``enabled`` detectors (``None`` when none is on)."""
    vendor: list[str] = []
    for group, branches in VENDOR_BRANCHES.items():
        wanted = ("openai_api_key" in enabled or "anthropic_api_key" in enabled) if group == "sk-" else group in enabled
        if wanted:
            vendor.extend(branches)
    return re.compile("|".join(vendor)) if vendor else None


_DIGIT, _UPPER, _LOWER = re.compile(r"[0-9]"), re.compile(r"[A-Z]"), re.compile(r"[a-z]")
# A whole run of 16+ letters and digits holding both (each lookahead scans one run, from its start).
_KEY_SEGMENT = re.compile(
    r"[A-Za-z0-9](?<![A-Za-z0-9][A-Za-z0-9])(?=[A-Za-z0-9]{15})(?=[A-Za-z]*[0-9])(?=[0-9]*[A-Za-z])"
)


def looks_like_key(body: str) -> bool:
    """An ``sk-`` body that is a key, not a slug: mixed case with digits (OpenAI), or one run of 16+
    letters and digits holding both (``sk-proj-<hex>``, 32-hex keys of OpenAI-compatible vendors).

    (Regex searches, not a walk in Python: a rejected body may be the whole of a long text.)
    """
    if _DIGIT.search(body) is None:
        return False
    if _UPPER.search(body) is not None and _LOWER.search(body) is not None:
        return True
    return _KEY_SEGMENT.search(body) is not None


def vendor_starts(text: str, raw: bytes | None = None) -> Iterable[int]:
    """Where a vendor token may start in ``text`` (ascending); ``raw``: its bytes if ASCII.

    On ASCII text the literal-led ``VENDOR_HINT_ASCII`` finds the candidates (a fast loop in
    C) and the exact hint is searched only next to each: the exact hint starts with eight
    different characters, so scanning a long text with it costs ~40 % more. Every exact hint
    has an ASCII hint at its position or one before (the AIza/ABIA/ACCA forms), so a search
    window of 16 characters from each ASCII hint finds them all.
    """
    if raw is None:
        for hint in VENDOR_HINT.finditer(text):
            yield hint.start() - _VENDOR_OFFSET[hint.lastgroup or "o0"]
        return
    last = -1
    for candidate in VENDOR_HINT_ASCII.finditer(raw.translate(VENDOR_TABLE)):
        position = candidate.start()
        if position <= last:
            continue
        hint = VENDOR_HINT.search(text, position, position + 16)
        if hint is not None:
            last = hint.start()
            yield last - _VENDOR_OFFSET[hint.lastgroup or "o0"]


# The hint of a slug's inside (_inside_slug): every vendor prefix but a plain "sk-".
VENDOR_HINT_INSIDE = re.compile(VENDOR_HINT.pattern.replace("(?P<o2>)(?<=sk-)", "(?P<o2>)(?<=sk-)(?=ant-)", 1))


def vendor_finder(text: str, raw: bytes | None = None) -> Callable[[int], int]:
    """``find(position)``: the first place at or after ``position`` where a vendor token may
    start, or -1 (``vendor_starts`` resumable: ``splice`` jumps over what a match covered)."""
    if raw is None:

        def find_exact(position: int) -> int:
            at = position
            while True:
                hint = VENDOR_HINT.search(text, at)
                if hint is None:
                    return -1
                start = hint.start() - _VENDOR_OFFSET[hint.lastgroup or "o0"]
                if start >= position:
                    return start
                at = hint.start() + 1

        return find_exact
    translated = raw.translate(VENDOR_TABLE)

    def find(position: int) -> int:
        at = position
        while True:
            candidate = VENDOR_HINT_ASCII.search(translated, at)
            if candidate is None:
                return -1
            hint = VENDOR_HINT.search(text, candidate.start(), candidate.start() + 16)
            if hint is not None:
                start = hint.start() - _VENDOR_OFFSET[hint.lastgroup or "o0"]
                if start >= position:
                    return start
                at = hint.start() + 1
            else:
                at = candidate.start() + 1

    return find


def splice(
    text: str,
    starts: Iterable[int] | Callable[[int], int],
    pattern: re.Pattern[str],
    repl: Callable[[re.Match[str]], str],
    skip_rejected: bool = False,
    dense_scan: bool = False,
) -> str:
    """Replace ``pattern`` matched only at the candidate ``starts`` (ascending), never scanning the text.

    Overlapping candidates are skipped; a match ``repl`` leaves unchanged is not spliced in.
    ``skip_rejected``: the candidates inside a match ``repl`` left unchanged are skipped too (as
    ``re.sub`` does), so ``"sk-" * n`` costs one match, not one per candidate to the run's end.
    ``dense_scan`` (with ``skip_rejected``): past 64 candidates, more than one in 64 characters,
    ``pattern`` scans the rest of the text itself (``finditer``): the same matches, when every
    match starts at a candidate, found in C instead of one Python step per candidate.
    """
    pieces: list[str] = []
    last = 0
    skip = 0
    find = starts if callable(starts) else _finder(starts)
    start = find(0)
    count = 0
    while start >= 0:
        count += 1
        if dense_scan and count > 64 and count * 64 > start:
            for match in pattern.finditer(text, max(start, skip, last)):
                replacement = repl(match)
                if replacement != match.group(0):
                    pieces.append(text[last : match.start()])
                    pieces.append(replacement)
                    last = match.end()
            break
        if start >= skip and start >= last:
            match = pattern.match(text, start)
            if match is not None:
                replacement = repl(match)
                if replacement != match.group(0):
                    pieces.append(text[last:start])
                    pieces.append(replacement)
                    last = match.end()
                elif skip_rejected:
                    skip = match.end()
        start = find(max(start + 1, skip, last))
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _finder(starts: Iterable[int]) -> Callable[[int], int]:
    """``starts`` (ascending) as a ``find(position)`` function for ``splice``."""
    iterator = iter(starts)

    def find(position: int) -> int:
        for start in iterator:
            if start >= position:
                return start
        return -1

    return find


def slug_starts(slug: str) -> list[int]:
    """Where a vendor token other than a plain ``sk-`` one may start inside an ``sk-`` slug."""
    return [
        start
        for hint in VENDOR_HINT_INSIDE.finditer(slug, 3)
        if (start := hint.start() - _VENDOR_OFFSET[hint.lastgroup or "o0"]) >= 3
    ]


# --- digit-shaped PII: phones, SSNs, payment cards, IPv4 ------------------------------------
# Digit-shaped PII. The pattern starts with a character class (fast skip in C); the
# token boundary is a look-behind over the consumed first character.
_END = r"(?![\w@]|[.\-]\d)"
# A token start (the look-behind sees the character before the consumed one), at least
# seven characters of digits and separators (1.2.3.4 is the shortest hit), not a date.
# A digit or "(" may follow a "+" whose own (E.164) match failed: "+4111111111111111" is no
# phone number (16 digits) but a card, "=+10.0.0.7" an address, "+(415) 555-0134" a phone.
_NUMERIC_START = r"[0-9+(%](?<![\w.\-%][0-9+(%])(?<!\+[+%])(?=[\dBb ().\-/]{6})(?!\d{3}-\d\d-\d\d)"
_NUMERIC_BRANCHES = {
    "phone": [
        r"(?<=\+)(?P<e164>[1-9](?:[ .\-]?\(?\d\)?){6,14})",
        r"(?<=%)(?P<e164u>2[Bb][1-9]\d{6,14})",
        r"(?<=\()(?P<nanp_paren>\d{3}\)[ .\-]?\d{3}[ .\-]\d{4})",
    ],
    "ssn": [r"(?<=\d)(?P<ssn>\d{2}(?P<ss>[\- ])\d{2}(?P=ss)\d{4})"],
    "credit_card": [
        # Groups separated by spaces, dashes or dots, mixed or not (Luhn and the brand decide); no
        # card number starts with 0 (so "0044..." is left to the international phone branch).
        r"(?<=[1-9])(?P<card>\d{12,18}|\d{3}[ .\-]\d{4}[ .\-]\d{4}[ .\-]\d{4}(?:[ .\-]\d{3})?"
        r"|\d{3}[ .\-]\d{6}[ .\-]\d{4,5})",
    ],
    "ipv4": [
        r"(?<=\d)(?!(?<=1)27\.|(?<=0)\.0\.0\.0(?!\d))(?P<ipv4>\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3})",
    ],
    "phone_national": [
        r"(?<=\d)(?P<nanp>\d{2}(?P<ps>[.\- ])\d{3}(?P=ps)\d{4}|(?<=1)(?P<ps1>[.\- ])\d{3}(?P=ps1)\d{3}(?P=ps1)\d{4})",
        r"(?<=0)(?!0)(?P<national>\d{1,4}(?P<ns>[ .\-/])\d{2,8}(?:(?P=ns)\d{2,8}){0,3})",
        # "00" and a country code: the international prefix written out (0049 30 1234567). Last:
        # a rejected match hides what it covers, and this one is long (an SSN or a card first).
        r"(?<=0)(?P<intl>0[1-9](?:[ .\-]?\(?\d\)?){6,14})",
    ],
}
_NUMERIC_KIND = {
    "e164": "phone",
    "e164u": "phone",
    "nanp_paren": "phone",
    "intl": "phone",
    "nanp": "phone",
    "national": "phone",
    "ssn": "ssn",
    "card": "credit_card",
    "ipv4": "ipv4",
}

# Digits -> "0", everything else -> "x": counts the digits of a run without a regex.
DIGITS = bytes(48 if 48 <= i <= 57 else 120 for i in range(256))
# Digits -> "0", the separators of numbers (RUN_SEPARATORS) deleted, the rest -> "x": a run holding n
# digits becomes n "0"s in a row, found by a substring search. Every phone, SSN and card
# number has 9+ digits, or 7+ after a "+" / "%2B" (E.164); the only digit-shaped PII with
# fewer is an IPv4 address (IPV4_HINT). Most log lines have neither (dates have 8 digits).
RUN_SEPARATORS = b" ().-/+%"
# Digits -> "0", the separators of numbers (RUN_SEPARATORS) -> "1", the rest -> "x": the runs ("x" ends
# one) and the separators skipped by the translation above (see numeric_windows).
DIGITS_SEPARATORS = bytes(48 if 48 <= i <= 57 else 49 if i in RUN_SEPARATORS else 120 for i in range(256))
# A dot after a digit, two more dotted groups, and not the loopback 127.x: it starts with a
# literal, so `re` skips from dot to dot in C. (Nested lookbehind: "127." not after a digit.)
IPV4_HINT = re.compile(rb"\.(?<=[0-9]\.)(?<!(?<![0-9])127\.)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")


def numeric_pattern(enabled: frozenset[str]) -> re.Pattern[str] | None:
    """The digit-shaped PII pattern for the ``enabled`` detectors (``None`` when none is on)."""
    numeric: list[str] = []
    for group, branches in _NUMERIC_BRANCHES.items():
        if (group if group != "phone_national" else "phone") in enabled:
            numeric.extend(branches)
    return re.compile(_NUMERIC_START + "(?:" + "|".join(numeric) + ")" + _END, re.ASCII) if numeric else None


def numeric_windows(raw: bytes, kinds: bytes, digits: bytes) -> list[tuple[int, int]]:
    """The slices of the text where a numeric detection can be, one per run that may hold one.

    ``raw``: the ASCII text as bytes; ``kinds``: it translated by ``DIGITS_SEPARATORS``
    (digit "0", separator "1", other "x"); ``digits``: by ``DIGITS`` with the separators
    deleted (a run holding n digits is n "0"s in a row). Most runs of digits and
    separators in logs are durations, ports, short ids, dates (`` 767.8 ``, ``40224 - ``,
    ``2026-11-05``): a run is kept only if it can hold what a replacement needs: 9+ digits
    (national and NANP phones, SSNs, cards), 7+ after a ``+`` or ``%2B`` (E.164), or an
    IPv4 hint (``ipv4_windows``). The runs of nine are found by substring search in
    ``digits`` and mapped back to ``raw`` by counting the separators skipped since the
    previous one, so the text is walked once in C, not run by run in Python. A window is
    its run widened by 3 on the left (``%2B`` before an encoded phone number) and 2 on the
    right (the end-of-token look-ahead sees the real next two characters, so
    ``windowed_sub`` need not match a hit again on the whole text). Sorted, merged.
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
            covered = 0  # the end of the run looked at last: the signs inside it share its window
            while position >= 0:
                # the run holding the sign, or the one right after "%2B"
                at = kinds.rfind(b"x", covered, position) + 1 if sign == b"+" else position + 3
                if at < covered:  # "%20%20...": inside the run already looked at (linear, not n^2)
                    position = raw.find(sign, position + 1)
                    continue
                end = kinds.find(b"x", at)
                if end < 0:
                    end = len(kinds)
                if kinds.count(b"0", at, end) >= 7:
                    windows.append((at - 3 if at > 3 else 0, end + 2))
                covered = end
                position = raw.find(sign, end if sign == b"+" else position + 1)
    windows += ipv4_windows(raw, kinds)
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


def ipv4_windows(raw: bytes, runs: bytes) -> list[tuple[int, int]]:
    """The windows of ``numeric_windows`` for the runs holding an ``IPV4_HINT``."""
    windows: list[tuple[int, int]] = []
    for hint in IPV4_HINT.finditer(raw):
        dot = hint.start()
        if windows and dot < windows[-1][1]:
            continue  # another hint in the same run
        start = runs.rfind(b"x", 0, dot) + 1
        end = runs.find(b"x", dot)
        if end < 0:
            end = len(runs)
        windows.append((start - 3 if start > 3 else 0, end + 2))
    return windows


def windowed_sub(pattern: re.Pattern[str], repl, text: str, windows: Iterable[tuple[int, int]]) -> str:
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


def numeric_repl(match: re.Match[str]) -> str:
    """A digit-shaped candidate replaced by its mark once validated (Luhn, SSN ranges, octets, context)."""
    text = match.group(0)
    group = match.lastgroup  # the named alternative (separator groups close before it)
    kind = _NUMERIC_KIND.get(group or "")
    if kind == "ipv4":
        ok = valid_ipv4(text) and not _version_context(match)
    elif kind == "credit_card":
        ok = is_card_number(text.replace(" ", "").replace("-", "").replace(".", "")) and not _id_context(match)
    elif kind == "ssn":
        ok = valid_ssn(text)
    elif kind == "phone":
        if group == "e164" or group == "e164u":
            digits = sum(c.isdigit() for c in text)
            ok = 8 <= digits <= 15 + (group == "e164u")
        elif group == "intl":  # "00", then 8 to 15 digits as after a "+"
            ok = 10 <= sum(c.isdigit() for c in text) <= 17
        elif group == "national":
            ok = 9 <= sum(c.isdigit() for c in text) <= 12
        else:
            ok = True
    else:
        ok = False
    return MARKS[kind] if ok else text  # pyright: ignore[reportArgumentType]


def _id_context(match: re.Match[str]) -> bool:
    """``span_id=4111111111111111``: an all-digit span/trace id, not a card."""
    start = match.start()
    before = match.string[start - 16 if start > 16 else 0 : start].lower()
    before = before[before.rfind("\x00") + 1 :]
    return "span" in before or "trace" in before


def _version_context(match: re.Match[str]) -> bool:
    """``version 1.2.3.4`` is a version, not an address; so is ``Chrome/131.0.0.0`` (``_product_version``)."""
    start = match.start()
    before = match.string[start - 10 if start > 10 else 0 : start]
    if "ersion" in before or "ERSION" in before:
        return "\x00" not in before[before.find("ersion") if "ersion" in before else before.find("ERSION") :]
    if before.endswith("/"):
        return _product_version(match.string, start)
    return before.endswith(("v ", "V ", "ver ", "Ver "))


# User-agent product tokens whose versions are four-part (Chrome's reduced user agent says
# Chrome/131.0.0.0; Edge, Opera, Yandex follow it): such a version right after "<product>/" in
# free text (a log line quoting a user agent) is not an address.
_PRODUCTS = frozenset({
    "Chrome", "Chromium", "HeadlessChrome", "CriOS", "Edg", "EdgA", "EdgiOS", "Edge", "OPR", "OPX", "Opera",
    "YaBrowser", "YaSearchBrowser", "Yowser", "SamsungBrowser", "UCBrowser", "Vivaldi", "Brave", "Whale",
    "QQBrowser", "MiuiBrowser", "Electron", "Version", "Safari", "AppleWebKit", "Firefox", "FxiOS", "Gecko",
    "Mobile", "Silk", "DuckDuckGo",
})
_TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_WORD_START = frozenset(" \t\r\n(;,\"'=[\x00")


def _product_version(text: str, start: int) -> bool:
    """The dotted quad at ``start`` follows ``<Product>/``: a product token (a capital, then letters,
    digits, ``-`` or ``_``; starting a word) that is a browser's (``_PRODUCTS``), or any one in a
    user agent (``Mozilla/`` earlier in the same string). ``ip/203.0.113.9``, ``GET /block/203.0.113.9``
    and ``Host/10.0.0.1`` in a plain log line are still addresses."""
    slash = start - 1
    before = text[slash - 32 if slash > 32 else 0 : slash]
    token = before[len(before.rstrip(_TOKEN_CHARS)) :]
    begin = slash - len(token)
    if not 2 <= len(token) < 32 or not "A" <= token[0] <= "Z" or begin > 0 and text[begin - 1] not in _WORD_START:
        return False
    if token in _PRODUCTS:
        return True
    window = text[begin - 512 if begin > 512 else 0 : begin]
    at = window.rfind("Mozilla/")
    return at >= 0 and "\x00" not in window[at:]


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


def valid_ssn(text: str) -> bool:
    digits = text.replace("-", "").replace(" ", "")
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def valid_ipv4(text: str) -> bool:
    a, b, c, d = text.split(".")
    if a == "127" or text == "0.0.0.0":  # loopback and unspecified are not personal data
        return False
    return int(a) < 256 and int(b) < 256 and int(c) < 256 and int(d) < 256


# --- sensitive name=value pairs in free text ----------------------------------------------------
# Words that are sensitive only as URL query parameters (``?key=``, ``&sig=``).
_QUERY_ONLY_KEYS = ("key", "sig", "code")

# Sensitive names in free text: (words, mode). "free": may follow a letter
# (``userPassword=``); "bounded": must not (``pwd``, ``auth``); "query": only as a
# URL query parameter with ``=``.
PARAM_NAMES = [
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
_SEP = r"[_.\-]?"
# Lower-cases ASCII letters and turns ":" into "=" (in one bytes.translate), so the reversed
# name hint of sensitive_params starts with the literal "=" (see VENDOR_HINT_ASCII for why).
PARAMS_TABLE = bytes(i + 32 if 65 <= i <= 90 else 61 if i == 58 else i for i in range(256))


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


def params_patterns(extra_keys: Sequence[str]) -> tuple[re.Pattern[str], bool, re.Pattern[bytes]]:
    """``(forward, ascii, hint)`` for the sensitive names (built-in and ``extra_keys``).

    ``forward`` redacts (case-insensitive); ``hint``, over the lower-cased, reversed text
    translated by ``PARAMS_TABLE``, finds candidates fast (it starts at the rare ``=``/``:``);
    ``ascii``: whether every name is ASCII (else ``hint`` may miss one: ``forward`` scans).
    """
    names = list(PARAM_NAMES) + [(tuple(key_words(k)) or (k.lower(),), "free") for k in extra_keys]
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
        # A value already redacted is left, decided here, not after matching it to its end:
        # "token=[REDACTED:x" * n (or a long line after "cookie:") would be quadratic.
        + r"(?![\"']?[ \t]*(?:(?:bearer|basic|digest|token)[ \t]+)?\[redacted:)"
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
    # Over text translated by PARAMS_TABLE (":" is "="): a superset of the exact hint, the
    # forward pattern confirms each candidate.
    return (
        re.compile(forward, re.IGNORECASE | re.ASCII | re.MULTILINE),
        all(word.isascii() for words, _ in names for word in words),
        re.compile(reverse.replace("[=:]", "=", 1).encode()),
    )


def hint_names(extra_keys: Sequence[str]) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """The sensitive names for the hint engine (``hints.build``): ``(names, query-only names)``."""
    names = [w for w, mode in PARAM_NAMES if mode != "query"]
    names += [tuple(key_words(k)) or (k.lower(),) for k in extra_keys]
    return tuple(names), tuple(w for w, mode in PARAM_NAMES if mode == "query")


_NAME_TABLE = str.maketrans(".-", "__")  # api.key, api-key -> api_key (the mark's name)


def param_repl(match: re.Match[str]) -> str:
    """The value of a sensitive ``name=value`` pair replaced (placeholders and weak-name numbers kept)."""
    for group in ("bare", "dq", "sq", "edq"):
        start, end = match.span(group)
        if start >= 0:
            break
    else:  # pragma: no cover - one value alternative always matches
        return match.group(0)
    value = match.string[start:end]
    name = match.group("name").lower().translate(_NAME_TABLE)
    stripped = value.strip().lower()
    if stripped in NOT_A_SECRET or stripped.startswith(MARK_PREFIX.lower()):
        return match.group(0)
    if name in _WEAK_PARAMS and NUMBERISH.fullmatch(stripped):
        return match.group(0)
    words = stripped.split()
    if group == "bare" and len(words) > 1 and words[0] in ("bearer", "basic", "digest", "token") and words[1].startswith(MARK_PREFIX.lower()):
        return match.group(0)  # "Bearer [REDACTED:bearer_token]": the token is gone already
    whole = match.group(0)
    offset = match.start()
    return whole[: start - offset] + MARK.format(name) + whole[end - offset :]
