"""The request id (and session id) of the current request.

A well-formed incoming ``X-Request-ID`` (1-128 characters of
``[A-Za-z0-9._:-]``) is kept, so ids set by a gateway or the caller carry
through; without one, a well-formed ``agentwatch.request.id`` W3C baggage entry
(an upstream agentwatch service that propagated it) is used; anything else is
replaced by a fresh id (32 hex characters). ``X-Session-ID`` (or the
``agentwatch.session.id`` baggage entry) is kept when well formed, dropped
otherwise (never invented).

The ids live in context variables of :mod:`agentwatch.distro.context` (so the
log pipeline reads them without importing this package); the middleware sets
them for the whole request -- ``await``-ed code, thread-pool sync endpoints,
background tasks. :func:`current_request_id` / :func:`current_session_id` read
them anywhere in the request's code.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Mapping
from typing import Any

from opentelemetry import baggage

from agentwatch.distro import context as _context
from agentwatch.distro.context import (
    REQUEST_ID_KEY,
    SESSION_ID_KEY,
    current_request_id,
    current_session_id,
    is_valid_id,
)

HEADER = "x-request-id"
SESSION_HEADER = "x-session-id"
SCOPE_KEY = "agentwatch.request_id"
SESSION_SCOPE_KEY = "agentwatch.session_id"
_HEADER = HEADER.encode()
_SESSION_HEADER = SESSION_HEADER.encode()

__all__ = [
    "HEADER",
    "REQUEST_ID_KEY",
    "SCOPE_KEY",
    "SESSION_HEADER",
    "SESSION_ID_KEY",
    "current_request_id",
    "current_session_id",
    "from_scope",
    "new_request_id",
    "session_from_scope",
]


def new_request_id() -> str:
    return uuid.uuid4().hex


def _well_formed(incoming: Any) -> str | None:
    if isinstance(incoming, bytes):
        try:
            incoming = incoming.decode("ascii")
        except UnicodeDecodeError:
            return None
    return incoming if is_valid_id(incoming) else None


def _headers(scope: dict) -> tuple[bytes | None, bytes | None]:
    """The first ``X-Request-ID`` and ``X-Session-ID`` values, in one pass over the headers."""
    request = session = None
    for key, value in scope.get("headers") or ():
        name = key.lower()
        if name == _HEADER:
            if request is None:
                request = value
        elif name == _SESSION_HEADER and session is None:
            session = value
    return request, session


def _baggage() -> Mapping[str, object]:
    """The W3C baggage the server instrumentation extracted (empty if it cannot be read)."""
    try:
        return baggage.get_all()
    except Exception:  # noqa: BLE001
        return {}


def _assign(scope: dict) -> None:
    """Find both ids (one pass over the headers, baggage read only when a header lacks) and keep them in the scope."""
    request_header, session_header = _headers(scope)
    request_id = _well_formed(request_header)
    session_id = _well_formed(session_header)
    if request_id is None or session_header is None:
        entries = _baggage()
        if request_id is None:
            request_id = _well_formed(entries.get(REQUEST_ID_KEY)) or new_request_id()
        if session_header is None:  # a malformed X-Session-ID is dropped, not replaced from baggage
            session_id = _well_formed(entries.get(SESSION_ID_KEY))
    if not scope.get(SCOPE_KEY):
        scope[SCOPE_KEY] = request_id
    scope.setdefault(SESSION_SCOPE_KEY, session_id)


def from_scope(scope: dict) -> str:
    """The request's id: the one already assigned to this scope, else from its header or baggage (assigned now,
    with the session id)."""
    existing = scope.get(SCOPE_KEY)
    if existing:
        return existing
    _assign(scope)
    return scope[SCOPE_KEY]


def session_from_scope(scope: dict) -> str | None:
    """The request's session id (``X-Session-ID``, else baggage) when well formed, else None."""
    if SESSION_SCOPE_KEY not in scope:
        _assign(scope)
    return scope[SESSION_SCOPE_KEY]


def set_current(request_id: str | None, session_id: str | None = None) -> tuple[contextvars.Token, contextvars.Token]:
    return _context.set_request_context(request_id, session_id)


def reset(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
    _context.reset_request_context(tokens)
