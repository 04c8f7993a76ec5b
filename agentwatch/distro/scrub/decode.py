"""The decoded view of a text: what the detectors see when the text is encoded, escaped or not ASCII.

Services carry text encoded: query strings (``?q=my+card+4111111111111111``, ``%20``), JSON and
``repr`` strings (``"line\\n4111 1111 1111 1111"``, ``\\u0034111...``), and text written with
look-alike characters (full-width digits, non-breaking and narrow spaces, zero-width characters
inside a value). Every detector wants a token boundary before a number or a key, and an escape
such as ``\\n`` or ``%20`` ends in a letter or a digit: the value after it was never seen.

The choice made here: **scrub a decoded view and map the matches back** (not: treat escapes as
value boundaries). Boundaries alone cannot find ``%34%31%31%31...`` or a card whose groups are
separated by ``%20`` or ``+``, nor a full-width or zero-width-split number; a view can, and it is
correct for all of them at once. After the text as given has been scrubbed (so what that found
stays as it was), :func:`view` returns its decoded text and how to map offsets back: decodings
that keep the length (``+`` as a space, ``\\n`` as a newline and a space, a full-width digit as
a digit) need nothing; the others are *units* (one run of escapes, one removed or expanded
character), the latter found only when a match has to be mapped. The scrubber runs its
detectors over the view, maps each match's start and end back through the units (a boundary
inside a unit widens to the whole unit, so an escape is never cut in two) and replaces that
span of the original text. The view only ever adds replacements.

What is decoded (in the view only; the original text is kept as it is outside a replacement):

- ``%XX`` (a run of them as UTF-8 where it is valid; single bytes otherwise), and the simple
  backslash escapes below once more after it (JSON in a query string: ``%5Cn``);
- ``+`` as a space where it stands between two parts of a query value before digits
  (``my+card+4111...``, ``4111+1111+...``): after a non-space, followed by six digits or
  separators, by a last group of up to five digits (not ``+00:00``, a time zone) or by a
  phone number's own ``+``. A ``+`` at the start of a value (after a space, a decoded newline
  as in ``%0A+44...``, ``=``, ``&``, ``?``, ``:`` or ``(``) is a phone's and stays, and so does an encoded one (``%2B``, ``\\u002b``);
- backslash escapes ``\\n \\t \\r \\f \\v \\b \\0 \\/ \\\\``, ``\\xXX``, ``\\uXXXX``,
  ``\\UXXXXXXXX`` (``\\"`` and ``\\'`` are left: a quote is a boundary already), up to three
  levels deep (JSON in JSON: ``\\\\u0034``); an escaped backslash before a letter
  (``\\\\n``) is decoded as an escape too: decoding one level too many can only show a value,
  never hide one;
- Unicode look-alikes (NFKC-style, for detection only): decimal digits of every script
  (full-width ``４``, Arabic-Indic, mathematical) as ASCII digits, every space separator (NBSP,
  narrow NBSP, figure and thin spaces, ideographic space) as a space, dashes (hyphen, en dash,
  minus sign) as ``-``, zero-width and other invisible format characters (ZWSP, ZWJ, word joiner,
  BOM, soft hyphen, bidi marks, tag characters) removed, and compatibility forms that NFKC
  turns into ASCII (full-width letters and ``＠``, small form variants, ligatures) as that ASCII.

Cost: the scrubber calls :func:`view` only when four C-level checks (``str.isascii`` and three
substring searches) see a ``%``, a backslash, a ``+`` or a non-ASCII character, and most such
texts decode to themselves (``50%``, ``+00:00``, accented words): a translate, a few substring
replacements and regex scans, no Python step per character. A run of escapes costs one Python
call. The look-alike table (about 1,700 characters) is built on first use, once (~16 ms).
"""

from __future__ import annotations

import bisect
import codecs
import functools
import re
import unicodedata

__all__ = ["View", "view"]

# Backslash escapes that become a control character and a space: the same length, so the
# view needs no offset mapping for them (a space is a boundary as the escape's letter was not).
_SIMPLE = {"\\n": "\n ", "\\t": "\t ", "\\r": "\r ", "\\f": "  ", "\\v": "  ", "\\b": "  ", "\\0": "  "}
# "+" as a space in a query value, before a number (a "+" after a space is a phone's).
# Before six digits or separators, or a last short group ("4111+1111+1111+1111"); not a
# time zone ("+00:00": the view of every timestamped line would cost a detection pass).
# A "+" before "+<digit>" is a space before a phone number's own "+" ("card++44+20...").
_PLUS = re.compile(r"\+(?:(?<=[^\s(+=&?:]\+)(?=[0-9](?:[0-9 .\-+]{5}|[0-9]{0,4}(?![0-9:])))|(?=\+[0-9]))")
# What a decoded "%2B" or "\u002b" stands for until the "+" rule has run: a real "+", kept.
_DECODED_PLUS = "\ue000"
# The escapes that change the length, as runs (one unit each where the run decodes evenly).
_ESCAPES = re.compile(
    # Each branch starts with a literal (the group names come after it): then ``re`` skips from
    # one "%" or backslash to the next in C; a branch led by a group is tried at every position
    # (~400 ns a character).
    r"%(?P<pct>[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*)"
    r"|\\(?:u(?P<u>[0-9A-Fa-f]{4}(?:\\u[0-9A-Fa-f]{4})*)|x(?P<x>[0-9A-Fa-f]{2}(?:\\x[0-9A-Fa-f]{2})*)"
    r"|U(?P<U>[0-9A-Fa-f]{8})|(?P<slash>/(?:\\/)*)|(?P<bs>\\(?:\\\\)*))"
)
# Invisible format characters (Unicode category Cf) that can split a value without showing.
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000e0000-\U000e007f"
)
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
# Blocks where NFKC turns characters into ASCII (full-width forms, small forms, ligatures,
# super/subscripts, enclosed and mathematical alphanumerics, number forms).
_NFKC_BLOCKS = (
    (0x00A0, 0x0100),
    (0x2070, 0x20A0),
    (0x2100, 0x2190),
    (0x2460, 0x2500),
    (0xFB00, 0xFB07),
    (0xFE50, 0xFE70),
    (0xFF00, 0xFF5F),
    (0x1D400, 0x1D800),
    (0x1F100, 0x1F150),
)


class _Tables:
    """The look-alike tables, built on first use: ``same`` maps a character to one ASCII
    character (for ``str.translate``: the view keeps its offsets), ``other`` to none or several
    (``changing`` finds those), ``all`` is both; ``same_chars`` and ``other_chars``: their keys."""

    def __init__(self) -> None:
        table: dict[str, str] = {}
        chars = "".join(map(chr, range(0x80, 0x10000))) + "".join(map(chr, range(0x1D7CE, 0x1D800)))
        chars += "".join(map(chr, range(0x1FBF0, 0x1FBFA)))
        for char in re.findall(r"\d", chars):  # decimal digits of every script (Unicode \d is Nd)
            table[char] = str(unicodedata.decimal(char))
        for char in re.findall(r"\s", chars):  # space separators, line and paragraph separators
            table[char] = " "
        for char in re.findall("[" + _INVISIBLE + "]", chars + "".join(map(chr, range(0xE0000, 0xE0080)))):
            table[char] = ""
        for char in _DASHES:
            table[char] = "-"
        for low, high in _NFKC_BLOCKS:
            for code in range(low, high):
                char = chr(code)
                if char not in table:
                    normal = unicodedata.normalize("NFKC", char)
                    if normal != char and normal.isascii() and normal.isprintable() and normal.strip():
                        table[char] = normal
        self.all = table
        self.same = {ord(c): v for c, v in table.items() if len(v) == 1}
        self.other = {ord(c): v for c, v in table.items() if len(v) != 1}
        self.changing = re.compile("[" + "".join(_ranges(sorted(chr(c) for c in self.other))) + "]")
        # Whether a text holds any (a set test in C: a class of 1,700 characters costs ~3 us a search,
        # and str.translate with a dict looks every character up, ~100 ns each).
        self.same_chars = frozenset(chr(c) for c in self.same)
        self.other_chars = frozenset(chr(c) for c in self.other)


def _ranges(chars: list[str]) -> list[str]:
    """A character class body for ``chars`` (sorted), as ranges."""
    out: list[str] = []
    index = 0
    while index < len(chars):
        low = high = ord(chars[index])
        while index + 1 < len(chars) and ord(chars[index + 1]) == high + 1:
            index += 1
            high += 1
        out.append(re.escape(chr(low)) if low == high else re.escape(chr(low)) + "-" + re.escape(chr(high)))
        index += 1
    return out


@functools.lru_cache(maxsize=1)
def _load() -> _Tables:
    """The tables, built once (two threads may both build them at first, harmlessly)."""
    return _Tables()


# A unit: (view start, view end, original start, original end, ratio). ``ratio``: original
# characters per view character when the unit decodes evenly (a run of %XX: 3), else 0.
_Unit = tuple[int, int, int, int, int]


def _map_start(units: list[_Unit], starts: list[int], position: int) -> int:
    index = bisect.bisect_right(starts, position) - 1
    if index < 0:
        return position
    view_start, view_end, orig_start, orig_end, ratio = units[index]
    if position < view_end:
        return orig_start + ratio * (position - view_start)
    return orig_end + position - view_end


def _map_end(units: list[_Unit], starts: list[int], position: int) -> int:
    index = bisect.bisect_left(starts, position) - 1
    if index < 0:
        return position
    view_start, view_end, orig_start, orig_end, ratio = units[index]
    if position <= view_end:
        return orig_start + ratio * (position - view_start) if ratio else orig_end
    return orig_end + position - view_end


class View:
    """The decoded view of ``original``: ``text``, and how to map its offsets back.

    Layers of units: one per level of escapes that change the length (found while decoding),
    and last the look-alike characters removed or expanded (found only if a match is mapped).
    """

    __slots__ = ("original", "text", "_levels", "_layers", "_middle", "_changed")

    def __init__(self, original: str, middle: str, text: str, levels: list[str]) -> None:
        self.original = original
        self.text = text
        self._middle = middle  # after the escapes, before the removed and expanded characters
        self._levels = levels  # the text before each level of escapes was decoded
        self._layers: list[tuple[list[_Unit], list[int]]] | None = None
        self._changed: tuple[list[_Unit], list[int]] | None = None if middle is not text else ([], [])

    def _load_layers(self) -> list[tuple[list[_Unit], list[int]]]:
        """Each level's units (decoded again, now recording them: the same text comes out)."""
        if self._layers is None:
            layers = []
            for level in self._levels:
                units: list[_Unit] = []
                _ESCAPES.sub(functools.partial(_decode_run, units, [0]), level)
                layers.append((units, [unit[0] for unit in units]))
            self._layers = layers
        return self._layers

    def _load_changed(self) -> tuple[list[_Unit], list[int]]:
        if self._changed is None:
            tables = _load()
            units: list[_Unit] = []
            shift = 0
            for match in tables.changing.finditer(self._middle):
                start = match.start()
                decoded = tables.other[ord(match.group(0))]
                units.append((start + shift, start + shift + len(decoded), start, start + 1, 0))
                shift += len(decoded) - 1
            self._changed = (units, [unit[0] for unit in units])
        return self._changed

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original ``(start, end)`` of the view's ``[start, end)``, widened to whole units."""
        for units, starts in [self._load_changed(), *reversed(self._load_layers())]:
            if units:
                start, end = _map_start(units, starts, start), _map_end(units, starts, end)
        return start, end

    def apply(self, edits: list[tuple[int, int, str]]) -> str:
        """The original with each ``(start, end, replacement)`` of the view replaced, mapped back."""
        pieces: list[str] = []
        last = 0
        for start, end, replacement in sorted(edits):
            low, high = self.span(start, end)
            if low < last:  # overlaps the previous replacement: widen it, both marks kept
                if high > last:
                    pieces[-1] += replacement
                    last = high
                continue
            pieces.append(self.original[last:low])
            pieces.append(replacement)
            last = high
        if not pieces:
            return self.original
        pieces.append(self.original[last:])
        return "".join(pieces)


def view(text: str) -> View | None:
    """The decoded view of ``text``, or ``None`` when decoding changes nothing."""
    out = text
    ascii = text.isascii()
    tables = _load() if not ascii else None
    other = False  # characters to remove or expand (the decoded escapes are mapped already)
    if tables is not None:
        chars = set(text)
        if not chars.isdisjoint(tables.same_chars):
            out = out.translate(tables.same)  # same length: no offsets to keep
        other = not chars.isdisjoint(tables.other_chars)
    if "\\" in out:
        for escape, decoded in _SIMPLE.items():  # same length too
            if escape in out:
                out = out.replace(escape, decoded)
    levels: list[str] = []
    middle = out
    # Up to three levels of escapes: a URL in a query value ("%2520"), JSON in a query string
    # ("%5Cn", decoded by the simple escapes again). Each level's units are found again only
    # if a match has to be mapped (View._load_layers): most views hold nothing.
    while len(levels) < 3 and ("%" in middle or "\\" in middle):
        decoded_text = _ESCAPES.sub(_decode_text, middle)
        if decoded_text == middle:
            break
        levels.append(middle)
        if "\\" in decoded_text:
            for escape, decoded in _SIMPLE.items():
                if escape in decoded_text:
                    decoded_text = decoded_text.replace(escape, decoded)
        middle = decoded_text
    final = middle
    if other:
        final = middle.translate(tables.other)  # pyright: ignore[reportOptionalMemberAccess] - loaded when other
    # "+" as a space last (what stands before and after it counts: "%0A+44" is a phone, and so
    # is "+\u200b44"), but not a "+" that was written encoded: that one is a real plus. Both
    # keep the length, so the units above still map the view back.
    if "+" in final:
        final = _PLUS.sub(" ", final)
    if _DECODED_PLUS in final:
        final = final.replace(_DECODED_PLUS, "+")
    if final == text:
        return None
    return View(text, middle, final, levels)


def _decode_text(match: re.Match[str]) -> str:
    """``_decode_run`` without its units (what the view needs until a match must be mapped)."""
    return _ONE_ESCAPE.get(match.group()) or _decode_run([], [0], match)


# "%XX" of one ASCII character (not NUL): what _decode_run makes of it, looked up.
_ONE_ESCAPE = {
    "%" + hex_form: ("+" if code == 0x2B else chr(code)).replace("+", "\ue000")
    for code in range(1, 128)
    for hex_form in {f"{code:02x}", f"{code:02X}", f"{code:02x}"[0] + f"{code:02X}"[1], f"{code:02X}"[0] + f"{code:02x}"[1]}
}


def _decode_run(units: list[_Unit], shift: list[int], match: re.Match[str]) -> str:
    """A run of escapes decoded (look-alikes mapped); its units appended to ``units``; ``shift``:
    the view's offset minus the original's after the runs so far."""
    run = match.group()
    start = match.start()
    group = match.lastgroup
    if group == "pct" or group == "x":  # the usual case first: ASCII bytes, one unit
        raw = bytes.fromhex(run.replace("%", "") if group == "pct" else run.replace("\\x", ""))
        if raw.isascii() and 0 not in raw:
            size, offset = len(raw), shift[0]
            units.append((start + offset, start + offset + size, start, start + len(run), len(run) // size))
            shift[0] = offset + size - len(run)
            decoded = raw.decode("ascii")
            return decoded.replace("+", _DECODED_PLUS) if "+" in decoded else decoded
    if group == "slash" or group == "bs":  # "\\/" is "/", and "\\\\" one backslash (JSON in JSON)
        parts = [(2, run[1])] * (len(run) // 2)
    elif group == "pct":
        parts = _percent(run)
    elif group == "U":
        code = int(run[2:], 16)
        parts = [(10, _char(code))] if code <= 0x10FFFF else [(10, run)]
    else:  # \\uXXXX or \\xXX runs
        width = 6 if group == "u" else 4
        parts = [(width, _char(int(run[i + 2 : i + width], 16))) for i in range(0, len(run), width)]
    table = _load().all
    pieces: list[str] = []
    even = True  # every part one character, from escapes of one length: one unit for the run
    first_length = parts[0][0]
    for length, decoded in parts:
        if not decoded.isascii():
            decoded = "".join([table.get(c, c) for c in decoded])
        elif decoded == "+":
            decoded = _DECODED_PLUS
        pieces.append(decoded)
        if even and (len(decoded) != 1 or length != first_length):
            even = False
    offset = shift[0]
    if even:
        units.append((start + offset, start + offset + len(pieces), start, start + len(run), first_length))
        shift[0] = offset + len(pieces) - len(run)
        return "".join(pieces)
    position = start
    for (length, _), decoded in zip(parts, pieces):
        units.append((position + offset, position + offset + len(decoded), position, position + length, 0))
        offset += len(decoded) - length
        position += length
    shift[0] = offset
    return "".join(pieces)


def _char(code: int) -> str:
    return " " if code == 0 else chr(code)


def _percent(run: str) -> list[tuple[int, str]]:
    """A run of ``%XX``: ``(original length, decoded)`` per character (UTF-8 where valid)."""
    raw = bytes.fromhex(run.replace("%", ""))
    if raw.isascii():
        return [(3, chr(byte) if byte else " ") for byte in raw]
    if len(raw) == 1:  # a lone byte that is not ASCII: no UTF-8, itself as Latin-1
        return [(3, chr(raw[0]))]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:  # valid UTF-8 (the usual case): one part per character, its bytes' escapes
        return [(3 * len(char.encode("utf-8", "surrogatepass")), char if char != "\x00" else " ") for char in text]
    parts: list[tuple[int, str]] = []
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    pending = 0
    for index, byte in enumerate(raw):
        pending += 1
        try:
            decoded = decoder.decode(bytes((byte,)))
        except UnicodeDecodeError:
            decoder.reset()
            # the bytes so far are not UTF-8: each stands for itself (as Latin-1)
            for offset in range(pending):
                parts.append((3, chr(raw[index - pending + 1 + offset])))
            pending = 0
            continue
        if decoded:
            parts.append((3 * pending, decoded))
            pending = 0
    for offset in range(pending):  # a sequence cut short at the end of the run
        parts.append((3, chr(raw[len(raw) - pending + offset])))
    return parts
