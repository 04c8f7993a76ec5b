"""Propagation boundaries: trace context may go anywhere; baggage and the request/session id headers only
to hosts that are allowed, and never to a model provider's SDK.

The caller's baggage (a user's e-mail put there by an upstream service) and agentwatch's ids are meant for
the service's own neighbours, not for Google or any other third party. Three parts:

* :class:`HostPolicy`: ``AGENTWATCH_PROPAGATE_TO`` as host patterns. ``private`` (the default) allows
  loopback, private and link-local addresses, single-label names (``orders``: a Kubernetes or Compose
  service), cluster-local suffixes (``.svc``, ``.cluster.local``, ``.internal``, ``.local``) and the
  service's own domain (the domain of this host's FQDN); ``*.example.com``, exact names and CIDRs add
  more; ``none`` allows nothing, ``*`` everything.
* :func:`outgoing`: the decision for one outgoing request (host allowed, and not sent by a model
  provider's SDK, recognised by the headers it identifies itself with), held in a context variable for
  the duration of the send so the propagator below sees it.
* :class:`BoundaryPropagator`: wraps the global propagator (whatever ``OTEL_PROPAGATORS`` built): it
  injects trace context always and baggage only where allowed; on extract, it keeps only the incoming
  baggage keys ``AGENTWATCH_BAGGAGE_KEYS`` names, so unknown keys are neither recorded nor forwarded.
"""

from __future__ import annotations

import contextvars
import fnmatch
import ipaddress
import socket
import threading
from collections.abc import Iterable
from typing import Any

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.propagators.textmap import CarrierT, Getter, Setter, TextMapPropagator, default_getter, default_setter

_CLUSTER_SUFFIXES = (".svc", ".cluster.local", ".internal", ".local", ".localhost")

#: Headers by which a model provider's SDK identifies itself: (header, substring, case-insensitive).
PROVIDER_SDK_MARKERS = (
    ("x-goog-api-client", "genai"),
    ("user-agent", "google-genai"),
    ("user-agent", "openai/"),
    ("x-stainless-lang", ""),  # the OpenAI and Anthropic SDKs (Stainless-generated clients)
    ("anthropic-version", ""),
)


def _own_domain() -> str | None:
    """``corp.example.com`` for a host named ``web1.corp.example.com`` (None for a single label or an IP)."""
    try:
        fqdn = socket.getfqdn().strip(".").lower()
    except OSError:
        return None
    labels = fqdn.split(".")
    if len(labels) < 3 or fqdn.replace(".", "").isdigit():
        return None
    return ".".join(labels[1:])


class HostPolicy:
    """Which hosts may receive baggage and id headers (decisions cached per host)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = [p.strip().lower() for p in patterns if p.strip()]
        self.private = "private" in self.patterns
        self.everything = "*" in self.patterns
        self.networks = []
        self.globs = []
        for pattern in self.patterns:
            if pattern in ("private", "none", "*"):
                continue
            try:
                self.networks.append(ipaddress.ip_network(pattern, strict=False))
            except ValueError:
                self.globs.append(pattern)
        self._domain: str | None | bool = False  # False: not looked up yet
        self._cache: dict[str, bool] = {}
        self._lock = threading.Lock()

    def allows(self, host: str | None) -> bool:
        if not host:
            return False
        host = host.strip("[]").rstrip(".").lower()
        cached = self._cache.get(host)
        if cached is None:
            cached = self._decide(host)
            with self._lock:
                if len(self._cache) > 1024:
                    self._cache.clear()
                self._cache[host] = cached
        return cached

    def _decide(self, host: str) -> bool:
        if self.everything:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            if self.private and (address.is_loopback or address.is_private or address.is_link_local):
                return True
            return any(address in network for network in self.networks)
        if any(fnmatch.fnmatchcase(host, glob) for glob in self.globs):
            return True
        if not self.private:
            return False
        if host == "localhost" or "." not in host or host.endswith(_CLUSTER_SUFFIXES):
            return True
        if self._domain is False:
            self._domain = _own_domain()
        return isinstance(self._domain, str) and host.endswith("." + self._domain)


_ALLOWED: contextvars.ContextVar[bool] = contextvars.ContextVar("agentwatch_propagate_baggage", default=True)


def provider_sdk(headers: Any) -> bool:
    """Whether a request's headers say a model provider's SDK sends it."""
    for name, marker in PROVIDER_SDK_MARKERS:
        value = headers.get(name)
        if value is not None and marker in str(value).lower():
            return True
    return False


def outgoing(policy: HostPolicy, host: str | None, headers: Any) -> bool:
    """May this request carry baggage and id headers?"""
    return policy.allows(host) and not provider_sdk(headers)


def hold(allowed: bool) -> contextvars.Token[bool]:
    """Make ``allowed`` the decision the propagator sees until :func:`release`."""
    return _ALLOWED.set(allowed)


def release(token: contextvars.Token[bool]) -> None:
    _ALLOWED.reset(token)


class BoundaryPropagator(TextMapPropagator):
    """The global propagator, bounded: baggage injected only where allowed, incoming baggage keys filtered."""

    def __init__(self, inner: TextMapPropagator, keys: Iterable[str] | None = None) -> None:
        self.inner = inner
        self._keys = None if keys is None else frozenset(keys)

    @property
    def keys(self) -> frozenset[str]:
        """``AGENTWATCH_BAGGAGE_KEYS``, read at the first extract (not when instrumenting: the settings are
        read once, when the app runs)."""
        if self._keys is None:
            from agentwatch.distro.settings import settings

            self._keys = frozenset(settings().web.baggage_keys)
        return self._keys

    def inject(self, carrier: CarrierT, context: otel_context.Context | None = None,
               setter: Setter[CarrierT] = default_setter) -> None:
        if not _ALLOWED.get():
            context = baggage.clear(context)  # trace context still goes
        self.inner.inject(carrier, context=context, setter=setter)

    def extract(self, carrier: CarrierT, context: otel_context.Context | None = None,
                getter: Getter[CarrierT] = default_getter) -> otel_context.Context:
        extracted = self.inner.extract(carrier, context=context, getter=getter)
        entries = baggage.get_all(extracted)
        if entries and any(key not in self.keys for key in entries):
            extracted = baggage.clear(extracted)
            for key, value in entries.items():
                if key in self.keys:
                    extracted = baggage.set_baggage(key, value, extracted)
        return extracted

    @property
    def fields(self) -> set[str]:
        return self.inner.fields


def install(keys: Iterable[str] | None = None) -> BoundaryPropagator:
    """Wrap the global propagator (idempotent); ``keys`` default to ``AGENTWATCH_BAGGAGE_KEYS``, read lazily."""
    from opentelemetry import propagate

    current = propagate.get_global_textmap()
    if isinstance(current, BoundaryPropagator):
        return current
    bounded = BoundaryPropagator(current, keys)
    propagate.set_global_textmap(bounded)
    return bounded


def uninstall() -> None:
    from opentelemetry import propagate

    current = propagate.get_global_textmap()
    if isinstance(current, BoundaryPropagator):
        propagate.set_global_textmap(current.inner)
