"""Targets in the script itself (issue 20, item 3): ``__main__:f`` and ``<script stem>:f`` under
``opentelemetry-instrument python app.py``, exporting to the real OTLP receiver.

Before the change the instrumentors looked the names up in the still-empty ``__main__`` (they run from
``sitecustomize``, before the script's first line), warned that the function does not exist and wrapped
nothing.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from _service import BIN, FAST_EXPORT, clean_env
from otlp_receiver import OTLPReceiver

SCRIPT = textwrap.dedent("""\
    import functools
    import json


    def classify(text):
        return ("refund", 0.9) if "money" in text else ("other", 0.4)


    class Kb:
        def search(self, query):
            return [{"id": "doc-1", "text": "x", "score": 0.8}]


    @functools.lru_cache(maxsize=8)
    def lookup(key):
        return key * 2


    def main():
        # A module not imported yet, as uvicorn.run imports its loop and protocol modules before
        # serving: the functions above are wrapped by then.
        import wave  # noqa: F401
        for text in ("give me my money back", "hello"):
            classify(text)
        Kb().search("refunds")
        lookup(1); lookup(1)
        print("RESULT", json.dumps(classify("money")))


    if __name__ == "__main__":
        main()
""")


def _run(tmp_path: Path, script: str = SCRIPT, **env: str) -> tuple[subprocess.CompletedProcess, list[dict], list[dict]]:
    path = tmp_path / "shopapp.py"
    path.write_text(script)
    with OTLPReceiver(protocol="http") as receiver:
        full_env = clean_env(**receiver.env(), **FAST_EXPORT, OTEL_LOGS_EXPORTER="none",
                             AGENTWATCH_ENDPOINT_CHECK="false", **env)
        done = subprocess.run([str(BIN / "opentelemetry-instrument"), "python", str(path)], env=full_env,
                              capture_output=True, text=True, timeout=90, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        spans = receiver.spans()
        metrics = receiver.metrics() if hasattr(receiver, "metrics") else []
    return done, spans, metrics


@pytest.mark.parametrize("module", ["__main__", "shopapp"])
def test_script_functions_are_wrapped_under_opentelemetry_instrument(tmp_path, module):
    done, spans, metrics = _run(
        tmp_path,
        AGENTWATCH_INTENT_TARGETS=f"{module}:classify",
        AGENTWATCH_RAG_TARGETS=f"{module}:Kb.search=kb",
        AGENTWATCH_CACHE_TARGETS=f"{module}:lookup",
    )
    names = sorted(span["name"] for span in spans)
    assert names.count(f"classify_intent {module}.classify") == 3, names
    assert "retrieval kb" in names
    intents = [span["attributes"].get("agentwatch.intent.name") for span in spans if span["name"].startswith("classify_intent")]
    assert sorted(intents) == ["other", "refund", "refund"]
    assert "does not exist" not in done.stderr and "never defined" not in done.stderr, done.stderr
    assert 'RESULT ["refund", 0.9]' in done.stdout  # the app's result is untouched
    cache_points = [m for m in metrics if "cache" in m.get("name", "")]
    assert cache_points, sorted({m.get("name") for m in metrics})


def test_a_target_the_script_never_defines_is_said_once_at_exit(tmp_path):
    done, spans, _ = _run(tmp_path, AGENTWATCH_INTENT_TARGETS="__main__:clasify,__main__:classify")
    assert done.stderr.count("'__main__:clasify' was never defined by the script") == 1, done.stderr
    assert "classify" not in done.stderr.replace("clasify", "")
    assert sum(span["name"].startswith("classify_intent") for span in spans) == 3


FASTAPI_SCRIPT = textwrap.dedent("""\
    import sys

    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()


    def classify(text: str) -> tuple[str, float]:
        return ("refund", 0.95) if "money" in text else ("other", 0.3)


    @app.get("/")
    def root():
        return {"ok": True}


    @app.get("/classify")
    def route(text: str):
        label, confidence = classify(text)
        return {"intent": label, "confidence": confidence}


    if __name__ == "__main__":
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[sys.argv.index("--port") + 1]), log_level="warning")
""")


@pytest.mark.parametrize("module", ["__main__", "app"])
def test_a_fastapi_script_started_with_uvicorn_run(tmp_path, module):
    """The card's own way of starting an app: ``opentelemetry-instrument python app.py``."""
    from _service import start_service

    script = tmp_path / "app.py"
    script.write_text(FASTAPI_SCRIPT)
    with OTLPReceiver(protocol="http") as receiver:
        env = clean_env(**receiver.env(), **FAST_EXPORT, OTEL_LOGS_EXPORTER="none", AGENTWATCH_ENDPOINT_CHECK="false",
                        AGENTWATCH_INTENT_TARGETS=f"{module}:classify")
        service = start_service(tmp_path, env, command=["python", str(script), "--port", "{port}"])
        try:
            assert service.request("GET", "/classify?text=money%20back") == (200, {"intent": "refund", "confidence": 0.95})
        finally:
            service.terminate()
        spans = receiver.spans()
    intents = [span for span in spans if span["name"].startswith("classify_intent")]
    assert len(intents) == 1, service.stderr()
    assert intents[0]["attributes"]["agentwatch.intent.name"] == "refund"
    server = [span for span in spans if span["span_id"] == intents[0]["parent_span_id"]]
    assert server, "the intent span is a child of the request's span"
    assert "does not exist" not in service.stderr() and "not found in time" not in service.stderr()


def test_a_script_that_imports_nothing_new_after_its_definitions(tmp_path):
    """The script calls its functions right after defining them, with no import in between (the
    libraries were imported by the instrumentors already): its top-level statements settle them, and
    the tracing that does it is gone once they are found."""
    script = SCRIPT.replace("import wave  # noqa: F401", "import json  # noqa: F401 - already imported").replace(
        "    main()", "    import sys\n    main()\n    print('TRACE', sys.gettrace())")
    done, spans, _ = _run(tmp_path, script, AGENTWATCH_INTENT_TARGETS="__main__:classify")
    assert sum(span["name"].startswith("classify_intent") for span in spans) == 3, done.stderr
    assert "TRACE None" in done.stdout
    assert "not found in time" not in done.stderr


def test_a_target_bound_by_assignment_without_a_later_import_is_said_at_exit(tmp_path):
    """The honest limit: a name bound by assignment (no ``def`` to watch) and no new import after it."""
    script = SCRIPT.replace("import wave  # noqa: F401", "import json  # noqa: F401 - already imported").replace(
        "class Kb:", "sort_intent = classify\n\n\nclass Kb:").replace(
        "    main()", "    import sys\n    main()\n    print('TRACE', sys.gettrace())")
    done, _spans, _ = _run(tmp_path, script, AGENTWATCH_INTENT_TARGETS="__main__:sort_intent")
    assert done.stderr.count("'__main__:sort_intent' was defined by the script but not found in time") == 1, done.stderr
    assert "TRACE None" in done.stdout
