"""The handoff to the official opentelemetry-instrumentation-google-genai: one span per call, never two.

Both instrumentations wrap the same SDK methods. Two layers decide which one records a call:

- **At load time** the distro chooses (:mod:`agentwatch.distro.genai_choice`, from
  ``AGENTWATCH_GENAI_INSTRUMENTATION`` and package metadata): under ``opentelemetry-instrument`` it loads
  only one of the two entry points, and says once which one runs.
- **At call time** (here) agentwatch's wrappers look at the method's wrapper chain: when the official
  instrumentation wraps it -- because ``official`` was chosen, or because the application instrumented
  it itself -- agentwatch's wrapper steps aside and records nothing for that method. It keeps
  ``count_tokens``, which the official one does not wrap.
"""

from __future__ import annotations

import logging
from typing import Any

from agentwatch.distro import environment_variables as ev
from agentwatch.distro import genai_choice
from agentwatch.distro._diagnostics import warn_once
from agentwatch.instrumentors.gemini.telemetry import Telemetry

_OFFICIAL_PREFIX = genai_choice.OFFICIAL_MODULE + "."
# (owner, name) -> (the attribute object looked at, whether the official one wraps it)
_owner_cache: dict[tuple[Any, str], tuple[Any, bool]] = {}


def official_wraps(owner: Any, name: str) -> bool:
    """Whether the official opentelemetry-instrumentation-google-genai wraps ``owner.name`` (at any depth).

    Answered from the wrapper chain itself, so it holds however the official one got there
    (``opentelemetry-instrument``, or the app calling ``GoogleGenAiSdkInstrumentor().instrument()``)
    and in either wrapping order. Cached per attribute object: one dict lookup per call.
    """
    current = vars(owner).get(name)
    cached = _owner_cache.get((owner, name))
    if cached is not None and cached[0] is current:
        return cached[1]
    found, node = False, current
    for _ in range(32):  # wrapt FunctionWrappers (and functools.wraps layers) down to the SDK's function
        wrapper = getattr(node, "_self_wrapper", None)
        module = str(getattr(wrapper, "__module__", "") or "")
        if module == genai_choice.OFFICIAL_MODULE or module.startswith(_OFFICIAL_PREFIX):
            found = True
            break
        node = getattr(node, "__wrapped__", None)
        if node is None:
            break
    _owner_cache[(owner, name)] = (current, found)
    return found


def step_aside(tel: Telemetry, owner: Any, name: str) -> bool:
    """True when the official instrumentation records this method: agentwatch then records nothing for it."""
    if not official_wraps(owner, name):
        return False
    var = ev.AGENTWATCH_GENAI_INSTRUMENTATION
    if tel.choice == genai_choice.OFFICIAL:
        if not genai_choice.choice_announced():
            warn_once(
                "genai:step-aside",
                f"Gemini: {genai_choice.OFFICIAL_DIST} is active ({var}=official): agentwatch's Gemini instrumentor steps aside "
                "for the methods it wraps, so each call gets one span",
                level=logging.INFO,
            )
    else:
        warn_once(
            "genai:step-aside",
            f"Gemini: {genai_choice.OFFICIAL_DIST} was instrumented outside agentwatch's loader (by the application?) and wraps "
            f"{getattr(owner, '__name__', owner)}.{name}: agentwatch's Gemini instrumentor steps aside for the methods "
            "it wraps so each call gets one span; remove that instrument() call to get agentwatch's spans (usage of "
            "every round trip, cost, per-request roll-up)",
        )
    return True


def official_generates() -> bool:
    """Whether the official instrumentation records ``generate_content`` (it then records the tool runs too)."""
    import google.genai.models as models

    return official_wraps(models.Models, "generate_content") or official_wraps(models.AsyncModels, "generate_content")


def forget() -> None:
    """Drop what was learnt about wrapper chains (on ``uninstrument()``)."""
    _owner_cache.clear()
