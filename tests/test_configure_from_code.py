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


OVERRIDES = textwrap.dedent(
    """
    import json, logging, sys, time
    import agentwatch
    try:
        agentwatch.configure(no_such_setting=1)
    except TypeError as error:
        print("TYPEERROR", error)
    telemetry = agentwatch.configure(service_name="from-code", export="local", file_dir=sys.argv[1],
                                     traces_exporter="otlp_json_file", metrics_exporter="none",
                                     logs_exporter="otlp_json_file", endpoint_check=False,
                                     health_critical=["sqlite", "disk"], log_format="json")
    again = agentwatch.configure(service_name="ignored")
    from opentelemetry import trace
    with trace.get_tracer("t").start_as_current_span("coded work"):
        logging.getLogger("app").warning("from the app")
    print("FLUSHED", telemetry.force_flush(5000))
    print("SPANS_AFTER_FLUSH", sum(1 for _ in open(sys.argv[1] + "/traces.jsonl")))
    print("SHUTDOWN", telemetry.shutdown(5))
    import os
    print("ENV", os.environ["OTEL_SERVICE_NAME"], os.environ["AGENTWATCH_HEALTH_CRITICAL"], os.environ["AGENTWATCH_LOG_FORMAT"])
    """
)


def test_configure_takes_settings_as_keywords_and_returns_a_handle(tmp_path):
    """Keywords are settings (the environment wins); the handle flushes and shuts down (issue 17, item 5)."""
    out = tmp_path / "telemetry"
    script = tmp_path / "overrides.py"
    script.write_text(OVERRIDES)
    env = clean_env(AGENTWATCH_LOG_FORMAT="pretty")  # set by the deployment: wins over log_format="json"
    done = subprocess.run([sys.executable, str(script), str(out)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "TYPEERROR agentwatch.configure() got an unknown setting 'no_such_setting'" in done.stdout
    assert "FLUSHED True" in done.stdout and "SHUTDOWN True" in done.stdout
    assert "SPANS_AFTER_FLUSH 1" in done.stdout  # written by force_flush, before exit
    assert "ENV from-code sqlite,disk pretty" in done.stdout
    assert "called again with settings; the pipeline is already set up" in done.stderr
    line = json.loads((out / "traces.jsonl").read_text().splitlines()[0])
    resource = {a["key"]: next(iter(a["value"].values())) for a in line["resourceSpans"][0]["resource"]["attributes"]}
    assert resource["service.name"] == "from-code"


def test_every_setting_has_one_keyword():
    from agentwatch import _variable_for
    from agentwatch.distro import environment_variables as ev

    for var in ev.VARIABLES:
        assert _variable_for(var.name.removeprefix("OTEL_").removeprefix("AGENTWATCH_").lower()) == var.name
