"""The request id of the current request, as a context variable.

A well-formed incoming ``X-Request-ID`` (1-128 characters of
``[A-Za-z0-9._:-]``) is kept, so ids set by a gateway or the caller carry
through; anything else is replaced by a fresh id (32 hex characters). The id
is returned as the ``X-Request-ID`` response header and put in error bodies;
:func:`current_request_id` reads it anywhere in the request's code.
"""

from __future__ import annotations

import contextvars
import re
import uuid

HEADER = "x-request-id"
SCOPE_KEY = "agentwatch.request_id"
_VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("agentwatch_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_or_generate(incoming: str | bytes | None) -> str:
    """The incoming id when well-formed, else a new one."""
    if isinstance(incoming, bytes):
        try:
            incoming = incoming.decode("ascii")
        except UnicodeDecodeError:
            incoming = None
    if incoming is not None and _VALID.fullmatch(incoming):
        return incoming
    return new_request_id()


def from_scope(scope: dict) -> str:
    """The request's id: the one already assigned to this scope, else from its header (assigned now)."""
    existing = scope.get(SCOPE_KEY)
    if existing:
        return existing
    incoming = None
    for name, value in scope.get("headers") or ():
        if name.lower() == b"x-request-id":
            incoming = value
            break
    request_id = accept_or_generate(incoming)
    scope[SCOPE_KEY] = request_id
    return request_id


def set_current(request_id: str | None) -> contextvars.Token:
    return _current.set(request_id)


def reset(token: contextvars.Token) -> None:
    try:
        _current.reset(token)
    except ValueError:  # reset from another context: leave it
        pass
