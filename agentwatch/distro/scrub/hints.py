"""Where the scrubber must look: one pass of a compiled multi-pattern engine over a batch.

The scrubber's detector families (see ``detectors.py``) each find their candidates from a
cheap hint with Python's ``re``. Every hint costs a pass over the text, and ``re`` stops at
every ``-``, ``_``, digit or ``:`` of a log line, so on realistic logs the hints, not the
replacements, are most of the cost. Here all the hints are compiled into one Hyperscan
database (the ``hyperscan`` package: Vectorscan, statically linked, wheels for Linux x86_64
and aarch64, macOS and Windows) and scanned together at several hundred MB/s; the result is,
for each string of a batch, the set of families that *may* have something to replace.
The scrubber then runs its ordinary code for those families on those strings only.

Each pattern here accepts a superset of what its family can replace (look-behinds
dropped, bounds kept loose), so a string with no hit for a family cannot be changed by
it: skipping it changes no output. One hint looks at what stands before its candidate (a
number must start a token), and a replacement by an earlier family can change that, so the
scrubber always runs the numeric family on a string another family changed.
``tests/test_scrub_engines.py`` checks the two paths give byte-identical results. Without the package (another platform, or
``AGENTWATCH_SCRUB_ENGINE=re``) the scrubber runs every family's own hint, as before.

The scan runs on the text encoded with ``ascii``/``replace``: one byte per character
(every non-ASCII character becomes ``?``), so byte offsets are character offsets; every
hint is ASCII, and a ``?`` can only add hits, never remove one.

Compile cost: the database is compiled on the first scrub, which at start-up is the console
formatter's first log line, so its compile time is start-up time (unless a copy compiled by an
earlier start is found in ``AGENTWATCH_CACHE_DIR``: ``hint_store.py``). Hyperscan's compile grows
steeply with some bounded repeats: a wide class repeated more than 16 times right after a prefix
of three characters or less (``sk-[...]{20}``: ~25 % of the whole compile), and a bounded run after
the long alternation of sensitive names (``[ \\t]{0,8}``: another ~25 %). A hint only has to be a
superset, so those are kept short (``{16}``) or starred: callgrind counts 303 M instructions for the
compile instead of 556 M. ``tests/test_scrub_hint_structure.py`` keeps the rule.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Sequence

from agentwatch.distro.scrub.hint_store import load_or_compile, path_for

__all__ = ["VENDOR", "URL", "PARAMS", "AT", "IPV6", "NUMERIC", "ALL", "HintScanner", "build"]

# One bit per detector family, in the order TextScrubber._families runs them.
VENDOR = 1  # vendor API keys, JWTs, Bearer values, PEM private keys
URL = 2  # credentials in URLs (needs AT in the same string too)
PARAMS = 4  # sensitive name=value pairs in free text
AT = 8  # e-mail addresses ("@", "%40", "\u0040")
IPV6 = 16
NUMERIC = 32  # phones, SSNs, cards, IPv4
ALL = VENDOR | URL | PARAMS | AT | IPV6 | NUMERIC
_ID_BITS = 6

_SEPARATORS = r"[ ().\-/+%]"  # what may stand between the digits of a phone/card/SSN (detectors.RUN_SEPARATORS)
_NOT_RUN = r"(?:[^0-9 ().\-/+%]|$)"
_TOKEN_START = r"(?:^|[^A-Za-z0-9_.\-%])"  # detectors._NUMERIC_START's look-behind

# (pattern, family). Each is a superset of the family's replacements: see the module docstring.
_FIXED: list[tuple[str, int]] = [
    # Vendor tokens (detectors.VENDOR_BRANCHES without their look-behinds, the shortest body).
    (r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY-----", VENDOR),
    # (20+ characters after "sk-" in the detector; 16 here: still a superset, see "Compile cost" above.)
    (r"sk-[A-Za-z0-9_\-]{16}", VENDOR),
    (r"[sr]k_(?:live|test)_[A-Za-z0-9]{16}", VENDOR),
    (r"whsec_[A-Za-z0-9]{20}", VENDOR),
    (r"AIza[0-9A-Za-z_\-]{35}", VENDOR),
    (r"A(?:KIA|SIA|BIA|CCA)[0-9A-Z]{16}", VENDOR),
    (r"gh[pousr]_[A-Za-z0-9]{36}", VENDOR),
    (r"github_pat_[A-Za-z0-9_]{22}", VENDOR),
    (r"xox[abposr]-[A-Za-z0-9\-]{10}", VENDOR),
    (r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8}", VENDOR),
    (r"(?:Bearer|bearer|BEARER)[ \t]+[A-Za-z0-9._~+/=\-]{8}", VENDOR),
    # URL credentials: "://" here, and an AT hit in the same string.
    (r"://", URL),
    (r"@|%40|\\u0040", AT),
    (r":(?::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:)", IPV6),  # addresses.IPV6_HINT
    # Numeric (detectors._NUMERIC_BRANCHES): every match starts a token (not after a letter, digit,
    # "_", ".", "-" or "%"), holds 9+ digits (separators between them allowed: SSN, card, NANP,
    # national numbers) reported once, at the end of the run; or is E.164 after "+" or "%2B" (7+
    # digits); or an IPv4 address whose first octet is not 127 (loopback is kept).
    (_TOKEN_START + r"\(?[0-9](?:" + _SEPARATORS + r"*[0-9]){8,}" + _SEPARATORS + r"*" + _NOT_RUN, NUMERIC),
    (r"\+[1-9](?:[ .\-]?\(?[0-9]\)?){6}|%2[Bb][1-9][0-9]{6}", NUMERIC),
    (_TOKEN_START + r"(?:[0-9]{1,2}|[02-9][0-9]{2}|1[013-9][0-9]|12[0-68-9])\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]", NUMERIC),
]


def _params_pattern(names: Iterable[Sequence[str]], query: Iterable[Sequence[str]]) -> str:
    """Sensitive names followed by their separator (``detectors.params_patterns``' forward pattern, no look-behinds)."""

    def alternation(words_list: Iterable[Sequence[str]]) -> str:
        return "|".join(r"[_.\-]?".join(re.escape(word) for word in words) for words in words_list)

    # The forward pattern allows ``\\?["']?[ \t]{0,8}`` between the name and its separator; one
    # starred class holds all of those (a superset), and compiles at a quarter of the cost.
    return (
        r"(?:" + alternation(names) + r")[\\\"' \t]*[=:]"
        + r"|(?:^|[?&;\x00\n])(?:" + alternation(query) + r")="
    )


class HintScanner:
    """A compiled hint database; :meth:`scan` is safe to call from several threads.

    ``cache_dir``: where compiled databases are kept between starts (``hint_store.py``);
    ``None``: compiled here, every time. ``path``: this database's file there (``None``: not kept)."""

    def __init__(self, hyperscan, patterns: list[tuple[str, int]], cache_dir: str | None = None) -> None:
        self._hs = hyperscan
        # Case-insensitive for the sensitive names only (as the forward pattern of detectors.params_patterns).
        compiled = [(pattern.encode(), family, hyperscan.HS_FLAG_CASELESS if family == PARAMS else 0)
                    for pattern, family in patterns]

        def compile_database():
            database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            database.compile(
                expressions=[expression for expression, _, _ in compiled],
                ids=[family for _, family, _ in compiled],
                elements=len(compiled),
                flags=[flags for _, _, flags in compiled],
            )
            return database

        mode = hyperscan.HS_MODE_BLOCK
        self.path = path_for(cache_dir, hyperscan, mode, compiled) if cache_dir else None
        self._database = load_or_compile(hyperscan, mode, self.path, compile_database)
        # The engine releases the GIL while it scans: one scratch space per thread.
        self._local = threading.local()

    def scan(self, raw: bytes) -> list[int] | None:
        """The hits in ``raw``: ``end_offset << 6 | family`` for each (family, end offset).

        ``None`` when ``raw`` is dense in hits (past the first 64, more than one in 32 bytes of
        what was scanned, plus 2 KiB): each hit costs a Python call, and where they are that
        dense the families' own hints (which skip a rejected candidate's inside in C) cost less.
        The scan stops there, so ``"@" * n`` costs about 130 calls, not n.
        """
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._hs.Scratch(self._database)
        hits: list[int] = []
        try:
            self._database.scan(raw, match_event_handler=_collect, context=hits, scratch=scratch)
        except self._hs.ScanTerminated:
            return None
        return hits


def _collect(family: int, start: int, end: int, flags: int, hits: list[int]) -> bool:
    hits.append(end << _ID_BITS | family)
    # Dense (stop: ScanTerminated): more than 64 hits, and more than one in 32 bytes of what was
    # scanned so far plus 2 KiB (a cluster at the start of a long clean text is not enough).
    # (Not a limit computed per scan: a tuple to carry it costs a tenth of a clean line's scan.)
    return len(hits) > 64 and len(hits) << 5 > end + 2048


@functools.lru_cache(maxsize=8)
def build(
    names: tuple[tuple[str, ...], ...], query: tuple[tuple[str, ...], ...], cache_dir: str | None = None,
) -> HintScanner:
    """The hint database for these sensitive names (built-in and ``AGENTWATCH_SCRUB_EXTRA_KEYS``),
    loaded from ``cache_dir`` when compiled there before (``hint_store.py``).

    Raises ``ImportError`` without the ``hyperscan`` package, ``ValueError`` for a name that is
    not ASCII (the scan sees ``?`` there), and the engine's error if it cannot run here. One
    database per set of names: scrubbers with the same configuration share it.
    """
    import hyperscan

    if not all(word.isascii() for words in names + query for word in words):
        raise ValueError("a sensitive name is not ASCII")
    return HintScanner(hyperscan, _FIXED + [(_params_pattern(names, query), PARAMS)], cache_dir)
