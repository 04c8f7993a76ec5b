"""With aiohttp installed (chromadb brings it), google-genai's async client sends over aiohttp
instead of httpx2. agentwatch depends on opentelemetry-instrumentation-aiohttp-client so those
requests keep their HTTP CLIENT span under the Gemini span -- and the API key stays out of it.

Runs in ``.venv-chroma`` (``make test-chroma``): a script calling the real async google-genai
SDK against the local fake Gemini, under ``opentelemetry-instrument``, exporting to a local
OTLP receiver. Skipped where aiohttp is not installed, unless ``AGENTWATCH_REQUIRE_CHROMADB=1``.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest

if os.environ.get("AGENTWATCH_REQUIRE_CHROMADB") == "1":
    importlib.import_module("aiohttp")  # must be there: an ImportError fails the run
else:
    pytest.importorskip("aiohttp", reason="tested in .venv-chroma, where chromadb brings aiohttp (make test-chroma)")

from _service import BIN, FAST_EXPORT, clean_env  # noqa: E402
from otlp_receiver import OTLPReceiver  # noqa: E402

pytestmark = [pytest.mark.chromadb, pytest.mark.slow]

KEY = "AIzaSy-aiohttp-SECRET-0123456789"
MODEL = "gemini-2.5-flash"

SCRIPT = textwrap.dedent(
    """
    import asyncio, os
    from google import genai
    from google.genai import types

    async def main():
        client = genai.Client(
            api_key=os.environ["GEMINI_API_KEY"],
            http_options=types.HttpOptions(base_url=os.environ["GEMINI_BASE_URL"]),
        )
        print("TRANSPORT", "aiohttp" if client._api_client._use_aiohttp() else "httpx2", flush=True)
        response = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hello over aiohttp")
        print("TEXT", bool(response.text), flush=True)
        chunks = 0
        async for _chunk in await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="stream it"):
            chunks += 1
        print("CHUNKS", chunks, flush=True)
        await client.aio.aclose()

    asyncio.run(main())
    """
)


def test_async_gemini_calls_over_aiohttp_keep_their_http_span(tmp_path, fake_gemini, monkeypatch):
    script = tmp_path / "call_gemini.py"
    script.write_text(SCRIPT)
    url = fake_gemini.require_key(KEY, monkeypatch)  # shaped like a real key, so a leak would be recognisable
    with OTLPReceiver(protocol="http") as rx:
        env = clean_env(
            **rx.env(),
            OTEL_SERVICE_NAME="aiohttp-genai",
            **FAST_EXPORT,
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="system_metrics",
            GEMINI_API_KEY=KEY,
            GEMINI_BASE_URL=url,
        )
        proc = subprocess.run(
            [str(BIN / "opentelemetry-instrument"), sys.executable, str(script)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        spans = rx.spans()
        raw = b"".join(r.SerializeToString() for r in rx.raw("traces"))

    assert "TRANSPORT aiohttp" in proc.stdout, proc.stdout  # what this test is about
    assert "TEXT True" in proc.stdout and "CHUNKS 0" not in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    gemini = [s for s in spans if s["scope"] == "agentwatch.instrumentors.gemini"]
    assert sorted(s["name"] for s in gemini) == [f"generate_content {MODEL}"] * 2, [s["name"] for s in spans]
    for call in gemini:
        (http,) = [s for s in spans if s["parent_span_id"] == call["span_id"] and s["kind"] == "CLIENT"]
        assert http["scope"] == "opentelemetry.instrumentation.aiohttp_client", http["scope"]
        assert http["name"] == "POST" and http["trace_id"] == call["trace_id"]
        attributes = http["attributes"]
        assert attributes["http.request.method"] == "POST" and attributes["http.response.status_code"] == 200
        assert attributes["url.full"].startswith(url) and "key=" not in attributes["url.full"]
    assert KEY.encode() not in raw, "the API key reached the exported spans"
