"""What operators need is kept: the keep list, key rules by words, SQL placeholders, the settings.

Each kept value is still scanned by the detectors that make sense for it (an e-mail address in a user
agent goes); the end user's address (``client.address``, ``network.peer.address`` on server spans)
is never kept. See docs/privacy.md, "What is deliberately kept".
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from agentwatch.distro.scrub import Scrubber, scrubber_for
from agentwatch.distro.scrub.rules import DEFAULT_KEEP, parse_keep
from agentwatch.distro.settings import load_settings

S = Scrubber()
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("user_agent.original", CHROME),
        ("http.user_agent", CHROME),
        ("server.address", "10.20.30.40"),
        ("server.address", "2001:db8::10"),
        ("network.local.address", "172.16.4.9"),
        ("service.version", "1.2.3.4"),
        ("os.version", "10.0.22631.4602"),
        ("app.build_version", "2024.12.05.1234"),
        ("agentwatch.health.check.name", "postgres 10.0.0.5:5432"),
        ("auth.method", "oauth2"),
        ("password_reset_count", "3"),
        ("password_reset_count", 3),
        ("api_key.type", "restricted"),
        ("token.expires", "2026-12-05T14:15:00Z"),
        ("db.query.text", "UPDATE users SET password = ?, token = $1 WHERE id = :2"),
        ("db.statement", "INSERT INTO sessions (session_id, token) VALUES (%s, %s)"),
    ],
)
def test_kept(key, value):
    assert S.scrub_value(value, key) == value
    assert S.scrub_attributes({key: value}) == {key: value}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        # the end user's address is personal data wherever it is
        ("client.address", "198.51.100.24", "[REDACTED:ipv4]"),
        ("http.client_ip", "198.51.100.24", "[REDACTED:ipv4]"),
        # kept values are still scanned by the detectors that make sense for them
        ("user_agent.original", "bot (+mailto:ops@example.com)", "bot (+mailto:[REDACTED:email])"),
        ("server.address", "https://admin:hunter2@10.1.1.1/", "https://[REDACTED:url_credentials]@10.1.1.1/"),
        ("service.version", "1.2.3 by jane@example.com", "1.2.3 by [REDACTED:email]"),
        # words, not substrings: these still hold secrets
        ("auth.header", "Zm9vOmJhcg-Qx81", "[REDACTED:auth]"),
        ("password_hash", "pbkdf2-abc123def", "[REDACTED:password]"),
        ("x-reset-password", "hunter2", "[REDACTED:password]"),
        ("db.query.text", "SELECT 1 WHERE password = 'hunter2'", "SELECT 1 WHERE password = '[REDACTED:password]'"),
    ],
)
def test_still_scrubbed(key, value, expected):
    assert S.scrub_value(value, key) == expected
    assert S.scrub_attributes({key: value}) == {key: expected}


def _span(kind: SpanKind, scrubber: Scrubber = S) -> dict:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = {"network.peer.address": "198.51.100.23", "server.address": "10.0.0.9", "client.address": "198.51.100.7"}
    provider.get_tracer("t").start_span("s", kind=kind, attributes=attributes).end()
    return dict(scrubber.scrub_spans(exporter.get_finished_spans())[0].attributes)


def test_the_peer_address_is_kept_on_client_spans_only():
    """On a client span the peer is the server called; on a server span it is the end user."""
    assert _span(SpanKind.CLIENT) == {"network.peer.address": "198.51.100.23", "server.address": "10.0.0.9",
                                      "client.address": "[REDACTED:ipv4]"}
    assert _span(SpanKind.SERVER) == {"network.peer.address": "[REDACTED:ipv4]", "server.address": "10.0.0.9",
                                      "client.address": "[REDACTED:ipv4]"}


def test_health_check_series_stay_apart():
    reader = InMemoryMetricReader()
    gauge = MeterProvider(metric_readers=[reader]).get_meter("t").create_counter("agentwatch.health.check.runs")
    gauge.add(1, {"agentwatch.health.check.name": "postgres 10.0.0.5:5432"})
    gauge.add(1, {"agentwatch.health.check.name": "postgres 10.0.0.6:5432"})
    data = S.scrub_metrics_safely(reader.get_metrics_data())
    points = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    assert len(points) == 2


def test_settings_adjust_both_lists():
    settings = load_settings({
        "AGENTWATCH_SCRUB_KEEP_ATTRIBUTES": "deploy.host=ip,*.build_id=phone+ipv4,-user_agent.original",
        "AGENTWATCH_SCRUB_NOT_SECRET_KEYS": "auth_realm,x-token-*",
    })
    assert settings.scrub.keep["deploy.host"] == (frozenset({"ipv4", "ipv6"}), False)
    assert "user_agent.original" not in settings.scrub.keep and "server.address" in settings.scrub.keep
    scrubber = scrubber_for(settings)
    assert scrubber is not None
    # Off the keep list, the user agent is scanned in full: an address in it goes (its product
    # versions are kept by the IPv4 detector itself, as in any free text).
    assert scrubber.scrub_attributes({"deploy.host": "10.0.0.1", "ci.build_id": "1.2.3.4", "auth_realm": "corp",
                                      "x-token-audience": "api", "user_agent.original": CHROME + " via 10.20.30.40"}) == {
        "deploy.host": "10.0.0.1", "ci.build_id": "1.2.3.4", "auth_realm": "corp", "x-token-audience": "api",
        "user_agent.original": CHROME + " via [REDACTED:ipv4]",
    }
    assert Scrubber().scrub_attributes({"user_agent.original": CHROME + " via 10.20.30.40"}) == {
        "user_agent.original": CHROME + " via 10.20.30.40"}  # on the list: kept whole
    # not a secret by name, still scanned by content
    assert scrubber.scrub_value("jane@example.com", "auth_realm") == "[REDACTED:email]"


def test_bad_keep_entries_are_reported():
    added, removed, problems = parse_keep("a=ip,b,c=nosuch,-d,=ip, e = email ")
    assert added == {"a": (frozenset({"ipv4", "ipv6"}), False), "e": (frozenset({"email"}), False)}
    assert removed == ["d"] and len(problems) == 3


def test_the_built_in_list_is_documented():
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "privacy.md").read_text()
    for key in DEFAULT_KEEP:
        assert f"`{key}`" in page, key
