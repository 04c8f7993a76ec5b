"""Scrubbing of the free text the web layer exports or returns (check errors, exception messages).

The distro's scrubber (:func:`agentwatch.distro.scrub.scrub_text`), the one every path out of
the process uses: same detectors, same ``[REDACTED:<kind>]`` marks, and ``AGENTWATCH_SCRUB=false``
turns it off here too.
"""

from __future__ import annotations

from collections.abc import Callable

from agentwatch.distro import scrub
from agentwatch.distro.guard import run

_scrubber: Callable[[str], str] = scrub.scrub_text


def scrub_text(text: str) -> str:
    """``text`` with secrets and PII removed; never raises, never returns what could not be scrubbed."""
    return run("web layer: text scrubbing", _scrub, text, default="[unavailable]",
               outcome="such texts are replaced by [unavailable]")


def _scrub(text: str) -> str:
    return _scrubber(str(text))  # (looked up at each call: tests replace it)
