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

from agentwatch.distro import context as _context
from agentwatch.distro.context import REQUEST_ID_KEY, SESSION_ID_KEY, current_request_id, current_session_id

HEADER = "x-request-id"
SESSION_HEADER = "x-session-id"
SCOPE_KEY = "agentwatch.request_id"
SESSION_SCOPE_KEY = "agentwatch.session_id"
_VALID = _context.VALID_ID

__all__ = [
    "HEADER",
    "REQUEST_ID_KEY",
    "SCOPE_KEY",
    "SESSION_HEADER",
    "SESSION_ID_KEY",
    "accept_or_generate",
    "current_request_id",
    "current_session_id",
    "from_scope",
    "new_request_id",
    "session_from_scope",
]


def new_request_id() -> str:
    return uuid.uuid4().hex


def _well_formed(incoming: str | bytes | None) -> str | None:
    if isinstance(incoming, bytes):
        try:
            incoming = incoming.decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(incoming, str) and _VALID.fullmatch(incoming):
        return incoming
    return None


def accept_or_generate(incoming: str | bytes | None) -> str:
    """The incoming id when well-formed, else a new one."""
    return _well_formed(incoming) or new_request_id()


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value
    return None


def _from_baggage(key: str) -> str | None:
    """A well-formed id from the W3C baggage the server instrumentation extracted, if any."""
    try:
        from opentelemetry import baggage

        return _well_formed(baggage.get_baggage(key))
    except Exception:  # noqa: BLE001
        return None


def from_scope(scope: dict) -> str:
    """The request's id: the one already assigned to this scope, else from its header or baggage (assigned now)."""
    existing = scope.get(SCOPE_KEY)
    if existing:
        return existing
    request_id = _well_formed(_header(scope, b"x-request-id"))
    if request_id is None:
        request_id = _from_baggage(REQUEST_ID_KEY) or new_request_id()
    scope[SCOPE_KEY] = request_id
    return request_id


def session_from_scope(scope: dict) -> str | None:
    """The request's session id (``X-Session-ID``, else baggage) when well formed, else None."""
    if SESSION_SCOPE_KEY in scope:
        return scope[SESSION_SCOPE_KEY]
    incoming = _header(scope, b"x-session-id")
    session_id = _well_formed(incoming) if incoming is not None else _from_baggage(SESSION_ID_KEY)
    scope[SESSION_SCOPE_KEY] = session_id
    return session_id


def set_current(request_id: str | None, session_id: str | None = None) -> tuple[contextvars.Token, contextvars.Token]:
    return _context.set_request_context(request_id, session_id)


def reset(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
    _context.reset_request_context(tokens)
