"""OTLP endpoint resolution, the classic misconfigurations, and a reachability probe.

Shared by the configurator (which warns at start-up) and ``agentwatch doctor``
(which prints the same findings), so both always agree.
"""

from __future__ import annotations

import socket
import threading
from typing import Mapping
from urllib.parse import urlparse

GRPC_PORT = 4317
HTTP_PORT = 4318


def otlp_endpoint(signal: str, protocol: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """The URL the upstream ``otlp`` exporter of ``signal`` will use, and the variable it came from."""
    specific_var = f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    specific = (environ.get(specific_var) or "").strip()
    if specific:
        return specific, specific_var
    general = (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    source = "OTEL_EXPORTER_OTLP_ENDPOINT" if general else "default"
    if protocol == "grpc":
        return general or f"http://localhost:{GRPC_PORT}", source
    base = general or f"http://localhost:{HTTP_PORT}"
    return base.rstrip("/") + f"/v1/{signal}", source


def origin(endpoint: str) -> str:
    """``scheme://host:port`` of an endpoint: one collector, whatever the signal path."""
    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    address = host_port(endpoint)
    if address is None:
        return endpoint
    return f"{parsed.scheme or 'http'}://{address[0]}:{address[1]}"


def host_port(endpoint: str) -> tuple[str, int] | None:
    """``(host, port)`` of an endpoint URL (``host:port`` without scheme accepted), or None."""
    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    try:
        port = parsed.port
    except ValueError:
        return None
    if not parsed.hostname:
        return None
    if port is None:
        port = 443 if parsed.scheme == "https" else 80
    return parsed.hostname, port


def endpoint_mistakes(signal: str, protocol: str, endpoint: str, source: str) -> list[str]:
    """The misconfigurations users hit most (wrong port for the protocol, paths on gRPC...)."""
    problems: list[str] = []
    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    try:
        port = parsed.port
    except ValueError:
        return [f"{source}={endpoint!r} has an invalid port"]
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
    if parsed.scheme not in ("http", "https", ""):
        problems.append(f"{source}={endpoint!r} has scheme {parsed.scheme!r}; use http:// or https://")
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
