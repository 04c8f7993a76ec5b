"""Request and session ids on outgoing HTTP calls made while a request runs, within the propagation boundary.

``Client.send`` and ``AsyncClient.send`` of ``httpx`` and ``httpx2`` (every
request of a client goes through them, redirects included) get the
``X-Request-ID`` header -- and ``X-Session-ID`` when the request has one --
unless the caller set it. The W3C ``baggage`` header with the same ids
(``agentwatch.request.id``, ``agentwatch.session.id``) is sent by the httpx
instrumentation's propagator from the context the middleware set up.

Both only where :mod:`agentwatch.distro.boundaries` allows: to hosts ``AGENTWATCH_PROPAGATE_TO`` names
(private ones by default) and never from a model provider's SDK. The decision is held for the duration
of the send, so the propagator (which runs inside it, in the transport) leaves the baggage out too.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from agentwatch.distro import boundaries
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


_policy: list[boundaries.HostPolicy] = []


def policy() -> boundaries.HostPolicy:
    if not _policy:
        from agentwatch.web import config

        _policy.append(boundaries.HostPolicy(config.settings().propagate_to))
    return _policy[0]


def _decide(args: tuple, kwargs: dict) -> bool:
    """May this request carry baggage and ids? Adds the id headers when it may."""
    allowed = True
    with guard("web layer: outgoing request ids", "calls go out without X-Request-ID / X-Session-ID"):
        request = args[0] if args else kwargs.get("request")
        allowed = False
        if request is not None:
            allowed = boundaries.outgoing(policy(), request.url.host, request.headers)
            if allowed:
                add_headers(request)
    return allowed


def _send(wrapped, instance, args, kwargs):
    token = boundaries.hold(_decide(args, kwargs))
    try:
        # The app's call: it goes out as it would have without us (minus what the boundary keeps in).
        return wrapped(*args, **kwargs)
    finally:
        boundaries.release(token)


def _send_async(wrapped, instance, args, kwargs):
    allowed = _decide(args, kwargs)

    async def send() -> Any:
        token = boundaries.hold(allowed)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            boundaries.release(token)

    return send()


def instrument() -> list[tuple[str, str]]:
    """Wrap every installed target; return what was wrapped."""
    from wrapt import wrap_function_wrapper

    done = []
    for module, cls in TARGETS:
        try:
            if importlib.util.find_spec(module) is None:
                continue
            wrap_function_wrapper(module, f"{cls}.send", _send_async if cls.startswith("Async") else _send)
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
    _policy.clear()
