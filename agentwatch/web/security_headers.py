"""Security headers on the FastAPI app's responses, opt-in (``AGENTWATCH_SECURITY_HEADERS``).

The usual set for an API: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer``, ``Strict-Transport-Security`` (over HTTPS only, unless
``hsts-always``), and a ``Content-Security-Policy`` the app chooses (``AGENTWATCH_SECURITY_CSP``; no
default: a policy that suits a JSON API breaks FastAPI's ``/docs`` page, and the reverse is no policy).

Added by agentwatch's one web layer (:mod:`agentwatch.web.middleware`, under either server layer) to
the ``http.response.start`` message as raw ASGI headers, computed once per app: a response costs one
set of the header names it already has (shared with the request-id headers) and a list concatenation.
A header the app set itself, in any case, is never overwritten or doubled. Body chunks, websockets and
lifespan messages are not touched.
"""

from __future__ import annotations

from typing import Any

from agentwatch._records import Record

__all__ = ["ITEMS", "SecurityHeaders", "build", "from_settings"]

#: The items of ``AGENTWATCH_SECURITY_HEADERS`` with a fixed value.
FIXED: dict[str, tuple[bytes, bytes]] = {
    "nosniff": (b"x-content-type-options", b"nosniff"),
    "frame": (b"x-frame-options", b"DENY"),
    "referrer": (b"referrer-policy", b"no-referrer"),
}
#: Every accepted item: agentwatch.distro.settings.SECURITY_HEADER_ITEMS (the reader checks them). ``on`` means
#: :data:`ON` (plus ``csp`` when a policy is set), ``off`` nothing.
ITEMS = (*FIXED, "hsts", "hsts-always", "csp")
ON = ("nosniff", "frame", "referrer", "hsts")
_HSTS = b"strict-transport-security"
_CSP = b"content-security-policy"


class SecurityHeaders(Record):
    """The headers to add: ``always`` on every response, ``https`` only when the request came over HTTPS."""

    __slots__ = ("always", "https")
    always: tuple[tuple[bytes, bytes], ...]
    https: tuple[tuple[bytes, bytes], ...]

    def __init__(self, always: tuple[tuple[bytes, bytes], ...], https: tuple[tuple[bytes, bytes], ...]) -> None:
        self._set(always=always, https=https)

    def extra(self, scheme: str) -> tuple[tuple[bytes, bytes], ...]:
        return self.always + self.https if scheme == "https" and self.https else self.always


def build(items: tuple[str, ...], csp: str | None, hsts: str) -> SecurityHeaders | None:
    """The headers for the parsed setting (``items`` already checked by the settings reader); None when off."""
    wanted = set(items)
    if "on" in wanted:
        wanted |= set(ON) | ({"csp"} if csp else set())
    wanted.discard("on")
    if not wanted or "off" in wanted:
        return None
    always = [FIXED[name] for name in FIXED if name in wanted]
    https: list[tuple[bytes, bytes]] = []
    if "csp" in wanted and csp:
        always.append((_CSP, csp.encode("latin-1")))
    if "hsts-always" in wanted:
        always.append((_HSTS, hsts.encode("latin-1")))
    elif "hsts" in wanted:
        https.append((_HSTS, hsts.encode("latin-1")))
    if not always and not https:
        return None
    return SecurityHeaders(tuple(always), tuple(https))


def from_settings(web: Any) -> SecurityHeaders | None:
    """The headers the web section asks for (read once per app, when its middleware stack is built)."""
    return build(web.security_headers, web.security_csp, web.security_hsts)
