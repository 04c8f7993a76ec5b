"""``OTEL_SDK_DISABLED=true`` under ``opentelemetry-instrument``: agentwatch's recording-only instrumentors are
not loaded (nothing they record would go anywhere; their wrappers would only cost the app), while what carries
trace context or changes what the app sees stays: the contrib instrumentors, agentwatch's web layer and MCP."""

from __future__ import annotations

import json
import subprocess
import textwrap
from importlib.metadata import entry_points

import pytest

from agentwatch.distro.distro import RECORDING_ONLY
from tests._service import BIN, clean_env

# agentwatch's instrumentors that carry trace context (or change responses), so they load over a no-op SDK too.
CARRIES_CONTEXT = {"agentwatch_web", "agentwatch_mcp"}


def _agentwatch_instrumentors() -> set[str]:
    return {ep.name for ep in entry_points(group="opentelemetry_instrumentor") if ep.value.startswith("agentwatch.")}


def test_every_agentwatch_instrumentor_is_either_recording_only_or_carries_context():
    """A new entry point must be put on one side: this fails until it is."""
    names = _agentwatch_instrumentors()
    assert names == RECORDING_ONLY | CARRIES_CONTEXT, (names ^ (RECORDING_ONLY | CARRIES_CONTEXT))
    assert not RECORDING_ONLY & CARRIES_CONTEXT


PROBE = textwrap.dedent(
    """
    import json, sqlite3
    import google.genai.models as models
    from agentwatch.instrumentors.gemini import GeminiInstrumentor
    from agentwatch.instrumentors.intent import AgentwatchIntentInstrumentor
    from agentwatch.instrumentors.sqlite3 import AgentwatchSQLite3Instrumentor
    from agentwatch.instrumentors.web import AgentwatchWebInstrumentor

    print(json.dumps({
        "gemini": GeminiInstrumentor().is_instrumented_by_opentelemetry,
        "generate_content_wrapped": hasattr(vars(models.Models)["generate_content"], "__wrapped__"),
        "intent": AgentwatchIntentInstrumentor().is_instrumented_by_opentelemetry,
        "web": AgentwatchWebInstrumentor().is_instrumented_by_opentelemetry,
        "agentwatch_sqlite3": AgentwatchSQLite3Instrumentor().is_instrumented_by_opentelemetry,
        "sqlite3_connect_wrapped": hasattr(sqlite3.connect, "__wrapped__"),
    }))
    """
)


@pytest.mark.parametrize("disabled", [False, True])
def test_opentelemetry_instrument_loads_only_what_carries_context_when_the_sdk_is_off(tmp_path, disabled):
    pytest.importorskip("opentelemetry.instrumentation.sqlite3")
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = clean_env(AGENTWATCH_EXPORT="none", OTEL_SDK_DISABLED=str(disabled).lower(),
                    AGENTWATCH_INTENT_TARGETS="json:loads")
    proc = subprocess.run([str(BIN / "opentelemetry-instrument"), str(BIN / "python"), str(script)], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["web"] is True and seen["sqlite3_connect_wrapped"] is True  # context carriers load either way
    if disabled:
        assert seen["gemini"] is False and seen["generate_content_wrapped"] is False
        assert seen["intent"] is False
        assert seen["agentwatch_sqlite3"] is False  # the contrib sqlite3 instrumentor wraps connect instead
        assert "recording-only instrumentors are not loaded" in proc.stderr
    else:
        assert seen["gemini"] is True and seen["generate_content_wrapped"] is True
        assert seen["intent"] is True and seen["agentwatch_sqlite3"] is True
        assert "recording-only" not in proc.stderr
