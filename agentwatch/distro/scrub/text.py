"""The text engine: a string through the detector families the configuration switches on.

Each detector family (``detectors.py``) scans a text once, from a cheap hint, and replaces what
it confirms. With the ``hyperscan`` package (installed with agentwatch where its wheels exist)
the hints of all families are one compiled pass instead (``hints.py``): it names, for each
string of a batch (or each line of a long text), the families that may have something to
replace, and only those strings go through only those families. Its patterns accept a superset
of what each family replaces, so the output is the same byte for byte
(``tests/test_scrub_engines.py``); ``AGENTWATCH_SCRUB_ENGINE=re`` or a missing package leaves
the families' own hints. All the strings of a batch are joined with NUL and scanned in one
call (:meth:`TextScrubber._scrub_segments`); when nothing is found they are passed on as they are.

Then a string holding a ``%``, a backslash, a ``+`` or a non-ASCII character is looked at once
more, through its decoded view (``decode.py``: percent-encoding, backslash escapes, Unicode
look-alikes): the families' matches there are mapped back and replaced in the string
(:meth:`TextScrubber._decoded`). Both engines do this the same way, after their own pass.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from functools import reduce
from itertools import accumulate
from operator import or_
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

from agentwatch.distro.guard import failed, strict
from agentwatch.distro.scrub import decode as _decode
from agentwatch.distro.scrub import hints as _hints
from agentwatch.distro.scrub.addresses import IPV6, IPV6_HINT, URL_CREDENTIALS, email_spans, ipv6_repl, ipv6_windows, sub_emails
from agentwatch.distro.scrub.detectors import (
    AWS_PREFIXES,
    DIGITS,
    DIGITS_SEPARATORS,
    IPV4_HINT,
    PARAMS_TABLE,
    RUN_SEPARATORS,
    VENDOR_HINT,
    VENDOR_HINT_ASCII,
    VENDOR_TABLE,
    hint_names,
    ipv4_windows,
    looks_like_key,
    numeric_pattern,
    numeric_repl,
    numeric_windows,
    param_repl,
    params_patterns,
    slug_starts,
    splice,
    vendor_finder,
    vendor_pattern,
    windowed_sub,
)
from agentwatch.distro.scrub.rules import DETECTOR_ALIASES, DETECTORS, MARK, MARK_PREFIX, MARKS

__all__ = ["TextScrubber"]

_PENDING = object()  # the hint engine is not compiled yet
_HINT_BATCH = 512  # joined batches this long go through the hint engine (_scrub_segments)
_LINE_SPLIT = 1024  # texts this long are scrubbed line by line where the hints point (scrub_text)
# Below this many bytes one scan of the numeric pattern costs less than finding windows (_families).
_SHORT = 512
_PLUS_ONE = (1).__add__
_ENGINE = "the scrubber's hint engine (hyperscan)"
_ENGINE_OUTCOME = "scrubbing goes on with Python's re alone (same results, slower)"


class TextScrubber:
    """Redacts PII and secrets from strings (see :class:`agentwatch.distro.scrub.Scrubber`).

    ``disabled``: detector names to switch off; ``extra_patterns``: ``(kind, regex)`` pairs;
    ``extra_keys``: more sensitive names (here: in ``name=value`` pairs); ``engine``:
    ``auto`` (the hint engine when it runs here) or ``re``; ``cache_dir``: where the hint
    engine's compiled database is kept between starts (``hint_store.py``; ``None``: not kept).
    """

    def __init__(
        self,
        disabled: Iterable[str] = (),
        extra_patterns: Iterable[tuple[str, str | re.Pattern[str]]] = (),
        extra_keys: Iterable[str] = (),
        engine: str = "auto",
        cache_dir: str | None = None,
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
        self.engine = engine
        self.cache_dir = cache_dir
        on = self.enabled
        # AGENTWATCH_SCRUB_EXTRA_PATTERNS: (pattern.sub, its replacement), built once, not per string.
        self._extra_subs = [(pattern.sub, _extra_repl(kind)) for kind, pattern in self.extra_patterns]
        self._vendor = vendor_pattern(on)
        self._numeric = numeric_pattern(on)
        self._email = "email" in on
        self._url_credentials = "url_credentials" in on
        self._ipv6 = "ipv6" in on
        # Sensitive names in text: a forward regex that redacts, and a reversed one over the
        # lower-cased, reversed text that finds candidates fast (it starts at the rare = or :).
        self._params = None
        if "sensitive_params" in on:
            self._params, self._params_ascii, self._params_hint = params_patterns(self.extra_keys)
        # The hint pass over a whole batch (hints.py), compiled on first use (~45 ms, not at
        # start-up); None: every family runs its own hint.
        self._hints: Any = _PENDING if self.engine != "re" else None

    def _load_hints(self) -> _hints.HintScanner | None:
        # No lock: two threads may both compile once, harmlessly; a lock held while compiling
        # would be inherited locked by a child forked meanwhile (gunicorn) and hang its exports.
        if self._hints is _PENDING:
            try:
                self._hints = _hints.build(*hint_names(self.extra_keys), self.cache_dir)
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

    @property
    def hint_database(self) -> Path | None:
        """The file the hint engine's compiled database is kept in (``cache_dir``), ``None`` when not kept."""
        return getattr(self._load_hints(), "path", None)

    def _engine_failed(self, error: Exception) -> None:
        """The hint engine failed: said once, and this scrubber goes on with the families' own
        hints (the same output, slower). Re-raised under the test suite (``guard.strict``)."""
        if strict():
            raise error
        self._hints = None
        failed(_ENGINE, error, _ENGINE_OUTCOME)

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
        if self._extra_subs:
            out = self._sub_extras(out)
        # Then what its decoded view shows (_decoded), if it may have one: most text has no
        # "%", backslash or "+" and is ASCII (four C-level checks, ~0.1 µs).
        if "%" in out or "\\" in out or "+" in out or not out.isascii():
            out = self._decoded(out)
        return out

    def _scrub_plain(self, text: str) -> str:
        """``scrub_text`` without the decoded view (done already, or not needed)."""
        out = self._hinted_text(text)
        if out is None:  # no hint engine: every family looks
            out = self._families(text, _hints.ALL)
        return self._sub_extras(out) if self._extra_subs else out

    def _decoded(self, text: str) -> str:
        """``text`` with what its decoded view (``decode.py``) shows replaced; ``text`` itself if nothing.

        Runs after the text as given was scrubbed (what that found is a mark in the view, and
        stays as it was: ``john+2@example.com`` is one address, not ``john+`` and one). The
        detector families run over the view, each on the view as it is, and their matches are
        mapped back to the original text and replaced there.
        """
        decoded = _decode.view(text)
        if decoded is None:
            return text
        # Most views hold nothing either ("q=refund%20my%20order"): one ordinary pass (the hint
        # engine's, where it runs) says so; only a view with something in it has each family's
        # matches recorded (_edits: every family scans, no hint).
        found = self._hinted_text(decoded.text)
        if (found if found is not None else self._families(decoded.text, _hints.ALL)) is decoded.text:
            return text
        edits = self._edits(decoded.text)
        return decoded.apply(edits) if edits else text

    def _edits(self, text: str) -> list[tuple[int, int, str]]:
        """What the families would replace in ``text``: ``(start, end, replacement)``, by start.

        Each family looks at the text as it is; where a family's match overlaps one of a family
        that runs before it in ``_families``, it is dropped unless it reaches further right (then
        both are kept, and ``View.apply`` replaces their union): what ``_families`` would do,
        where the later family sees the earlier one's mark (``password=[REDACTED:...]`` is left).
        """
        edits: list[tuple[int, int, str]] = []
        found: list[tuple[int, int, str]] = []

        def recorded(repl):
            def record(match: re.Match[str]) -> str:
                replacement = repl(match)
                if replacement != match.group(0):
                    found.append((match.start(), match.end(), replacement))
                return replacement

            return record

        def family(inside: bool = False) -> None:
            nonlocal edits
            if found:
                edits = _merge_edits(edits, found, inside)
                found.clear()

        if self._vendor is not None and VENDOR_HINT.search(text) is not None:
            self._sub_vendor(text, None, recorded(self._vendor_repl))
            family()
        if self._url_credentials and "://" in text and "@" in text:
            found += [(m.start(), m.end(), "//[REDACTED:url_credentials]@") for m in URL_CREDENTIALS.finditer(text)]
            family()
        if self._params is not None and ("=" in text or ":" in text):
            self._sub_params(text, repl=recorded(param_repl))
            family(inside=True)  # a value holding a mark is left by _families
        if self._email and "@" in text:
            found += [(start, end, MARKS["email"]) for start, end in email_spans(text)]
            family()
        if self._ipv6 and ":" in text and IPV6_HINT.search(text) is not None:
            windowed_sub(IPV6, recorded(ipv6_repl), text, ipv6_windows(text))
            family()
        if self._numeric is not None and any(c in text for c in "0123456789"):
            self._numeric.sub(recorded(numeric_repl), text)
            family()
        return edits

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
        if hits is None:  # dense in hits: the families' own hints
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
            VENDOR_HINT_ASCII.search(raw.translate(VENDOR_TABLE)) if ascii else VENDOR_HINT.search(text)
        ) is not None:
            out = self._sub_vendor(out, raw if ascii else None)
        if families & _hints.URL and self._url_credentials and "://" in out and "@" in out:
            out = URL_CREDENTIALS.sub("//[REDACTED:url_credentials]@", out)
        if families & _hints.PARAMS and self._params is not None and ("=" in out or ":" in out):
            if out is not text or not ascii:
                out = self._sub_params(out)
            elif self._params_hint.search(raw.translate(PARAMS_TABLE)[::-1]) is not None:
                out = self._sub_params(out, raw)
        # "%40" and "\u0040" both hold "40": one search rules both out on most lines.
        if families & _hints.AT and self._email and ("@" in out or "40" in out and ("%40" in out or "\\u0040" in out)):
            out = sub_emails(out)
        if families & _hints.IPV6 and self._ipv6 and ":" in out and IPV6_HINT.search(out) is not None:
            out = windowed_sub(IPV6, ipv6_repl, out, ipv6_windows(out))
        # (The numeric hint wants a token start before the digits; a replacement just before
        # them may make one, so a changed text is always looked at: the families' own hints.)
        if (families & _hints.NUMERIC or out is not text) and self._numeric is not None:
            if out is not text:
                raw = out.encode("utf-8", "surrogatepass")
            # Most log lines hold no run of 9 digits (7 after a "+") and no IPv4 address: a few
            # C-level checks rule them out before any run is looked at (see numeric_windows).
            digits = raw.translate(DIGITS, RUN_SEPARATORS)
            long_run = b"000000000" in digits or (b"+" in raw or b"%2" in raw) and b"0000000" in digits
            if long_run or IPV4_HINT.search(raw) is not None:
                if len(raw) != len(out) or len(raw) < _SHORT:
                    # Not ASCII (byte offsets are not str offsets), or short enough that one
                    # scan costs less than finding the windows: scan the whole text.
                    out = self._numeric.sub(numeric_repl, out)
                else:
                    kinds = raw.translate(DIGITS_SEPARATORS)
                    if long_run:
                        windows = numeric_windows(raw, kinds, digits)
                    else:  # only an IPv4 address is possible: just the runs holding a hint
                        windows = ipv4_windows(raw, kinds)
                    if len(windows) * 160 > len(raw) > 4096:
                        # Long and dense in candidates: one scan costs less than a search per window.
                        out = self._numeric.sub(numeric_repl, out)
                    elif windows:
                        out = windowed_sub(self._numeric, numeric_repl, out, windows)
        return out

    def _scrub_segments(self, segments: list[str], repeats: bool = False) -> list[str] | None:
        """``segments`` scrubbed one by one, as a new list; ``None`` when none changed.

        All are checked in one pass over the text joined with NUL: the hint engine's, which
        says which strings each family must look at, or (without it) the families' own.
        ``repeats``: the strings may repeat (a span batch: a client's address and the route on
        each of its spans): each distinct one is scrubbed once, and its result put back wherever
        it was. (Not for log bodies: mostly all different, and hashing them costs ~4 %.)
        """
        if repeats and len(segments) > 8:
            unique = dict.fromkeys(segments)  # in C: the strings' hashes are cached
            # (Only when it saves a quarter: a log batch's bodies are mostly all different.)
            if len(unique) * 4 <= len(segments) * 3:
                texts = list(unique)
                parts = self._scrub_distinct(texts)
                if parts is None:
                    return None
                new = {text: part for text, part in zip(texts, parts) if part != text}
                return list(map(new.get, segments, segments)) if new else None
        return self._scrub_distinct(segments)

    def _scrub_distinct(self, segments: list[str]) -> list[str] | None:
        """``_scrub_segments`` after the strings were made distinct (or left as they are)."""
        joined = "\x00".join(segments)
        parts = self._scrub_joined(segments, joined)
        if joined.isascii() and "%" not in joined and "\\" not in joined and "+" not in joined:
            return parts
        # Then what the decoded view shows, for the strings holding a "%", "\\", "+" or a
        # non-ASCII character (found in the joined text: one search per such string).
        scrubbed = segments if parts is None else parts
        out = None
        if parts is not None:
            joined = "\x00".join(scrubbed)
        wanted = _holding(joined, scrubbed)
        if not joined.isascii():
            wanted.update(index for index, segment in enumerate(scrubbed) if not segment.isascii())
        for index in sorted(wanted):
            new = self._decoded(scrubbed[index])
            if new is not scrubbed[index]:
                if out is None:
                    out = list(scrubbed)
                out[index] = new
        return parts if out is None else out

    def _scrub_joined(self, segments: list[str], joined: str) -> list[str] | None:
        """``_scrub_segments`` after the decoded views (``joined``: the segments joined with NUL)."""
        hints = self._hints if self._hints is not _PENDING else self._load_hints()
        # Below _HINT_BATCH characters (one span, a few records) the engine's fixed cost and the
        # book-keeping per string outweigh what it saves: the families' own hints are cheaper.
        if hints is not None and len(joined) >= _HINT_BATCH and joined.count("\x00") == len(segments) - 1:
            try:
                hits = hints.scan(joined.encode("ascii", "replace"))
            except Exception as error:  # noqa: BLE001 - the engine failed: the families' own hints
                self._engine_failed(error)
            else:
                if hits is not None:  # (None: dense in hits, the families' own hints below)
                    parts = self._hinted(segments, hits)
                    if self._extra_subs:
                        parts = self._extras(segments if parts is None else parts, parts is not None)
                    return parts
        scrubbed = self._scrub_plain(joined)
        if scrubbed is joined:
            return None
        if joined.count("\x00") == len(segments) - 1 and scrubbed.count("\x00") == len(segments) - 1:
            return scrubbed.split("\x00")
        # NUL inside a value, or a match across two values: one by one
        return [self._scrub_plain(segment) for segment in segments]

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

    def _sub_vendor(self, text: str, raw: bytes | None = None, repl=None) -> str:
        """Vendor tokens, matched only where the hint says one starts (no scan of the whole text).

        ``raw``: the text's bytes when it is ASCII (offsets agree), for the faster hint.
        A rejected candidate (a slug such as sk-learn-...) is skipped with all the candidates
        inside it, as ``re.sub`` does: "sk-" * n is one match, not n scans to the end of the
        run; what a slug may hide is looked for once, in _inside_slug. Where the candidates
        are dense, the pattern itself scans the rest (``splice``'s ``dense_scan``).
        """
        repl = repl or self._vendor_repl
        return splice(text, vendor_finder(text, raw), self._vendor, repl, skip_rejected=True, dense_scan=True)  # pyright: ignore[reportArgumentType] - compiled in _build

    def _inside_slug(self, slug: str) -> str:
        """An ``sk-`` match that is not a key: the other vendor tokens inside it (``sk-x-xoxb-...``)
        replaced. Its own ``sk-`` candidates are not tried again: a part of a slug is a slug."""
        starts = slug_starts(slug)
        return splice(slug, starts, self._vendor, self._vendor_repl, skip_rejected=True) if starts else slug  # pyright: ignore[reportArgumentType] - compiled in _build

    def _vendor_repl(self, match: re.Match[str]) -> str:
        text = match.group(0)
        on = self.enabled
        if text.startswith("-----BEGIN"):
            kind = "private_key"
        elif text.startswith("sk-ant-"):
            kind = "anthropic_api_key"
        elif text.startswith("sk-"):
            if not looks_like_key(text[3:]):
                return self._inside_slug(text)  # a slug such as sk-learn-tutorial, not a key
            kind = "openai_api_key"
        elif text.startswith(("sk_", "rk_", "whsec_")):
            kind = "stripe_key"
        elif text.startswith("AIza"):
            kind = "google_api_key"
        elif text[:4] in AWS_PREFIXES:
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
            if value.isalpha() and value.islower() or value.startswith(MARK_PREFIX):
                return text  # "Bearer authentication": an English word, not a token
            return f"{scheme} [REDACTED:bearer_token]"
        return MARK.format(kind) if kind in on else text

    def _sub_params(self, text: str, raw: bytes | None = None, repl=param_repl) -> str:
        """Redact the values of sensitive ``name=value`` pairs (``raw``: the UTF-8 bytes, if known).

        The reversed hint finds each candidate from its ``=``/``:`` and tells where the
        name starts, so the (case-insensitive, slow to scan) forward pattern is only
        *matched* there, never scanned over the whole text.
        """
        if raw is None:
            if not self._params_ascii and not text.isascii():  # a name the hint cannot see
                return self._params.sub(repl, text)  # pyright: ignore[reportOptionalMemberAccess] - compiled in _build
            # One byte per character (non-ASCII ones become "?"), so byte offsets are character
            # offsets. (A regex sub would stop at a pair left as is and hide the pairs after it.)
            raw = text.encode("ascii", "replace")
        reverse = raw.translate(PARAMS_TABLE)[::-1]
        if self._params_hint.search(reverse) is None:
            return text
        n = len(raw)
        starts = sorted(n - hint.end() for hint in self._params_hint.finditer(reverse))
        if len(starts) > 16 and len(starts) * 64 > n:
            # Many and dense candidates: one regex scan, not a Python step per candidate (a few
            # are matched where they are: scanning a short line costs more than that). The same
            # result: a value left as is (a placeholder, a count) holds no "=" or ":", so no
            # pair starts inside it, and one already redacted fails the match at once.
            return self._params.sub(repl, text)  # pyright: ignore[reportOptionalMemberAccess] - compiled in _build
        # A pair left as is (a count, already redacted) does not hide later pairs.
        return splice(text, starts, self._params, repl)  # pyright: ignore[reportArgumentType] - compiled in _build


def _holding(joined: str, segments: list[str]) -> set[int]:
    """The indices of the ``segments`` (``joined``: them joined with NUL) holding a ``%``, a
    backslash or a ``+``: one search per such segment, its index counted in C (the NULs since the
    last one), so a batch with none or one costs a few scans of the joined text."""
    wanted: set[int] = set()
    firsts = [position for position in map(joined.find, "%\\+") if position >= 0]
    if not firsts:  # (what was there may be gone: "+1 415 555 0134" is a mark now)
        return wanted
    if joined.count("\x00") != len(segments) - 1:  # a NUL inside a segment: by their lengths
        bounds = list(accumulate(map(_PLUS_ONE, map(len, segments))))
        for char in "%\\+":
            position = joined.find(char)
            while 0 <= position:
                index = bisect.bisect_right(bounds, position)
                wanted.add(index)
                position = joined.find(char, bounds[index]) if index + 1 < len(bounds) else -1
        return wanted
    for char in "%\\+":
        position = joined.find(char)
        index = counted = 0
        while 0 <= position:
            index += joined.count("\x00", counted, position)
            wanted.add(index)
            counted = joined.find("\x00", position)  # the end of this segment: the next one's search starts there
            position = joined.find(char, counted) if counted >= 0 else -1
    return wanted


def _merge_edits(
    earlier: list[tuple[int, int, str]], later: list[tuple[int, int, str]], inside: bool = False
) -> list[tuple[int, int, str]]:
    """``earlier`` and the edits of ``later`` that do not end inside one of them (``inside``: that
    overlap none of them); both sorted, each without overlaps of its own: one walk over both."""
    if not earlier:
        return list(later)
    out: list[tuple[int, int, str]] = []
    index = 0
    for edit in later:
        start, end, _ = edit
        while index < len(earlier) and earlier[index][1] <= start:
            out.append(earlier[index])
            index += 1
        # The earlier edits this one overlaps start at index; it is dropped if it ends inside one.
        overlap = index
        dropped = False
        while overlap < len(earlier) and earlier[overlap][0] < end:
            if inside or end <= earlier[overlap][1]:
                dropped = True
                break
            overlap += 1
        if not dropped:
            out.append(edit)
    out += earlier[index:]
    out.sort()
    return out


def _extra_repl(kind: str):
    """The replacement of an ``AGENTWATCH_SCRUB_EXTRA_PATTERNS`` match (of its first group, if any)."""
    mark = MARK.format(kind)

    def repl(match: re.Match[str]) -> str:
        if match.re.groups and match.start(1) >= 0:
            whole, offset = match.group(0), match.start()
            return whole[: match.start(1) - offset] + mark + whole[match.end(1) - offset :]
        return mark

    return repl
