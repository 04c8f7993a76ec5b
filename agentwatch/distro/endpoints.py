"""OTLP endpoint resolution and validation, the classic misconfigurations, and a reachability probe.

An endpoint value that cannot be used (garbage, a scheme other than http/https,
a bad port, no host) is replaced when the settings are read -- one warning
naming the variable, the value and the URL used instead -- and the exporters are
given the resolved URL explicitly, so they never fall back to reading the bad
value from the environment themselves. Shared by the settings, the
configurator (which warns about legal but likely wrong values at start-up) and
``agentwatch doctor``, so all three agree.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Mapping
from urllib.parse import urlparse

from agentwatch._records import Record
from agentwatch.distro import environment_variables as ev

GRPC_PORT = 4317
HTTP_PORT = 4318


GENERAL_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
# gRPC targets that are not host:port URLs, passed to grpc as they are (the OTLP gRPC exporter does too).
_GRPC_TARGET_SCHEMES = ("unix", "unix-abstract", "dns")
_HOST = re.compile(r"[A-Za-z0-9._~%-]+")


def is_grpc_target(value: str) -> bool:
    """Whether ``value`` is a gRPC target that is not a host:port URL (``unix:/path``, ``unix:///path``,
    ``unix-abstract:name``, ``dns:host``, ``dns:///host:port``): passed to grpc as it is, never probed over TCP."""
    return value.partition(":")[0].lower() in _GRPC_TARGET_SCHEMES


def _parse(endpoint: str):
    """``urlparse`` of an endpoint, ``host:port`` without a scheme read as ``http://host:port``."""
    return urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")


class EndpointProblem(Record):
    """An endpoint value that could not be used as given, and what is used instead."""

    __slots__ = ("variable", "value", "reason", "used", "unusable")
    variable: str
    value: str
    reason: str
    used: str
    unusable: bool  # False: the value was only completed (``http://`` added) and is used

    def __init__(self, variable: str, value: str, reason: str, used: str, unusable: bool = True) -> None:
        self._set(variable=variable, value=value, reason=reason, used=used, unusable=unusable)

    def message(self) -> str:
        return f"{self.variable}={self.value!r} {self.reason}; using {self.used!r} instead"


def _bad_url(url: str) -> str | None:
    """Why ``url`` (with an http/https scheme) cannot be connected to, or None."""
    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError:
        port = 0
    if port == 0:
        return "its port is not a number from 1 to 65535"
    host = parsed.hostname or ""
    if not host or not (_HOST.fullmatch(host) or ":" in host):  # ':' only in a bracketed IPv6 address
        return "it has no valid host name"
    return None


def check_endpoint(value: str, protocol: str) -> tuple[str | None, str]:
    """Whether an endpoint value can be used: ``(value, "")``; ``(repaired, why)`` when it only lacked
    its ``http://`` scheme; ``(None, why)`` when it cannot be used at all."""
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return None, "is not a usable OTLP endpoint (it contains spaces or control characters)"
    scheme, sep, _rest = value.partition("://")
    grpc = protocol == "grpc"
    if grpc and is_grpc_target(value):
        return value, ""  # unix:/path, unix:///path, dns:host...
    if not sep:
        why = _bad_url("http://" + value)
        if why is not None:
            return None, f"is not a usable OTLP endpoint (no http:// or https:// scheme, and {why})"
        if grpc:
            return value, ""  # host:port is a gRPC target (TLS unless OTEL_EXPORTER_OTLP_INSECURE=true)
        return "http://" + value, "has no scheme (OTLP/HTTP needs http:// or https://)"
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        return None, f"is not a usable OTLP endpoint (scheme {scheme!r}: use http:// or https://)"
    why = _bad_url(value)
    if why is not None:
        return None, f"is not a usable OTLP endpoint ({why})"
    return value, ""


def resolve_otlp_endpoint(signal: str, protocol: str, environ: Mapping[str, str]) -> tuple[str, str, list[EndpointProblem]]:
    """The URL the ``otlp`` exporter of ``signal`` is given, the variable it came from, and the values that
    could not be used as they were (each falls back: a per-signal variable to what the base endpoint gives,
    the base endpoint to the default)."""
    grpc = protocol == "grpc"
    default = f"http://localhost:{GRPC_PORT if grpc else HTTP_PORT}"

    def full(base: str) -> str:
        return base if grpc else base.rstrip("/") + f"/v1/{signal}"

    problems: list[EndpointProblem] = []
    base, source = default, "default"
    raw = (environ.get(GENERAL_VARIABLE) or "").strip()
    if raw:
        usable, why = check_endpoint(raw, protocol)
        if usable is None:
            problems.append(EndpointProblem(GENERAL_VARIABLE, raw, why, default))
            source = f"default ({GENERAL_VARIABLE} unusable)"
        else:
            if why:
                problems.append(EndpointProblem(GENERAL_VARIABLE, raw, why, usable, unusable=False))
            base, source = usable, GENERAL_VARIABLE
    specific_var = f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    raw = (environ.get(specific_var) or "").strip()
    if raw:
        usable, why = check_endpoint(raw, protocol)
        if usable is None:
            problems.append(EndpointProblem(specific_var, raw, why, full(base)))
        else:
            if why:
                problems.append(EndpointProblem(specific_var, raw, why, usable, unusable=False))
            return usable, specific_var, problems
    return full(base), source, problems


def otlp_endpoint(signal: str, protocol: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """The URL the ``otlp`` exporter of ``signal`` is given, and the variable it came from."""
    url, source, _ = resolve_otlp_endpoint(signal, protocol, environ)
    return url, source


def origin(endpoint: str) -> str:
    """``scheme://host:port`` of an endpoint: one collector, whatever the signal path (a gRPC target as it is)."""
    parsed = None if is_grpc_target(endpoint) else _parse(endpoint)
    address = None if parsed is None else _address(parsed)
    if parsed is None or address is None:
        return endpoint
    return f"{parsed.scheme or 'http'}://{address[0]}:{address[1]}"


def host_port(endpoint: str) -> tuple[str, int] | None:
    """``(host, port)`` of an endpoint URL (``host:port`` without scheme accepted), or None (also for a
    gRPC target such as ``unix:/run/otel.sock``, which is no TCP address)."""
    if is_grpc_target(endpoint):
        return None
    return _address(_parse(endpoint))


def _address(parsed) -> tuple[str, int] | None:
    try:
        port = parsed.port
    except ValueError:
        return None
    if not parsed.hostname:
        return None
    if port is None:
        port = 443 if parsed.scheme == "https" else 80
    return parsed.hostname, port


def endpoint_mistakes(
    signal: str, protocol: str, endpoint: str, source: str, environ: Mapping[str, str] | None = None
) -> list[str]:
    """The misconfigurations users hit most (wrong port for the protocol, paths on gRPC, TLS by accident...)."""
    problems: list[str] = []
    if protocol == "grpc" and is_grpc_target(endpoint):
        return []  # unix:/path, dns:host...: no host:port URL to check (and http://unix:/... is no fix)
    if protocol == "grpc" and environ is not None and "://" not in endpoint:
        # The gRPC exporter speaks TLS unless the scheme is http:// or *_INSECURE=true; a bare
        # host:port to a plaintext collector then fails every export with a handshake error.
        insecure = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_INSECURE") or environ.get(ev.OTEL_EXPORTER_OTLP_INSECURE)
        if insecure is None:
            problems.append(
                f"gRPC export to {endpoint} ({source}) uses TLS, as there is no scheme and "
                f"OTEL_EXPORTER_OTLP_INSECURE is unset: for a collector without TLS write http://{endpoint} "
                f"or set OTEL_EXPORTER_OTLP_INSECURE=true (write https://{endpoint} to say TLS is meant)"
            )
    parsed = _parse(endpoint)
    try:
        port = parsed.port
    except ValueError:  # resolve_otlp_endpoint never hands out such a URL
        return []
    path = parsed.path or ""
    if protocol == "grpc":
        if port == HTTP_PORT:
            problems.append(
                f"the gRPC {signal} exporter points at {endpoint} ({source}), but {HTTP_PORT} is the OTLP/HTTP "
                f"port: use port {GRPC_PORT}, or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
            )
        if path.startswith("/v1/"):
            problems.append(
                f"the gRPC {signal} exporter points at a URL with the HTTP path {path!r} ({source}={endpoint}): "
                f"gRPC endpoints take no path; use e.g. http://{parsed.hostname}:{GRPC_PORT}, or set "
                "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
            )
    else:
        if port == GRPC_PORT:
            problems.append(
                f"the HTTP {signal} exporter points at {endpoint} ({source}), but {GRPC_PORT} is the OTLP/gRPC "
                f"port: use port {HTTP_PORT}, or set OTEL_EXPORTER_OTLP_PROTOCOL=grpc"
            )
        if source == "OTEL_EXPORTER_OTLP_ENDPOINT" and path.count("/v1/") > 1:
            problems.append(
                f"OTEL_EXPORTER_OTLP_ENDPOINT already ends in a signal path, so the {signal} exporter posts to "
                f"{endpoint}: give the base URL (e.g. http://{parsed.hostname}:{port}) or use "
                f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT for a full URL"
            )
        elif source.endswith(f"_{signal.upper()}_ENDPOINT") and not path.rstrip("/").endswith(f"/v1/{signal}"):
            problems.append(
                f"{source}={endpoint!r} is used as the full URL, but it does not end in /v1/{signal}: "
                "the collector will answer 404"
            )
    return problems


def is_reachable(endpoint: str, timeout: float = 0.5) -> tuple[bool, str]:
    """Whether a TCP connection to the endpoint's host and port succeeds, and the error if not."""
    address = host_port(endpoint)
    if address is None:
        return False, "unparsable endpoint"
    try:
        with socket.create_connection(address, timeout=timeout):
            return True, ""
    except OSError as error:
        return False, error.strerror or str(error) or type(error).__name__


def probe_in_background(endpoints: dict[str, list[str]], on_unreachable) -> threading.Thread:
    """Check each endpoint once on a daemon thread; call ``on_unreachable(endpoint, signals, error)``."""

    def run() -> None:
        for endpoint, signals in endpoints.items():
            ok, error = is_reachable(endpoint)
            if not ok:
                on_unreachable(endpoint, signals, error)

    thread = threading.Thread(target=run, name="agentwatch-endpoint-check", daemon=True)
    thread.start()
    return thread
