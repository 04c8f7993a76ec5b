"""agentwatch's own output never prints URL credentials, query tokens or header values; its local
telemetry files are the owner's only (issue 16, item 6)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from _service import BIN, clean_env
from agentwatch.distro._diagnostics import hide_credentials
from agentwatch.distro.file_exporter import OTLPJsonFileSpanExporter

SECRETS = ("s3cr%40t", "s3cret", "tok123", "abcsecret123", "keysecret456", "pw2", "alice", "bob:")
ENV = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://alice:s3cr%40t@127.0.0.1:9/otlp?token=tok123&x=1",
    "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer abcsecret123,x-api-key=keysecret456",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://bob:pw2@127.0.0.1:4317",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://alice:s3cret@127.0.0.1:notaport/v1/metrics",
}


@pytest.mark.parametrize(("text", "shown"), [
    ("http://u:p@h:1/x", "http://***@h:1/x"),
    ("see https://user@example.com/path?sig=abc&v=2#frag and grpc://a:b@c", "see https://***@example.com/path?sig=***&v=***#frag and grpc://***@c"),
    ("'http://u:p%40ss@h'", "'http://***@h'"),
    ("mail bob@example.com about x=1", "mail bob@example.com about x=1"),  # not a URL: left alone
    ("no credentials at http://h:4318/v1/traces", "no credentials at http://h:4318/v1/traces"),
])
def test_hide_credentials(text, shown):
    assert hide_credentials(text) == shown


def _without_secrets(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, (leaked, text)


def test_doctor_prints_no_credentials():
    env = clean_env(**ENV, AGENTWATCH_ENDPOINT_CHECK="false")
    done = subprocess.run([str(BIN / "agentwatch"), "doctor"], env=env, capture_output=True, text=True, timeout=90)
    report = done.stdout + done.stderr
    assert "127.0.0.1:9" in report and "***@" in report  # the endpoint is still shown, without its userinfo
    _without_secrets(report)


def test_start_up_and_export_warnings_print_no_credentials(tmp_path):
    script = tmp_path / "app.py"
    script.write_text("import time; time.sleep(1.5)\n")
    env = clean_env(**ENV, AGENTWATCH_SHUTDOWN_TIMEOUT="0.5")
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), "python", str(script)], env=env,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "4317 is the OTLP/gRPC port" in done.stderr  # the misconfiguration is still explained
    _without_secrets(done.stdout + done.stderr)


def test_local_telemetry_files_are_the_owners_only(tmp_path):
    old = os.umask(0)  # whatever the process umask, the files are created private
    try:
        directory = tmp_path / "telemetry"
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(str(directory))))
        provider.get_tracer("t").start_span("s").end()
        provider.shutdown()
    finally:
        os.umask(old)
    files = list(Path(directory).iterdir())
    assert files
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
