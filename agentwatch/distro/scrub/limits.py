"""Length limits applied after scrubbing: what is cut is the scrubbed text, never the raw one.

Cutting first and scrubbing the rest leaks: a card number cut to 15 digits, an e-mail cut at its
``@``, no longer match a detector. So every limit agentwatch applies (the attribute value length
limits ``OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT``, the GenAI/agent content limit
``AGENTWATCH_GENAI_CONTENT_MAX_CHARS``) scrubs first and cuts after, and the SDK's own cut, made
when an attribute is set (before any exporter runs), is moved :data:`MARGIN` characters further
out by the configurator, so that what the SDK keeps still holds every secret that starts before
the real limit whole.

The work is bounded: a text is first cut to ``limit + MARGIN`` characters (a secret that starts
before ``limit`` and is cut there is still recognised from its start: every detector matches from
its start, a PEM block without its end included), then scrubbed, then cut at ``limit`` at a boundary
that does not split a ``[REDACTED:...]`` mark.
"""

from __future__ import annotations

from collections.abc import Callable

from agentwatch._records import Record
from agentwatch.distro.scrub.rules import MARK_PREFIX

__all__ = ["MARGIN", "AttributeLimits", "cut", "marked", "raised", "scrub_and_cut"]

#: How much longer than a limit the text scrubbed before the cut is (and the SDK's own cut is
#: moved out by). Longer than any secret a detector must see whole before it can recognise it
#: (e-mail addresses: 254, cards and phones: < 40, a JWT's header: < 100; PEM blocks, bearer
#: values and ``name=value`` pairs are recognised from their start).
MARGIN = 1024


class AttributeLimits(Record):
    """The attribute value length limits (``None``: no limit) agentwatch applies after scrubbing:
    span attributes, event and link attributes, log record attributes."""

    __slots__ = ("span", "event", "log", "log_body")
    span: int | None
    event: int | None
    log: int | None
    log_body: int | None  # AGENTWATCH_LOG_BODY_MAX_CHARS: a string log body

    def __init__(self, span: int | None = None, event: int | None = None, log: int | None = None,
                 log_body: int | None = None) -> None:
        self._set(span=span, event=event, log=log, log_body=log_body)

    @property
    def any(self) -> bool:
        return self.span is not None or self.event is not None or self.log is not None or self.log_body is not None


def raised(limit: int | None) -> int | None:
    """The SDK limit that keeps enough for scrubbing before agentwatch's own cut at ``limit``."""
    return None if limit is None else limit + MARGIN


def cut(text: str, limit: int) -> str:
    """``text`` (already scrubbed) cut to at most ``limit`` characters, never inside a mark."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    start = head.rfind("[")
    if start >= 0 and "]" not in head[start:]:
        tail = head[start:]
        if MARK_PREFIX.startswith(tail) or tail.startswith(MARK_PREFIX):
            head = head[:start]  # a mark cut in two: left out whole
    return head


def scrub_and_cut(scrub: Callable[[str], str], text: str, limit: int) -> tuple[str, int]:
    """``text`` scrubbed and cut to ``limit``, scrubbing at most ``limit + MARGIN`` characters.

    Returns the kept text and how many characters were cut (of the text as scrubbed, plus what
    was never scrubbed).
    """
    bounded = text[: limit + MARGIN] if len(text) > limit + MARGIN else text
    scrubbed = scrub(bounded)
    kept = cut(scrubbed, limit)
    return kept, (len(text) - len(bounded)) + (len(scrubbed) - len(kept))


def marked(kept: str, dropped: int) -> str:
    """A cut text with the marker saying how much was cut (log bodies: readers must see it is not whole)."""
    return f"{kept}...[truncated {dropped} chars]" if dropped else kept
