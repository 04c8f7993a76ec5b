"""With the official opentelemetry-instrumentation-google-genai installed too, each Gemini call
still gets exactly one span, whichever configuration picks the instrumentation.

The official package (pinned, from the registry, with ``uv pip install --target``) is put on
``PYTHONPATH`` of a subprocess only, so the project's environment never sees it. It declares
google-genai < 3, so on the installed 3.x ``opentelemetry-instrument`` skips it by itself; a
copy whose metadata accepts 3.x stands for "an SDK version it supports", which is when the
distro has to choose. The app instrumenting it by hand is covered too, in both wrapping orders.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from _service import BIN, clean_env

pytestmark = pytest.mark.slow


def _published_admits_installed_genai() -> bool:
    """Whether the official package as published (google-genai < 3) supports the installed google-genai:
    so on the lowest resolution (google-genai 2.x), where there is nothing to fall back from."""
    from importlib.metadata import version

    return int(version("google-genai").split(".")[0]) < 3


needs_genai_3 = pytest.mark.skipif(
    _published_admits_installed_genai(), reason="the official instrumentation as published supports this google-genai 2.x"
)

ROOT = Path(__file__).resolve().parents[1]
UV = BIN / "uv"
PACKAGES = ("opentelemetry-instrumentation-google-genai==1.3b0", "opentelemetry-util-genai==1.3b0")
OURS = "agentwatch.instrumentors.gemini"
OFFICIAL = "opentelemetry.instrumentation.google_genai"

APP = r'''
import json, os, sys
sys.path.insert(0, os.environ["EXAMPLES_DIR"])
from fake_gemini import start_fake_gemini
from google import genai
from google.genai import types
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

mode = os.environ.get("TEST_MODE", "")
provider = trace.get_tracer_provider()
if not isinstance(provider, TracerProvider):  # not under opentelemetry-instrument: set up by hand
    provider = TracerProvider()
    trace.set_tracer_provider(provider)
exporter = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(exporter))


def official():
    from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor
    GoogleGenAiSdkInstrumentor().instrument(skip_dep_check=True)  # it declares google-genai < 3


def ours():
    from agentwatch.instrumentors.gemini import GeminiInstrumentor
    GeminiInstrumentor().instrument()


for step in mode.split(","):
    {"official": official, "ours": ours, "": lambda: None}[step]()

server, url = start_fake_gemini(port=0)
client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))


def weather(city: str) -> str:
    """Get the weather of a city."""
    return f"sunny in {city}"


scenarios = {
    "generate": lambda: client.models.generate_content(model="gemini-2.5-flash", contents="hi"),
    "afc": lambda: client.models.generate_content(
        model="gemini-2.5-flash", contents="Weather in Paris?", config=types.GenerateContentConfig(tools=[weather])),
    "stream": lambda: list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="stream it")),
    "embed": lambda: client.models.embed_content(model="gemini-embedding-001", contents=["a"]),
    "count_tokens": lambda: client.models.count_tokens(model="gemini-2.5-flash", contents="a"),
}
tracer = trace.get_tracer("test")
for name, run in scenarios.items():
    with tracer.start_as_current_span("scenario " + name):
        run()
provider.force_flush()
spans = [
    {"name": s.name, "scope": s.instrumentation_scope.name, "trace": s.context.trace_id,
     "attrs": {k: v for k, v in (s.attributes or {}).items() if k.startswith(("gen_ai.operation", "agentwatch.gen_ai.round"))}}
    for s in exporter.get_finished_spans()
]
print("SPANS=" + json.dumps(spans))
print("EMIT_EVENT=" + str(os.environ.get("OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT")))
server.shutdown()
'''


@pytest.fixture(scope="module")
def official_dirs(tmp_path_factory) -> dict[str, Path]:
    """The official instrumentation as published, and a copy whose metadata accepts google-genai 3.x."""
    base = tmp_path_factory.mktemp("official-genai")
    as_published = base / "as-published"
    subprocess.run(
        [str(UV), "pip", "install", "-q", "--no-deps", "--target", str(as_published), *PACKAGES],
        check=True, timeout=300,
    )
    supported = base / "supported"
    shutil.copytree(as_published, supported)
    (metadata,) = supported.glob("opentelemetry_instrumentation_google_genai-*.dist-info/METADATA")
    text = metadata.read_text()
    assert "google-genai<3," in text, "the pinned release declares google-genai < 3"
    metadata.write_text(text.replace("google-genai<3,", "google-genai<4,"))
    return {"as-published": as_published, "supported": supported}


def _run(tmp_path: Path, path: Path, *, wrapper: bool, mode: str = "", **env: str) -> tuple[dict, str, str]:
    script = tmp_path / "gemini_app.py"
    script.write_text(APP)
    environment = clean_env(
        PYTHONPATH=str(path),
        EXAMPLES_DIR=str(ROOT / "examples"),
        TEST_MODE=mode,
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="system_metrics",
        **env,
    )
    command = [str(BIN / "opentelemetry-instrument")] if wrapper else []
    proc = subprocess.run([*command, sys.executable, str(script)], env=environment, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (line,) = [l for l in proc.stdout.splitlines() if l.startswith("SPANS=")]
    emit = next(l for l in proc.stdout.splitlines() if l.startswith("EMIT_EVENT="))
    return _by_scenario(json.loads(line.removeprefix("SPANS="))), emit.removeprefix("EMIT_EVENT="), proc.stderr


def _by_scenario(spans: list[dict]) -> dict:
    roots = {s["trace"]: s["name"].removeprefix("scenario ") for s in spans if s["name"].startswith("scenario ")}
    out: dict = defaultdict(lambda: {"calls": [], "tools": []})
    for span in spans:
        if not span["attrs"].get("gen_ai.operation.name") or "agentwatch.gen_ai.round_trip" in span["attrs"]:
            continue  # HTTP spans, scenario roots, agentwatch's per-round-trip children
        kind = "tools" if span["attrs"]["gen_ai.operation.name"] == "execute_tool" else "calls"
        out[roots[span["trace"]]][kind].append(span["scope"])
    return out


def _assert_one_span_per_call(found: dict, owner: str) -> None:
    expected = {
        "generate": [owner], "afc": [owner], "stream": [owner], "embed": [owner],
        "count_tokens": [OURS],  # the official one does not instrument count_tokens
    }
    assert {name: entry["calls"] for name, entry in found.items()} == expected, dict(found)
    assert found["afc"]["tools"] == [owner], "one execute_tool span for the one tool run"
    assert all(not entry["tools"] for name, entry in found.items() if name != "afc")


# --------------------------------------------------------------------------- opentelemetry-instrument
def test_default_supported_sdk_distro_skips_the_official_one(tmp_path, official_dirs):
    found, emit, stderr = _run(tmp_path, official_dirs["supported"], wrapper=True)
    _assert_one_span_per_call(found, OURS)
    assert emit == "None", "the official instrumentor never ran (it would have overwritten this variable)"
    (line,) = [l for l in stderr.splitlines() if "Gemini:" in l]
    assert "opentelemetry-instrumentation-google-genai 1.3b0 is installed too" in line
    assert "AGENTWATCH_GENAI_INSTRUMENTATION=official picks the official one" in line


def test_default_sdk_3_the_loader_skips_it_and_we_say_so(tmp_path, official_dirs):
    found, emit, stderr = _run(tmp_path, official_dirs["as-published"], wrapper=True)
    _assert_one_span_per_call(found, OURS)
    assert emit == "None"
    assert "is installed too; agentwatch's Gemini instrumentor is used" in stderr


def test_official_chosen_agentwatch_steps_aside(tmp_path, official_dirs):
    found, emit, stderr = _run(
        tmp_path, official_dirs["supported"], wrapper=True, AGENTWATCH_GENAI_INSTRUMENTATION="official"
    )
    _assert_one_span_per_call(found, OFFICIAL)
    assert emit == "true"  # the official one ran (and set it, as it always does)
    (line,) = [l for l in stderr.splitlines() if "Gemini:" in l]
    assert "AGENTWATCH_GENAI_INSTRUMENTATION=official, so opentelemetry-instrumentation-google-genai 1.3b0" in line


@needs_genai_3
def test_official_chosen_but_not_loadable_falls_back_with_a_warning(tmp_path, official_dirs):
    found, _, stderr = _run(
        tmp_path, official_dirs["as-published"], wrapper=True, AGENTWATCH_GENAI_INSTRUMENTATION="official"
    )
    _assert_one_span_per_call(found, OURS)
    (line,) = [l for l in stderr.splitlines() if "AGENTWATCH_GENAI_INSTRUMENTATION=official, but" in l]
    assert "WARNING" in line and "google-genai<3,>=1.32.0 and google-genai 3." in line
    assert line.endswith("agentwatch's Gemini instrumentor is used")


def test_app_instruments_the_official_one_by_hand(tmp_path, official_dirs):
    found, _, stderr = _run(tmp_path, official_dirs["as-published"], wrapper=True, mode="official")
    _assert_one_span_per_call(found, OFFICIAL)
    (line,) = [l for l in stderr.splitlines() if "instrumented outside agentwatch's loader" in l]
    assert "WARNING" in line and "Models.generate_content" in line


# --------------------------------------------------------------------------- both by hand, either order
@pytest.mark.parametrize("mode", ["ours,official", "official,ours"])
def test_both_by_hand_in_either_order(tmp_path, official_dirs, mode):
    found, _, stderr = _run(tmp_path, official_dirs["as-published"], wrapper=False, mode=mode)
    _assert_one_span_per_call(found, OFFICIAL)
    assert Counter("steps aside" in l for l in stderr.splitlines())[True] == 1


def test_doctor_says_which_one_runs(tmp_path, official_dirs):
    def doctor(path: Path, **env: str) -> str:
        proc = subprocess.run(
            [str(BIN / "agentwatch"), "doctor"], env=clean_env(PYTHONPATH=str(path), **env),
            capture_output=True, text=True, timeout=60,
        )
        return next(l for l in proc.stdout.splitlines() if l.startswith("  Gemini:"))

    assert "is installed too; agentwatch's Gemini instrumentor is used" in doctor(official_dirs["supported"])
    assert "=official, so opentelemetry-instrumentation-google-genai 1.3b0 instruments" in doctor(
        official_dirs["supported"], AGENTWATCH_GENAI_INSTRUMENTATION="official"
    )
    if not _published_admits_installed_genai():  # google-genai 3.x: the published one declares < 3
        assert "does not load opentelemetry-instrumentation-google-genai 1.3b0" in doctor(
            official_dirs["as-published"], AGENTWATCH_GENAI_INSTRUMENTATION="official"
        )
    assert "is not installed" in doctor(tmp_path)
