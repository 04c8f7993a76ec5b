"""Request and session ids on outgoing HTTP calls made while a request runs.

``Client.send`` and ``AsyncClient.send`` of ``httpx`` and ``httpx2`` (every
request of a client goes through them, redirects included) get the
``X-Request-ID`` header -- and ``X-Session-ID`` when the request has one --
unless the caller set it. The W3C ``baggage`` header with the same ids
(``agentwatch.request.id``, ``agentwatch.session.id``) is sent by the httpx
instrumentation's propagator from the context the middleware set up.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from agentwatch.distro.context import current_request_id, current_session_id
from agentwatch.distro.guard import guard
from agentwatch.web.request_id import HEADER, SESSION_HEADER

#: (module, class) pairs whose ``send`` is wrapped, when the module is installed.
TARGETS = (
    ("httpx", "Client"),
    ("httpx", "AsyncClient"),
    ("httpx2", "Client"),
    ("httpx2", "AsyncClient"),
)


def add_headers(request: Any) -> None:
    """Add the current ids to an httpx ``Request`` whose headers do not have them yet."""
    request_id = current_request_id()
    if request_id is None:
        return
    headers = request.headers  # (case-insensitive; the names are sent as written here)
    if HEADER not in headers:
        headers["X-Request-ID"] = request_id
    session_id = current_session_id()
    if session_id is not None and SESSION_HEADER not in headers:
        headers["X-Session-ID"] = session_id


def _send(wrapped, instance, args, kwargs):
    # Outside the guard, the app's call: it goes out as it would have without us.
    with guard("web layer: outgoing request ids", "calls go out without X-Request-ID / X-Session-ID"):
        request = args[0] if args else kwargs.get("request")
        if request is not None:
            add_headers(request)
    return wrapped(*args, **kwargs)


def instrument() -> list[tuple[str, str]]:
    """Wrap every installed target; return what was wrapped."""
    from wrapt import wrap_function_wrapper

    done = []
    for module, cls in TARGETS:
        try:
            if importlib.util.find_spec(module) is None:
                continue
            wrap_function_wrapper(module, f"{cls}.send", _send)
            done.append((module, cls))
        except Exception:  # noqa: BLE001,S112 - a client we cannot wrap keeps working, without the header
            continue
    return done


def uninstrument(done: list[tuple[str, str]]) -> None:
    import importlib

    from opentelemetry.instrumentation.utils import unwrap

    for module, cls in done:
        try:
            unwrap(getattr(importlib.import_module(module), cls), "send")
        except Exception:  # noqa: BLE001,S110
            pass
