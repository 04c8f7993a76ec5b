"""Every environment variable agentwatch reads, as a named constant.

This module is the single source of the README's configuration table
(``tests/test_readme.py`` checks that the two agree). Standard ``OTEL_*``
variables are listed where agentwatch changes their default or reads them
itself; the rest of the ``OTEL_*`` family keeps its upstream meaning.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvVar:
    """One documented variable: its name, its default as a user sees it, its meaning."""

    name: str
    default: str
    meaning: str


VARIABLES: list[EnvVar] = []


def _var(name: str, default: str, meaning: str) -> str:
    VARIABLES.append(EnvVar(name, default, meaning))
    return name


# --- distro selection -------------------------------------------------------
OTEL_PYTHON_DISTRO = _var(
    "OTEL_PYTHON_DISTRO",
    "`agentwatch` (set under `opentelemetry-instrument` when unset)",
    "Which installed distro `opentelemetry-instrument` runs. Another value is "
    "respected; agentwatch then prints one line saying which distro ran and how to switch.",
)
OTEL_PYTHON_CONFIGURATOR = _var(
    "OTEL_PYTHON_CONFIGURATOR",
    "`agentwatch` (set by the agentwatch distro when unset)",
    "Which SDK configurator runs after the distro.",
)
OTEL_SDK_DISABLED = _var(
    "OTEL_SDK_DISABLED", "`false`", "`true` turns the whole pipeline off (no providers are installed)."
)

# --- resource ----------------------------------------------------------------
OTEL_SERVICE_NAME = _var(
    "OTEL_SERVICE_NAME",
    "derived from the program (`app.py` -> `app`, `uvicorn main:app` -> `main`)",
    "`service.name` of every signal.",
)
OTEL_RESOURCE_ATTRIBUTES = _var(
    "OTEL_RESOURCE_ATTRIBUTES",
    "empty",
    "Extra resource attributes, `key=value,key2=value2` (values URL-decoded).",
)
AGENTWATCH_SERVICE_VERSION = _var(
    "AGENTWATCH_SERVICE_VERSION",
    "`unknown`",
    "`service.version` unless `OTEL_RESOURCE_ATTRIBUTES` sets it.",
)
AGENTWATCH_ENVIRONMENT = _var(
    "AGENTWATCH_ENVIRONMENT",
    "`development`",
    "`deployment.environment.name` unless `OTEL_RESOURCE_ATTRIBUTES` sets it.",
)

# --- exporters -----------------------------------------------------------------
AGENTWATCH_EXPORT = _var(
    "AGENTWATCH_EXPORT",
    "`otlp`",
    "Default exporters for signals whose `OTEL_*_EXPORTER` is unset: `otlp` (to a collector) or "
    "`local` (the embedded default: `otlp_json_file` for all signals plus the `prometheus` endpoint).",
)
OTEL_TRACES_EXPORTER = _var(
    "OTEL_TRACES_EXPORTER",
    "from `AGENTWATCH_EXPORT`",
    "Comma list of span exporters: `otlp`, `console`, `otlp_json_file`, `none`, or any installed "
    "`opentelemetry_traces_exporter` entry point.",
)
OTEL_METRICS_EXPORTER = _var(
    "OTEL_METRICS_EXPORTER",
    "from `AGENTWATCH_EXPORT`",
    "Comma list of metric exporters: `otlp`, `console`, `prometheus`, `otlp_json_file`, `none`.",
)
OTEL_LOGS_EXPORTER = _var(
    "OTEL_LOGS_EXPORTER",
    "from `AGENTWATCH_EXPORT`",
    "Comma list of log exporters: `otlp`, `console`, `otlp_json_file`, `none`.",
)
OTEL_EXPORTER_OTLP_PROTOCOL = _var(
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "`http/protobuf`",
    "`grpc` or `http/protobuf` for the `otlp` exporters; "
    "`OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_PROTOCOL` override it per signal.",
)
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = _var(
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "`OTEL_EXPORTER_OTLP_PROTOCOL`", "Protocol of the trace exporter."
)
OTEL_EXPORTER_OTLP_METRICS_PROTOCOL = _var(
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "`OTEL_EXPORTER_OTLP_PROTOCOL`", "Protocol of the metric exporter."
)
OTEL_EXPORTER_OTLP_LOGS_PROTOCOL = _var(
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "`OTEL_EXPORTER_OTLP_PROTOCOL`", "Protocol of the log exporter."
)
OTEL_EXPORTER_OTLP_ENDPOINT = _var(
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "`http://localhost:4318` (http/protobuf) or `http://localhost:4317` (grpc)",
    "Collector address. For http/protobuf the signal path (`/v1/traces`...) is appended; "
    "`OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT` give a full URL per signal.",
)
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = _var(
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "from `OTEL_EXPORTER_OTLP_ENDPOINT`", "Full URL of the trace endpoint."
)
OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = _var(
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "from `OTEL_EXPORTER_OTLP_ENDPOINT`", "Full URL of the metric endpoint."
)
OTEL_EXPORTER_OTLP_LOGS_ENDPOINT = _var(
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "from `OTEL_EXPORTER_OTLP_ENDPOINT`", "Full URL of the log endpoint."
)
OTEL_EXPORTER_OTLP_TIMEOUT = _var(
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "`10` (seconds)",
    "Time limit of one OTLP export, retries included (read by the upstream exporters).",
)
OTEL_EXPORTER_PROMETHEUS_HOST = _var(
    "OTEL_EXPORTER_PROMETHEUS_HOST", "`localhost`", "Address the `prometheus` scrape endpoint binds."
)
OTEL_EXPORTER_PROMETHEUS_PORT = _var(
    "OTEL_EXPORTER_PROMETHEUS_PORT",
    "`9464`",
    "Port of the `prometheus` scrape endpoint (one per host; workers are merged into it, see README).",
)
AGENTWATCH_FILE_DIR = _var(
    "AGENTWATCH_FILE_DIR",
    "`./agentwatch-data`",
    "Directory of the `otlp_json_file` exporter (`traces.jsonl`, `metrics.jsonl`, `logs.jsonl`).",
)
AGENTWATCH_FILE_MAX_MB = _var(
    "AGENTWATCH_FILE_MAX_MB",
    "`64`",
    "Size bound of each `otlp_json_file` file in MiB; a full file is rotated to `<name>.1` "
    "(one generation kept), so a signal never takes more than twice this.",
)
AGENTWATCH_ENDPOINT_CHECK = _var(
    "AGENTWATCH_ENDPOINT_CHECK",
    "`true`",
    "At start-up, check in the background that each OTLP endpoint accepts connections and warn once if not.",
)

# --- instrumentation defaults -------------------------------------------------------
OTEL_SEMCONV_STABILITY_OPT_IN = _var(
    "OTEL_SEMCONV_STABILITY_OPT_IN",
    "`http`",
    "Stable HTTP semantic conventions (`http.server.request.duration` in seconds, `url.path`...).",
)
AGENTWATCH_ASGI_MESSAGE_SPANS = _var(
    "AGENTWATCH_ASGI_MESSAGE_SPANS",
    "`false`",
    "`true` brings back the per-message ASGI `http send` / `http receive` internal spans of FastAPI "
    "(off by default: noise and cost).",
)
OTEL_PYTHON_DISABLED_INSTRUMENTATIONS = _var(
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
    "empty",
    "Comma list of instrumentor entry-point names to skip (`fastapi,httpx,httpx2,sqlite3,logging,system_metrics`...).",
)

# --- lifecycle ----------------------------------------------------------------------
AGENTWATCH_SHUTDOWN_TIMEOUT = _var(
    "AGENTWATCH_SHUTDOWN_TIMEOUT",
    "`1.5` (seconds)",
    "Time the final flush may take at exit or SIGTERM; what is not sent by then is dropped.",
)


def markdown_table() -> str:
    """The README's configuration table, generated from :data:`VARIABLES`."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for var in VARIABLES:
        rows.append(f"| `{var.name}` | {var.default} | {var.meaning.replace('|', '/')} |")
    return "\n".join(rows)


def _write_readme(path: str = "README.md") -> None:
    import re

    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    text = re.sub(
        r"(<!-- config-table:start[^>]*-->\n).*?(<!-- config-table:end -->)",
        lambda m: m.group(1) + markdown_table() + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)

