"""Display primitives of the report: colours, escaping, numbers, durations, tables."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import datetime
from typing import Any

VALUE_WIDTH = 80

# Control characters, line/paragraph separators and bidi overrides (they reorder what a terminal shows),
# and lone surrogates (no UTF-8 for them): all shown as escapes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


class Style:
    """ANSI bold / dim / colours, or plain text when ``color`` is off."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def cyan(self, text: str) -> str:
        return self._wrap("36", text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str, width: int | None = None) -> str:
    """One display line: control characters escaped (no terminal injection), truncated."""
    text = text.replace("\r\n", "\n")
    text = _CONTROL.sub(lambda m: {"\n": "\\n", "\t": " "}.get(m.group(), _escape(m.group())), text)
    if width is not None and len(text) > width:
        text = text[: max(1, width - 1)] + "…"
    return text


def fmt_value(value: Any, width: int = VALUE_WIDTH) -> str:
    if isinstance(value, str):
        text = clean(value, width)
        return json.dumps(text, ensure_ascii=False) if (not text or " " in text or '"' in text) else text
    if isinstance(value, float):
        return fmt_num(value)
    if isinstance(value, (list, dict)):
        return clean(json.dumps(value, ensure_ascii=False, default=str), width)
    return clean(str(value), width)


def fmt_num(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def fmt_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24}h"


def local_time(ns: int) -> datetime | None:
    try:
        return datetime.fromtimestamp(ns / 1e9)
    except (OverflowError, OSError, ValueError):
        return None


def fmt_clock(ns: int | None) -> str:
    moment = local_time(ns) if ns else None
    return moment.strftime("%H:%M:%S.%f")[:-3] if moment else "--:--:--.---"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 or word.endswith("s") else "s")


def unit_label(unit: str) -> str:
    if not unit or unit == "1":
        return ""
    return " " + clean(unit, 20)


def table(rows: list[list[str]], right: set[int], indent: str = "  ") -> list[str]:
    widths = [max(len(_strip_ansi(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - len(_strip_ansi(cell)))
            cells.append(pad + cell if i in right else cell + pad)
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal columns of ``text``: ANSI codes take none, wide (CJK, emoji) characters two."""
    plain = _strip_ansi(text)
    if plain.isascii():
        return len(plain)
    return sum(_char_width(char) for char in plain)


def fit(line: str, width: int) -> str:
    """``line`` cut to ``width`` terminal columns (``…`` marks the cut; ANSI codes kept intact)."""
    if width <= 0 or display_width(line) <= width:
        return line
    out: list[str] = []
    used = 0
    position = 0
    styled = False
    while position < len(line):
        match = _ANSI.match(line, position)
        if match:
            out.append(match.group())
            styled = match.group() != "\x1b[0m"
            position = match.end()
            continue
        char = line[position]
        columns = _char_width(char)
        if used + columns > width - 1:
            break
        out.append(char)
        used += columns
        position += 1
    return "".join(out) + "…" + ("\x1b[0m" if styled else "")


def bar(start: float, length: float, width: int) -> str:
    """A waterfall bar: ``width`` cells, filled from ``start`` for ``length`` (both fractions of the whole).

    Eighth blocks give the ends sub-cell precision; anything recorded shows at least a sliver.
    """
    start = min(max(start, 0.0), 1.0)
    end = min(max(start + max(length, 0.0), start), 1.0)
    first, last = start * width, end * width
    cells = []
    for cell in range(width):
        covered = min(last, cell + 1) - max(first, cell)
        if covered >= 0.875:
            cells.append("█")
        elif covered > 0:
            cells.append(_LEFT_EIGHTHS[max(1, round(covered * 8))])
        else:
            cells.append(" ")
    if "█" not in cells and not any(c in _LEFT_EIGHTHS[1:] for c in cells):
        cells[min(int(first), width - 1)] = "▏"
    return "".join(cells)


_LEFT_EIGHTHS = " ▏▎▍▌▋▊▉"
