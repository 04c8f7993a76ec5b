"""The rule for every per-request step of agentwatch's web layer: a step that raises is said once
(per step, not per request) and the request goes on as it would without that step -- in the
worst case, passed to the app untouched, so it answers byte for byte as without agentwatch.
"""

from __future__ import annotations

from typing import Any, Callable

from agentwatch.distro._diagnostics import warn_once


def step_failed(step: str, error: BaseException, outcome: str) -> None:
    """Report a failed step once: ``agentwatch web layer: <step> failed (<error>); <outcome>``."""
    warn_once(
        f"web-fault:{step}",
        f"agentwatch web layer: {step} failed ({error!r}); {outcome}. The app is not affected (said once)",
    )


def guarded(step: str, outcome: str, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, or None (reported once) if it raises."""
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 - a step of ours never breaks the request
        step_failed(step, error, outcome)
        return None
