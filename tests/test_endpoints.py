"""``agentwatch.distro.endpoints``: gRPC targets that are not host:port URLs (``unix:``, ``unix-abstract:``,
``dns:``) are never read as a host named ``unix`` and never probed over TCP."""

from __future__ import annotations

import pytest

from agentwatch.distro import _diagnostics, endpoints

GRPC_TARGETS = [
    "unix:/run/otel.sock",
    "unix:///run/otel.sock",
    "UNIX:/run/otel.sock",
    "unix-abstract:otel",
    "unix-abstract:4317",
    "dns:collector:4317",
    "dns:///collector:4317",
    "dns://8.8.8.8/collector:4317",
]


@pytest.mark.parametrize("target", GRPC_TARGETS)
def test_grpc_targets_have_no_tcp_address(target):
    assert endpoints.is_grpc_target(target)
    assert endpoints.host_port(target) is None  # was ('unix', 80) for unix:/run/otel.sock
    assert endpoints.origin(target) == target
    assert endpoints.check_endpoint(target, "grpc") == (target, "")
    assert endpoints.endpoint_mistakes("traces", "grpc", target, "OTEL_EXPORTER_OTLP_ENDPOINT", {}) == []
    ok, error = endpoints.is_reachable(target)
    assert not ok and error == "unparsable endpoint"


@pytest.mark.parametrize(
    "endpoint, address, origin",
    [
        ("collector:4317", ("collector", 4317), "http://collector:4317"),
        ("http://collector:4318/v1/traces", ("collector", 4318), "http://collector:4318"),
        ("https://collector.example/otlp", ("collector.example", 443), "https://collector.example:443"),
        ("http://unix:4318/v1/logs", ("unix", 4318), "http://unix:4318"),  # a host named unix is a host
        ("http://[::1]:4318", ("::1", 4318), "http://::1:4318"),
    ],
)
def test_host_port_and_origin_of_urls(endpoint, address, origin):
    assert not endpoints.is_grpc_target(endpoint)
    assert endpoints.host_port(endpoint) == address
    assert endpoints.origin(endpoint) == origin


def test_scheme_less_host_port_still_gets_the_tls_hint():
    problems = endpoints.endpoint_mistakes("traces", "grpc", "collector:4317", "OTEL_EXPORTER_OTLP_ENDPOINT", {})
    assert len(problems) == 1 and "uses TLS" in problems[0]


def _settings(monkeypatch, env):
    from agentwatch.distro.settings import load_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _diagnostics.reset()
    return load_settings(env, argv=["app.py"])


def test_a_unix_grpc_target_is_neither_probed_nor_warned_about(monkeypatch):
    """With the endpoint check on, only the TCP collector is probed; the unix socket gets no
    "cannot export" line and no failing health record (which would also shut it first at exit)."""
    from agentwatch.distro import configurator, exporters

    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "unix:/run/otel.sock",
        "AGENTWATCH_ENDPOINT_CHECK": "true",
        "AGENTWATCH_EXPORT": "otlp",
    }
    loaded = _settings(monkeypatch, env)
    assert loaded.otlp_endpoints["logs"] == "unix:/run/otel.sock"
    probed: list[dict[str, list[str]]] = []
    real_probe = endpoints.probe_in_background

    def probe_now(to_probe, on_unreachable):
        probed.append({k: list(v) for k, v in to_probe.items()})
        thread = real_probe(to_probe, on_unreachable)
        thread.join(5)
        return thread

    monkeypatch.setattr(endpoints, "probe_in_background", probe_now)
    monkeypatch.setattr(exporters, "_health", {})
    configurator._check_endpoints(loaded)
    assert probed == [{"http://127.0.0.1:9": ["traces", "metrics"]}]
    messages = _diagnostics.messages()
    assert not [m for m in messages if "unix" in m], messages
    assert [h.destination for h in exporters.all_health()] == ["the OTLP collector at http://127.0.0.1:9"]


def test_a_unix_grpc_target_alone_starts_no_probe(monkeypatch):
    from agentwatch.distro import configurator

    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "unix:/run/otel.sock",
        "AGENTWATCH_ENDPOINT_CHECK": "true",
        "AGENTWATCH_EXPORT": "otlp",
    }
    loaded = _settings(monkeypatch, env)
    calls = []
    monkeypatch.setattr(endpoints, "probe_in_background", lambda *args: calls.append(args))
    configurator._check_endpoints(loaded)
    assert calls == []
    assert _diagnostics.messages() == []


def test_doctor_does_not_probe_a_unix_grpc_target():
    from agentwatch.doctor import run

    text = run({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "unix:/run/otel.sock"})
    assert "-> unix:/run/otel.sock (from OTEL_EXPORTER_OTLP_ENDPOINT) (not a TCP address; not checked)" in text
    assert "NOT reachable" not in text
