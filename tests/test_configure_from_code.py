"""``agentwatch.configure()`` runs the same setup as the wrapper, for apps that cannot use it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from _service import clean_env

SCRIPT = textwrap.dedent(
    """
    import asyncio, sqlite3, logging
    import agentwatch
    agentwatch.configure()
    agentwatch.configure()  # idempotent

    import httpx
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int):
        conn = sqlite3.connect(":memory:")
        conn.execute("SELECT 1")
        logging.getLogger("app").warning("served item")
        return {"id": item_id}

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/items/7")
            print("STATUS", response.status_code)

    asyncio.run(main())
    """
)


def test_configure_from_code_instruments_like_the_wrapper(tmp_path):
    out = tmp_path / "telemetry"
    env = clean_env(
        OTEL_TRACES_EXPORTER="otlp_json_file",
        OTEL_LOGS_EXPORTER="otlp_json_file",
        OTEL_METRICS_EXPORTER="none",
        AGENTWATCH_FILE_DIR=str(out),
        OTEL_SERVICE_NAME="coded",
    )
    script = tmp_path / "coded_app.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "STATUS 200" in proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    spans = []
    for line in (out / "traces.jsonl").read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            resource = {a["key"]: next(iter(a["value"].values())) for a in rs["resource"]["attributes"]}
            for ss in rs["scopeSpans"]:
                spans += [(s["name"], resource) for s in ss["spans"]]
    names = [n for n, _ in spans]
    assert "GET /items/{item_id}" in names and "SELECT" in names, names
    assert not [n for n in names if n.endswith(("http send", "http receive"))]
    assert {r["telemetry.distro.name"] for _, r in spans} == {"agentwatch"}
    assert {r["service.name"] for _, r in spans} == {"coded"}
    logs = (out / "logs.jsonl").read_text()
    assert "served item" in logs
