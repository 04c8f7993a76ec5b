"""The request context log records carry: request id and session id, as context variables.

They live here, in the pipeline layer, so that log formatting and export
(:mod:`agentwatch.distro.logs`) can read them without importing the web
layer; ``agentwatch.web`` sets them for each request (dependencies point
web -> distro). Context variables follow the request into everything it runs:
``await``-ed code, tasks it creates, sync endpoints and background tasks run in
Starlette's thread pool (the context is copied there).

:class:`RequestContextFilter` puts them on every ``logging.LogRecord`` that
reaches agentwatch's handlers (the OpenTelemetry log handler and the stdout
formatter) as the attributes ``agentwatch.request.id`` and
``agentwatch.session.id`` -- the names the server span uses -- so the exported
OTel log records carry them as attributes.
"""

from __future__ import annotations

import contextvars
import logging
import re

#: Span, log-record and baggage key of the request id.
REQUEST_ID_KEY = "agentwatch.request.id"
#: Span, log-record and baggage key of the session id (``X-Session-ID``).
SESSION_ID_KEY = "agentwatch.session.id"

#: What a request or session id coming from outside may look like: 1-128 of ``A-Z a-z 0-9 . _ : -``.
VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("agentwatch_request_id", default=None)
_session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("agentwatch_session_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    return _request_id.get()


def current_session_id() -> str | None:
    """The session id (``X-Session-ID``) of the request being handled, or None."""
    return _session_id.get()


def is_valid_id(value: object) -> bool:
    """Whether ``value`` is a well-formed id (a str of 1-128 of ``[A-Za-z0-9._:-]``)."""
    return isinstance(value, str) and VALID_ID.fullmatch(value) is not None


def set_request_context(
    request_id: str | None, session_id: str | None = None
) -> tuple[contextvars.Token, contextvars.Token]:
    """Make these the current ids; returns the tokens for :func:`reset_request_context`."""
    return _request_id.set(request_id), _session_id.set(session_id)


def reset_request_context(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
    """Restore the ids that were current before :func:`set_request_context`."""
    for var, token in zip((_request_id, _session_id), tokens):
        try:
            var.reset(token)
        except ValueError:  # created in another context: leave it
            pass


class RequestContextFilter(logging.Filter):
    """Adds the current request and session ids to each record (never drops one).

    A value the record already has (``extra={"agentwatch.request.id": ...}``) is
    kept. Records emitted outside a request get nothing.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        request_id = _request_id.get()
        if request_id is not None and REQUEST_ID_KEY not in fields:
            fields[REQUEST_ID_KEY] = request_id
        session_id = _session_id.get()
        if session_id is not None and SESSION_ID_KEY not in fields:
            fields[SESSION_ID_KEY] = session_id
        return True


FILTER = RequestContextFilter()


def add_filter(handler: logging.Handler) -> None:
    """Put :data:`FILTER` on ``handler`` once."""
    if FILTER not in handler.filters:
        handler.addFilter(FILTER)
