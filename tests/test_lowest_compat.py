"""agentwatch's pipeline on whichever OpenTelemetry SDK is installed: the newest in the main venv,
1.44 (the lowest end of pyproject.toml's ranges, beside google-adk) in .venv-lowest (`make test-lowest`).

Each fast path that mirrors SDK internals is used where the SDK has them and steps aside, with one
info line, where it does not; nothing fails (AGENTWATCH_STRICT=1 makes a failed step an error here).
"""

from __future__ import annotations

import json
import subprocess
import sys

from agentwatch.distro import tracing

from _service import clean_env

SCRIPT = r'''
import json, logging
import agentwatch
from opentelemetry import _logs, metrics, trace
handle = agentwatch.configure()
tracer = trace.get_tracer("compat")
with tracer.start_as_current_span("work") as span:
    span.set_attribute("n", 1)
    logging.getLogger("compat").warning("a log record")
metrics.get_meter("compat").create_counter("compat.count").add(1)
handle.force_flush()
print(json.dumps({
    "tracer_provider": type(trace.get_tracer_provider()).__name__,
    "logger_provider": type(_logs.get_logger_provider()).__module__,
}))
handle.shutdown()
'''


def _run(tmp_path, **env: str) -> tuple[dict, str]:
    environment = clean_env(AGENTWATCH_EXPORT="local", AGENTWATCH_FILE_DIR=str(tmp_path), OTEL_SERVICE_NAME="compat",
                            OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="system_metrics", **env)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=environment, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_pipeline_sets_up_every_signal_on_this_sdk(tmp_path):
    out, stderr = _run(tmp_path)
    assert out["logger_provider"].startswith("opentelemetry.sdk._logs"), "the log pipeline was set up"
    if tracing.SUPPORTED:
        assert out["tracer_provider"] == "LeanTracerProvider"
        assert "lean span path not used" not in stderr
    else:  # opentelemetry-sdk < 1.45: the stock provider, said once
        assert out["tracer_provider"] == "TracerProvider"
        assert stderr.count("lean span path not used") == 1
    assert "WARNING" not in stderr and "Byte attribute" not in stderr, stderr
    spans = (tmp_path / "traces.jsonl").read_text()
    assert '"work"' in spans
    assert "a log record" in (tmp_path / "logs.jsonl").read_text()


def test_a_log_length_limit_on_an_sdk_that_reads_it_itself_is_said(tmp_path):
    """1.44 cuts log attributes at OTEL_*_LENGTH_LIMIT itself, before the scrubber: a warning says so."""
    _, stderr = _run(tmp_path, OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT="200")
    from agentwatch.distro import configurator

    said = "before the scrubber sees them" in stderr
    assert said is (not configurator._LOGGER_PROVIDER_TAKES_LIMITS), stderr  # pyright: ignore[reportPrivateUsage]
