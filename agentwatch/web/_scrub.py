"""Scrubbing of the free text the web layer exports or returns (check errors, exception messages).

The distro's scrubber (:func:`agentwatch.distro.scrub.scrub_text`), the one every path out of
the process uses: same detectors, same ``[REDACTED:<kind>]`` marks, and ``AGENTWATCH_SCRUB=false``
turns it off here too.
"""

from __future__ import annotations

from typing import Callable

from agentwatch.distro import scrub

_scrubber: Callable[[str], str] = scrub.scrub_text


def scrub_text(text: str) -> str:
    """``text`` with secrets and PII removed; never raises."""
    try:
        return _scrubber(str(text))
    except Exception as error:  # noqa: BLE001 - never return what could not be scrubbed
        from agentwatch.web._guard import step_failed

        step_failed("text scrubbing", error, "such texts are replaced by [unavailable]")
        return "[unavailable]"
