"""Every environment variable agentwatch reads, as a named constant with its typed default and parser.

This module is the single source of the configuration table in docs/configuration.md
(``python -m agentwatch._docs`` regenerates it; ``tests/test_readme.py`` checks that the two agree): each entry says its name, its kind (which carries the typed default, the accepted values
and the parser), and its meaning; the table's default column is rendered from the kind, so a
default is written once. Standard ``OTEL_*`` variables are listed where agentwatch changes their
default or reads them itself; the rest of the ``OTEL_*`` family keeps its upstream meaning.

Values are read through one reader, :class:`agentwatch.distro.settings.Reader`; this module is a leaf
(it imports nothing of agentwatch but the kinds in ``_kinds``), so every other module may import it.
"""

from __future__ import annotations

from agentwatch.distro._kinds import CAPTURE_MODES as CAPTURE_MODES  # re-exported: callers read them from here
from agentwatch.distro._kinds import FALSE_WORDS as FALSE_WORDS
from agentwatch.distro._kinds import TRUE_WORDS as TRUE_WORDS
from agentwatch.distro._kinds import (
    Capture,
    Choice,
    EnvVar,
    Flag,
    Kind,
    Length,
    Names,
    Number,
    Port,
    Text,
)
from agentwatch.distro._kinds import Invalid as Invalid

VARIABLES: list[EnvVar] = []
BY_NAME: dict[str, EnvVar] = {}
_section = "core"


def _var(name: str, kind: Kind, meaning: str, shown: str | None = None) -> str:
    var = EnvVar(name, kind, meaning, shown, _section)
    VARIABLES.append(var)
    BY_NAME[name] = var
    return name


def _in(section: str) -> None:
    """Variables declared after this belong to ``section`` (core, export, scrub, genai, agent, web, logs)."""
    global _section  # noqa: PLW0603 - declaration-time state of this table only
    _section = section


PROTOCOLS = ("grpc", "http/protobuf")

# --- distro selection -------------------------------------------------------
_in("core")
OTEL_PYTHON_DISTRO = _var(
    "OTEL_PYTHON_DISTRO",
    Text("agentwatch"),
    "Which installed distro `opentelemetry-instrument` runs. Another value is "
    "respected; agentwatch then prints one line saying which distro ran and how to switch.",
    shown="`agentwatch` (set under `opentelemetry-instrument` when unset)",
)
OTEL_PYTHON_CONFIGURATOR = _var(
    "OTEL_PYTHON_CONFIGURATOR",
    Text("agentwatch"),
    "Which SDK configurator runs after the distro.",
    shown="`agentwatch` (set by the agentwatch distro when unset)",
)
OTEL_SDK_DISABLED = _var(
    "OTEL_SDK_DISABLED",
    Flag(False),
    "`true` turns the whole pipeline off (no providers are installed) and, under `opentelemetry-instrument`, "
    "agentwatch's instrumentors that only record are not loaded; the contrib ones, `agentwatch_web` and "
    "`agentwatch_mcp` still carry trace context through the service.",
)

# --- resource ----------------------------------------------------------------
OTEL_SERVICE_NAME = _var(
    "OTEL_SERVICE_NAME",
    Text(),
    "`service.name` of every signal.",
    shown="derived from the program (`app.py` -> `app`, `uvicorn main:app` -> `main`)",
)
OTEL_RESOURCE_ATTRIBUTES = _var(
    "OTEL_RESOURCE_ATTRIBUTES",
    Text(),
    "Extra resource attributes, `key=value,key2=value2` (values URL-decoded).",
)
OTEL_CONFIG_FILE = _var(
    "OTEL_CONFIG_FILE",
    Text(),
    "Upstream: a declarative configuration file for the SDK. **Not applied by agentwatch**: its pipeline (guarded "
    "and scrubbing exporters, its resource, the file exporter) is built from these environment variables; a set "
    "value is said once at start-up and listed by `agentwatch doctor` as a problem. To use the file, run the stock "
    "configurator instead (`OTEL_PYTHON_CONFIGURATOR=configurator`), without agentwatch's pipeline.",
)
AGENTWATCH_SERVICE_VERSION = _var(
    "AGENTWATCH_SERVICE_VERSION",
    Text(),
    "`service.version` unless `OTEL_RESOURCE_ATTRIBUTES` sets it. Unset: the version of the installed package "
    "the program runs from (`python -m pkg`, a module inside site-packages), else no `service.version` at all "
    "(never a made-up one).",
    shown="unset (the app's package version, or none)",
)
AGENTWATCH_ENVIRONMENT = _var(
    "AGENTWATCH_ENVIRONMENT",
    Text(),
    "`deployment.environment.name` unless `OTEL_RESOURCE_ATTRIBUTES` sets it. Unset: not on the resource.",
    shown="unset (none)",
)

# --- exporters -----------------------------------------------------------------
_in("export")
AGENTWATCH_EXPORT = _var(
    "AGENTWATCH_EXPORT",
    Choice("otlp", ("otlp", "local")),
    "Default exporters for signals whose `OTEL_*_EXPORTER` is unset: `otlp` (to a collector) or "
    "`local` (the embedded default: `agentwatch_file` for all signals plus the `prometheus` endpoint).",
)
OTEL_TRACES_EXPORTER = _var(
    "OTEL_TRACES_EXPORTER",
    Names(),
    "Comma list of span exporters: `otlp`, `console`, `agentwatch_file` (agentwatch's local files; `otlp_json_file` "
    "names it too where the official opentelemetry-exporter-otlp-json-file is not installed), `none`, or any installed "
    "`opentelemetry_traces_exporter` entry point.",
    shown="from `AGENTWATCH_EXPORT`",
)
OTEL_METRICS_EXPORTER = _var(
    "OTEL_METRICS_EXPORTER",
    Names(),
    "Comma list of metric exporters: `otlp`, `console`, `prometheus`, `agentwatch_file`, `none`.",
    shown="from `AGENTWATCH_EXPORT`",
)
OTEL_LOGS_EXPORTER = _var(
    "OTEL_LOGS_EXPORTER",
    Names(),
    "Comma list of log exporters: `otlp`, `console`, `agentwatch_file`, `none`.",
    shown="from `AGENTWATCH_EXPORT`",
)
OTEL_EXPORTER_OTLP_PROTOCOL = _var(
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    Choice("http/protobuf", PROTOCOLS),
    "`grpc` or `http/protobuf` for the `otlp` exporters; "
    "`OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_PROTOCOL` override it per signal.",
)
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = _var(
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    Choice("http/protobuf", PROTOCOLS),
    "Protocol of the trace exporter.",
    shown="`OTEL_EXPORTER_OTLP_PROTOCOL`",
)
OTEL_EXPORTER_OTLP_METRICS_PROTOCOL = _var(
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    Choice("http/protobuf", PROTOCOLS),
    "Protocol of the metric exporter.",
    shown="`OTEL_EXPORTER_OTLP_PROTOCOL`",
)
OTEL_EXPORTER_OTLP_LOGS_PROTOCOL = _var(
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    Choice("http/protobuf", PROTOCOLS),
    "Protocol of the log exporter.",
    shown="`OTEL_EXPORTER_OTLP_PROTOCOL`",
)
OTEL_EXPORTER_OTLP_ENDPOINT = _var(
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    Text(),
    "Collector address. For http/protobuf the signal path (`/v1/traces`...) is appended; "
    "`OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT` give a full URL per signal. A value that is "
    "not a URL (spaces, a scheme other than http/https, a bad port, no host) warns once and the default "
    "is used; `host:port` without a scheme means `http://host:port` for http/protobuf.",
    shown="`http://localhost:4318` (http/protobuf) or `http://localhost:4317` (grpc)",
)
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = _var(
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    Text(),
    "Full URL of the trace endpoint; a bad value warns once and the one from `OTEL_EXPORTER_OTLP_ENDPOINT` is used.",
    shown="from `OTEL_EXPORTER_OTLP_ENDPOINT`",
)
OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = _var(
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    Text(),
    "Full URL of the metric endpoint; a bad value warns once and the one from `OTEL_EXPORTER_OTLP_ENDPOINT` is used.",
    shown="from `OTEL_EXPORTER_OTLP_ENDPOINT`",
)
OTEL_EXPORTER_OTLP_LOGS_ENDPOINT = _var(
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    Text(),
    "Full URL of the log endpoint; a bad value warns once and the one from `OTEL_EXPORTER_OTLP_ENDPOINT` is used.",
    shown="from `OTEL_EXPORTER_OTLP_ENDPOINT`",
)
OTEL_EXPORTER_OTLP_TIMEOUT = _var(
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    Number(10, 0, 3600, unit="seconds"),
    "Time limit of one OTLP export, retries included (read by the upstream exporters).",
)
OTEL_EXPORTER_OTLP_INSECURE = _var(
    "OTEL_EXPORTER_OTLP_INSECURE",
    Text(),
    "`true` makes the gRPC exporters speak plaintext to a scheme-less endpoint (read by the upstream exporters); "
    "agentwatch only looks whether it is set: unset, a scheme-less gRPC endpoint gets one line saying TLS is used. "
    "`OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_INSECURE` set it per signal.",
)
OTEL_EXPORTER_PROMETHEUS_HOST = _var(
    "OTEL_EXPORTER_PROMETHEUS_HOST",
    Text("localhost"),
    "Address the `prometheus` scrape endpoint binds.",
)
OTEL_EXPORTER_PROMETHEUS_PORT = _var(
    "OTEL_EXPORTER_PROMETHEUS_PORT",
    Port(9464),
    "Port of the `prometheus` scrape endpoint (one per host; workers are merged into it, see README).",
)
AGENTWATCH_FILE_DIR = _var(
    "AGENTWATCH_FILE_DIR",
    Text("agentwatch-data"),
    "Directory of the `agentwatch_file` exporter (`traces.jsonl`, `metrics.jsonl`, `logs.jsonl`).",
)
AGENTWATCH_FILE_MAX_MB = _var(
    "AGENTWATCH_FILE_MAX_MB",
    Number(64, 0.001, 1024 * 1024),
    "Size bound of each `agentwatch_file` file in MiB; a full file is rotated to `<name>.1` "
    "(one generation kept), so a signal never takes more than twice this.",
)
AGENTWATCH_ENDPOINT_CHECK = _var(
    "AGENTWATCH_ENDPOINT_CHECK",
    Flag(True),
    "At start-up, check in the background that each OTLP endpoint accepts connections and warn once if not.",
)

# --- instrumentation defaults -------------------------------------------------------
_in("core")
OTEL_SEMCONV_STABILITY_OPT_IN = _var(
    "OTEL_SEMCONV_STABILITY_OPT_IN",
    Text("http,database"),
    "Stable HTTP and database semantic conventions (`http.server.request.duration` in seconds, `url.path`, "
    "`db.system.name`, `db.query.text`...).",
)
AGENTWATCH_ASGI_MESSAGE_SPANS = _var(
    "AGENTWATCH_ASGI_MESSAGE_SPANS",
    Flag(False),
    "`true` brings back the per-message ASGI `http send` / `http receive` internal spans of FastAPI "
    "(off by default: noise and cost).",
)
AGENTWATCH_SERVER_LAYER = _var(
    "AGENTWATCH_SERVER_LAYER",
    Choice("agentwatch", ("agentwatch", "contrib")),
    "Who opens the HTTP server span and records `http.server.*` metrics of FastAPI apps: `agentwatch` (one ASGI "
    "layer that also sets the request ids; the contrib `fastapi` instrumentor is then not loaded) or `contrib` "
    "(opentelemetry-instrumentation-fastapi, as before). agentwatch's layer is used only with the stable HTTP "
    "conventions and without `AGENTWATCH_ASGI_MESSAGE_SPANS`; otherwise, or with `fastapi` in "
    "`OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`, the contrib choice stands.",
)
AGENTWATCH_CLIENT_LAYER = _var(
    "AGENTWATCH_CLIENT_LAYER",
    Choice("agentwatch", ("agentwatch", "contrib")),
    "Who makes the `httpx`/`httpx2` client spans and `http.client.request.duration`: `agentwatch` (a leaner layer "
    "with the contrib instrumentation's output, loaded in place of the contrib `httpx`/`httpx2` instrumentors) or "
    "`contrib` (their own wrappers). agentwatch's layer is used only with the stable HTTP conventions, no "
    "captured client headers and no hooks passed to `instrument()`; otherwise the contrib wrappers are installed.",
)
AGENTWATCH_LEAN_SPANS = _var(
    "AGENTWATCH_LEAN_SPANS",
    Flag(True),
    "agentwatch's span path (`agentwatch.distro.tracing`): subclasses of the SDK's tracer provider, tracer and "
    "span with a leaner start, end and attribute path, the same OTLP output. `false` installs the stock SDK "
    "`TracerProvider` instead, to rule agentwatch's span path out when debugging.",
)
OTEL_PYTHON_DISABLED_INSTRUMENTATIONS = _var(
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
    Names(lower=False),
    "Comma list of instrumentor entry-point names to skip (`fastapi,httpx,httpx2,sqlite3,logging,system_metrics`...).",
)

# --- privacy -------------------------------------------------------------------------
_in("scrub")
AGENTWATCH_SCRUB = _var(
    "AGENTWATCH_SCRUB",
    Flag(True),
    "Redact PII and secrets from everything exported (span names, attributes, events, links, resource, "
    "log bodies and attributes, metric attributes), for every exporter; `false` turns the scrubber off.",
)
AGENTWATCH_SCRUB_DISABLED_DETECTORS = _var(
    "AGENTWATCH_SCRUB_DISABLED_DETECTORS",
    Names(),
    "Comma list of detectors to switch off: `email`, `phone`, `ssn`, `credit_card`, `ipv4`, `ipv6` (`ip` for both), "
    "`google_api_key`, `openai_api_key`, `anthropic_api_key`, `aws_access_key_id`, `github_token`, `slack_token`, "
    "`stripe_key` (`api_keys` for these seven), `jwt`, `bearer_token`, `private_key`, `url_credentials`, "
    "`sensitive_params` (`name=value` in text and URL queries), `sensitive_keys` (attribute and dict keys).",
)
AGENTWATCH_SCRUB_EXTRA_PATTERNS = _var(
    "AGENTWATCH_SCRUB_EXTRA_PATTERNS",
    Text(),
    "More patterns to redact: `name=regex` entries (Python `re` syntax) separated by `;;`, e.g. "
    "`employee_id=EMP-\\d{6};;ticket=TCK-[A-Z]{3}\\d+`. A match becomes `[REDACTED:name]` (only group 1 when "
    "the regex has a group). An entry that does not compile is skipped with a warning.",
)
AGENTWATCH_SCRUB_EXTRA_KEYS = _var(
    "AGENTWATCH_SCRUB_EXTRA_KEYS",
    Names(lower=False),
    "Comma list of more sensitive key names (e.g. `employee_ssn,x-internal-auth`): attribute and dict keys "
    "containing them, and `name=value` pairs in text, have their values redacted.",
)

AGENTWATCH_SCRUB_KEEP_ATTRIBUTES = _var(
    "AGENTWATCH_SCRUB_KEEP_ATTRIBUTES",
    Names(lower=False),
    "Adjusts the keep list (attributes whose values are infrastructure, scanned without some detectors; see "
    "Privacy): `key=detector+detector` entries add a key (`fnmatch` patterns such as `*.build_id` allowed) and the "
    "detectors that do not look at its value (e.g. `deploy.host=ip`); `-key` removes a built-in entry "
    "(e.g. `-network.peer.address` to scan peer addresses everywhere).",
)
AGENTWATCH_SCRUB_NOT_SECRET_KEYS = _var(
    "AGENTWATCH_SCRUB_NOT_SECRET_KEYS",
    Names(lower=False),
    "Comma list of attribute and dict keys (`fnmatch` patterns allowed) that are never redacted for a sensitive "
    "word in their name, e.g. `auth_realm,x-token-audience`; their values are still scanned by content.",
)
OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT = _var(
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    Length(),
    "Longest attribute string value (upstream meaning). With the scrubber on, agentwatch applies it itself after "
    "scrubbing (the SDK's own cut, made before any exporter runs, is moved 1024 characters further out), so a cut "
    "never leaves part of a secret; the cut never splits a `[REDACTED:...]` mark.",
)
OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT = _var(
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    Length(),
    "`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` for span attributes only (events and links keep the general one); "
    "applied after scrubbing like it.",
)
OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT = _var(
    "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    Length(),
    "`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` for log record attributes only; applied after scrubbing like it.",
)

AGENTWATCH_LOG_BODY_MAX_CHARS = _var(
    "AGENTWATCH_LOG_BODY_MAX_CHARS",
    Length(65536),
    "The longest log record body exported, in characters: a longer string body is scrubbed (only as far as it is "
    "kept, plus a margin), then cut with `...[truncated N chars]`, so one huge log line costs only itself (a "
    "collector or proxy refuses oversized requests). Log record attribute values are cut at the same length "
    "(after scrubbing) unless `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT` / `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` "
    "set theirs. `0` keeps every body whole. Applied with the scrubber.",
    shown="65536",
)
AGENTWATCH_SCRUB_ENGINE = _var(
    "AGENTWATCH_SCRUB_ENGINE",
    Choice("auto", ("auto", "re")),
    "How the scrubber finds candidates: `auto` makes one pass of the Hyperscan engine (the `hyperscan` package, "
    "installed with agentwatch on x86_64 and ARM64) over each export batch and looks only where it points, falling "
    "back to Python's `re` if the package is missing or fails; `re` uses Python's `re` alone. Same results, "
    "different speed (see Privacy).",
)

AGENTWATCH_CACHE_DIR = _var(
    "AGENTWATCH_CACHE_DIR",
    Text(),
    "Where the scrubber's compiled Hyperscan database is kept between starts, as Python keeps `.pyc` files: "
    "the first start on a machine compiles it (~50 ms of CPU), later starts and other workers load it (<1 ms). "
    "Files are read only if owned by this user and writable by no one else, and are checked before use; "
    "one that cannot be read or written means a compile, never an error. `off` keeps nothing on disk. "
    "An absolute path; a relative one is ignored (with a warning) for the default.",
    shown="`$XDG_CACHE_HOME/agentwatch`, else `~/.cache/agentwatch`",
)

# --- lifecycle ----------------------------------------------------------------------
_in("core")
AGENTWATCH_SHUTDOWN_TIMEOUT = _var(
    "AGENTWATCH_SHUTDOWN_TIMEOUT",
    Number(1.5, 0.0, 300.0, unit="seconds"),
    "Time the final flush may take at exit or SIGTERM; what is not sent by then is dropped.",
)

AGENTWATCH_LEAN_SDK = _var(
    "AGENTWATCH_LEAN_SDK",
    Flag(True),
    "agentwatch's cheaper paths through the OpenTelemetry SDK's hot code: metric recording (each attribute set "
    "cleaned and hashed once, not per measurement, and a repeated one recorded straight into the aggregations the "
    "SDK chose for it) and OTLP/HTTP encoding of spans and log records (written straight "
    "to bytes, the same bytes as the stock encoder's). Checked against the installed SDK at start-up; `false` "
    "keeps the SDK's own code paths, to rule agentwatch out when debugging.",
)

AGENTWATCH_STRICT = _var(
    "AGENTWATCH_STRICT",
    Flag(False),
    "For agentwatch's own test suite and for debugging agentwatch: a step of agentwatch that fails re-raises "
    "instead of warning once and stepping aside. Never set it in production.",
)

# --- GenAI (Gemini) -------------------------------------------------------------------
_in("genai")
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = _var(
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    Capture(),
    "Whether Gemini prompts, responses, system instructions and tool definitions/arguments are recorded: "
    "`NO_CONTENT`, `SPAN_ONLY` (JSON-string span attributes `gen_ai.input.messages`...), `EVENT_ONLY` "
    "(structured `gen_ai.client.inference.operation.details` log events) or `SPAN_AND_EVENT`, "
    "case-insensitive. `true` is read as `SPAN_ONLY` and `false` as `NO_CONTENT` (one note line). "
    "Captured text passes through the PII scrubber and `AGENTWATCH_GENAI_CONTENT_MAX_CHARS`.",
)
AGENTWATCH_GENAI_CONTENT_MAX_CHARS = _var(
    "AGENTWATCH_GENAI_CONTENT_MAX_CHARS",
    Number(4096, 16, 10_000_000, whole=True),
    "Longest captured text part (prompt, response, tool argument); longer ones are cut and end in "
    "`...[truncated N chars]`.",
)
AGENTWATCH_GENAI_PRICES = _var(
    "AGENTWATCH_GENAI_PRICES",
    Text(),
    "Path of a JSON price file (USD per 1M tokens, same shape as the bundled one, or just "
    "`{model: {input, output, cached_input}}`); its models are added to / replace the bundled ones. "
    "Nothing is fetched at run time.",
    shown="bundled table (`agentwatch/instrumentors/data/gemini_prices.json`, dated)",
)
AGENTWATCH_GENAI_COST = _var(
    "AGENTWATCH_GENAI_COST",
    Flag(True),
    "`false` turns off the cost attributes and the `agentwatch.gen_ai.client.cost` counter.",
)
AGENTWATCH_GENAI_INSTRUMENTATION = _var(
    "AGENTWATCH_GENAI_INSTRUMENTATION",
    Choice("agentwatch", ("agentwatch", "official")),
    "Which Gemini instrumentation runs when the official `opentelemetry-instrumentation-google-genai` is "
    "installed too, so each call gets one span: `agentwatch` (the official entry point is not loaded) or "
    "`official` (it is loaded and agentwatch's steps aside for the methods it wraps; it keeps `count_tokens`). "
    "If the app instruments the official one itself, agentwatch's steps aside whatever this says. One line at "
    "start-up and `agentwatch doctor` say which one runs.",
)

# --- Agent instrumentors (intent, rag, planner) ----------------------------------------
_in("agent")
AGENTWATCH_INTENT_TARGETS = _var(
    "AGENTWATCH_INTENT_TARGETS",
    Names(lower=False),
    "The app's intent classifiers to trace, comma list of `module:function` or `module:Class.method` "
    "(optional `=name`); wrapped when the module is imported, sync, async and generators alike.",
)
AGENTWATCH_RAG_TARGETS = _var(
    "AGENTWATCH_RAG_TARGETS",
    Names(lower=False),
    "The app's retrieval functions, same syntax; `=name` sets `gen_ai.data_source.id` "
    "(default: `module.function`).",
)
AGENTWATCH_PLANNER_TARGETS = _var(
    "AGENTWATCH_PLANNER_TARGETS",
    Names(lower=False),
    "The app's planners (a `plan` span each; `=name` sets `gen_ai.agent.name`).",
)
AGENTWATCH_CRITIC_TARGETS = _var(
    "AGENTWATCH_CRITIC_TARGETS",
    Names(lower=False),
    "The app's critics; each call inside a planner is one iteration of that plan (`=name` sets `gen_ai.evaluation.name`).",
)
AGENTWATCH_TOOL_TARGETS = _var(
    "AGENTWATCH_TOOL_TARGETS",
    Names(lower=False),
    "The app's tool functions run by a hand-written function-calling loop (an `execute_tool` span each; "
    "`=name` sets `gen_ai.tool.name`, default: the function's name).",
)
AGENTWATCH_AGENT_TARGETS = _var(
    "AGENTWATCH_AGENT_TARGETS",
    Names(lower=False),
    "The app's agent loops (an `invoke_agent` span each, with the model calls, tool calls and tokens under it; "
    "`=name` sets `gen_ai.agent.name`, default: the function's name).",
)
AGENTWATCH_INTENT_EXTRACTOR = _var(
    "AGENTWATCH_INTENT_EXTRACTOR",
    Text(),
    "`module:function` turning a classifier's return value into one of the shapes agentwatch reads "
    "(e.g. `{\"intent\": ..., \"confidence\": ...}`).",
    shown="built-in (str, tuple, dict, dataclass, pydantic, attributes)",
)
AGENTWATCH_RAG_EXTRACTOR = _var(
    "AGENTWATCH_RAG_EXTRACTOR",
    Text(),
    "`module:function` turning a retriever's return value into a list of documents (`{id, score}`).",
    shown="built-in (lists of documents, chromadb / LangChain results)",
)
AGENTWATCH_CRITIC_EXTRACTOR = _var(
    "AGENTWATCH_CRITIC_EXTRACTOR",
    Text(),
    "`module:function` turning a critic's return value into a verdict (bool, `accepted`/`rejected`, or `{accepted, score}`).",
    shown="built-in (bool, str, tuple, dict, objects)",
)
AGENTWATCH_EVALUATION_SPAN_EVENTS = _var(
    "AGENTWATCH_EVALUATION_SPAN_EVENTS",
    Flag(False),
    "Also record each `gen_ai.evaluation.result` (critic verdicts, `agentwatch.record_evaluation`) as a span event "
    "on the evaluated span, as earlier releases did; by default it is a log event only, parented to that span, "
    "as the GenAI conventions define it (needs a logs exporter: `OTEL_LOGS_EXPORTER`).",
)
AGENTWATCH_INTENT_MAX_DISTINCT = _var(
    "AGENTWATCH_INTENT_MAX_DISTINCT",
    Number(20, 1, 10_000, whole=True),
    "Distinct intent values kept as metric attributes per process; later new intents are counted as `other` "
    "(spans keep the real value).",
)
AGENTWATCH_INTENT_LOW_CONFIDENCE = _var(
    "AGENTWATCH_INTENT_LOW_CONFIDENCE",
    Number(0.5, 0.0, 1.0),
    "Confidence below which a classification counts in `agentwatch.intent.low_confidence`.",
)
AGENTWATCH_CHROMADB_MAX_COLLECTIONS = _var(
    "AGENTWATCH_CHROMADB_MAX_COLLECTIONS",
    Number(50, 1, 100_000, whole=True),
    "Distinct chromadb collections per process kept as `db.collection.name` on metrics and counted by the "
    "`agentwatch.vectordb.collection.documents` gauge; later ones count as `_other` and are not counted "
    "(spans keep the real name).",
)
AGENTWATCH_RETRY_TARGETS = _var(
    "AGENTWATCH_RETRY_TARGETS",
    Names(lower=False),
    "The app's tenacity-decorated functions (`@retry`) whose attempts to trace, comma list of `module:function` or "
    "`module:Class.method` (optional `=name`); each call becomes one span with its attempts and one event per "
    "failed attempt, and feeds `agentwatch.retry.failed_attempts`. Wrapped when the module is imported.",
)
AGENTWATCH_RESILIENCE_MAX_NAMES = _var(
    "AGENTWATCH_RESILIENCE_MAX_NAMES",
    Number(50, 1, 10_000, whole=True),
    "Distinct circuit-breaker names (pybreaker, aiobreaker) and slowapi limits per process kept as metric "
    "attributes; later ones count as `_other`.",
)

AGENTWATCH_CACHE_TARGETS = _var(
    "AGENTWATCH_CACHE_TARGETS",
    Names(lower=False),
    "The app's caches whose lookups, size and capacity are measured, same syntax (`module:attribute`, `=name` "
    "sets `agentwatch.cache.name`): an `lru_cache`/`cache` function or anything with `cache_info()` (read when "
    "metrics are collected, no per-call cost), a cachetools cache or `@cached` function, an aiocache cache or "
    "`@cached` function.",
)
AGENTWATCH_QUEUE_TARGETS = _var(
    "AGENTWATCH_QUEUE_TARGETS",
    Names(lower=False),
    "The app's queues whose depth and oldest-item age are measured, same syntax (`=name` sets "
    "`agentwatch.queue.name`): `asyncio.Queue` or `queue.Queue` objects (and their LIFO/priority kinds).",
)


# --- Health and errors --------------------------------------------------------------
_in("web")
AGENTWATCH_PROPAGATE_TO = _var(
    "AGENTWATCH_PROPAGATE_TO",
    Names(default=("private",)),
    "Hosts that outgoing httpx calls may send baggage and the `X-Request-ID` / `X-Session-ID` headers to (trace "
    "context goes everywhere): a comma list of `private` (loopback, private and link-local addresses, single-label "
    "names, `.svc`, `.cluster.local`, `.internal`, `.local` and this host's own domain), host globs "
    "(`*.example.com`), exact names, CIDRs (`10.0.0.0/8`), `*` (everywhere) or `none`. Calls made by a model "
    "provider's SDK (google-genai, OpenAI, Anthropic) never get them, whatever the host.",
    shown="`private`",
)
AGENTWATCH_BAGGAGE_KEYS = _var(
    "AGENTWATCH_BAGGAGE_KEYS",
    Names(default=("agentwatch.request.id", "agentwatch.session.id"), lower=False),
    "Incoming baggage keys that are accepted (and forwarded where allowed); every other key of a caller's "
    "baggage is dropped at the door. Comma list.",
    shown="`agentwatch.request.id,agentwatch.session.id`",
)
AGENTWATCH_HEALTH_ENABLED = _var(
    "AGENTWATCH_HEALTH_ENABLED",
    Flag(True),
    "`false` leaves out the health endpoints (`/health`, `/health/live`, `/health/ready`, "
    "`/health/startup`, `/health/detailed`) agentwatch adds to every FastAPI app.",
)
AGENTWATCH_HEALTH_PREFIX = _var(
    "AGENTWATCH_HEALTH_PREFIX",
    Text("/health"),
    "Path prefix of the health endpoints (e.g. `/ops/health`).",
)
AGENTWATCH_HEALTH_CHECK_TIMEOUT = _var(
    "AGENTWATCH_HEALTH_CHECK_TIMEOUT",
    Number(2.0, 0.01, 300.0, unit="seconds"),
    "Default time limit of one health check; a check that takes longer is reported unhealthy and never holds a probe longer.",
)
AGENTWATCH_HEALTH_CACHE_TTL = _var(
    "AGENTWATCH_HEALTH_CACHE_TTL",
    Number(5.0, 0.0, 86400.0, unit="seconds"),
    "How long a check result is reused; probes within that time run no check.",
)
AGENTWATCH_HEALTH_CRITICAL = _var(
    "AGENTWATCH_HEALTH_CRITICAL",
    Names(lower=False),
    "Comma list of check names that are critical (failing -> unhealthy, not ready); when set, "
    "every check not listed is non-critical (failing -> degraded).",
    shown="each check's own (`sqlite`, `http:*` and user checks critical; `disk`, `gemini`, `chromadb` not)",
)
AGENTWATCH_HEALTH_SQLITE_PATH = _var(
    "AGENTWATCH_HEALTH_SQLITE_PATH",
    Text(),
    "SQLite database file checked with `SELECT 1` (read-only, with the check timeout).",
    shown="unset (no check)",
)
AGENTWATCH_HEALTH_DISK_PATH = _var(
    "AGENTWATCH_HEALTH_DISK_PATH",
    Text("."),
    "Path whose file system the `disk` check and `/health/detailed` watch.",
)
AGENTWATCH_HEALTH_DISK_MIN_FREE_MB = _var(
    "AGENTWATCH_HEALTH_DISK_MIN_FREE_MB",
    Number(100.0, 0.0, 1e9),
    "The `disk` check fails below this much free space (MiB).",
)
AGENTWATCH_HEALTH_GEMINI = _var(
    "AGENTWATCH_HEALTH_GEMINI",
    Choice("auto", ("auto", "off", "key", "live")),
    "`auto`: check that a Gemini API key is configured (`GEMINI_API_KEY`/`GOOGLE_API_KEY`) when google-genai "
    "is installed or a key is set; `key`: always; `live`: also reach the API through the SDK "
    "(`models.get`, no tokens), cached for `AGENTWATCH_HEALTH_GEMINI_TTL`; `off`.",
)
AGENTWATCH_HEALTH_GEMINI_TTL = _var(
    "AGENTWATCH_HEALTH_GEMINI_TTL",
    Number(300.0, 1.0, 86400.0, unit="seconds"),
    "How long a live Gemini reachability result is reused, so probes never spam the paid API.",
)
AGENTWATCH_HEALTH_GEMINI_MODEL = _var(
    "AGENTWATCH_HEALTH_GEMINI_MODEL",
    Text("gemini-2.5-flash"),
    "Model looked up by the live Gemini check.",
)
AGENTWATCH_HEALTH_CHROMA_URL = _var(
    "AGENTWATCH_HEALTH_CHROMA_URL",
    Text(),
    "`http://host:port` of a Chroma server whose heartbeat is checked (only when `chromadb` is installed).",
    shown="unset (no check)",
)
AGENTWATCH_HEALTH_HTTP_URLS = _var(
    "AGENTWATCH_HEALTH_HTTP_URLS",
    Text(),
    "Comma list of HTTP dependencies, `name=url` or `url` (named `http:<host>`); healthy on a 2xx/3xx answer to GET.",
    shown="unset (no check)",
)
AGENTWATCH_HEALTH_DETAILS = _var(
    "AGENTWATCH_HEALTH_DETAILS",
    Choice("token", ("never", "token", "always")),
    "Who sees the full `/health/detailed` (host, paths, pid, memory, load, check errors): `token` (default) only "
    "callers sending `Authorization: Bearer <AGENTWATCH_HEALTH_TOKEN>`, `always` anyone, `never` nobody. Everyone "
    "else gets the status and each check's name and state.",
)
AGENTWATCH_HEALTH_TOKEN = _var(
    "AGENTWATCH_HEALTH_TOKEN",
    Text(),
    "The bearer token that unlocks the full `/health/detailed` under `AGENTWATCH_HEALTH_DETAILS=token` (compared in "
    "constant time; unset: nobody).",
    shown="unset",
)
AGENTWATCH_HEALTH_STARTUP_RETRIES = _var(
    "AGENTWATCH_HEALTH_STARTUP_RETRIES",
    Number(3, 0, 100, whole=True),
    "Retries of a failing startup check before it counts as failed.",
)
AGENTWATCH_HEALTH_STARTUP_BACKOFF = _var(
    "AGENTWATCH_HEALTH_STARTUP_BACKOFF",
    Number(0.5, 0.0, 60.0, unit="seconds"),
    "First wait between startup retries; doubled after each retry (at most 10 s).",
)
AGENTWATCH_DRAIN_DELAY = _var(
    "AGENTWATCH_DRAIN_DELAY",
    Number(0.0, 0.0, 3600.0, unit="seconds"),
    "On SIGTERM, keep serving this long with readiness answering 503 (so the load balancer stops sending) "
    "before the server's graceful shutdown starts.",
)
OTEL_PYTHON_FASTAPI_EXCLUDED_URLS = _var(
    "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS",
    Text(),
    "Comma list of URL regexes the FastAPI server layer (agentwatch's or the contrib one) does not trace or measure; "
    "by default the probes, "
    "so Kubernetes probes do not flood the backend. A value you set (here or in `OTEL_PYTHON_EXCLUDED_URLS`) is used as is.",
    shown="the health endpoints (`/health(/live|/ready|/startup|/detailed)?/?$` under `AGENTWATCH_HEALTH_PREFIX`)",
)
OTEL_PYTHON_EXCLUDED_URLS = _var(
    "OTEL_PYTHON_EXCLUDED_URLS",
    Text(),
    "Upstream generic form of the above, for every HTTP server instrumentation; when set, agentwatch sets no FastAPI default.",
)
OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST = _var(
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
    Text(),
    "Upstream: request headers put on the server span (`http.request.header.<name>`), comma list or regexes; read "
    "by whichever FastAPI server layer is active (agentwatch's reads it with the upstream helper, as contrib does).",
)
OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE = _var(
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE",
    Text(),
    "Upstream: response headers put on the server span (`http.response.header.<name>`), as above.",
)
OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS = _var(
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS",
    Text(),
    "Upstream: captured headers whose values are replaced by `[REDACTED]` (comma list or regexes).",
)
OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS = _var(
    "OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS",
    Text(),
    "Upstream: when set, non-standard HTTP methods keep their name on the server span instead of `_OTHER`.",
)
AGENTWATCH_SECURITY_HEADERS = _var(
    "AGENTWATCH_SECURITY_HEADERS",
    Names(),
    "Security headers added to every response of the FastAPI app unless the app set that header itself (any case): "
    "`on` (`nosniff,frame,referrer,hsts`, plus `csp` when `AGENTWATCH_SECURITY_CSP` is set) or a comma list of "
    "`nosniff` (`X-Content-Type-Options: nosniff`), `frame` (`X-Frame-Options: DENY`), `referrer` "
    "(`Referrer-Policy: no-referrer`), `hsts` (`Strict-Transport-Security`, over HTTPS only), `hsts-always` (also "
    "over plain HTTP, behind a TLS proxy that does not pass the scheme), `csp`; `off`.",
    shown="unset (off)",
)
AGENTWATCH_SECURITY_CSP = _var(
    "AGENTWATCH_SECURITY_CSP",
    Text(),
    "The `Content-Security-Policy` sent with `AGENTWATCH_SECURITY_HEADERS` (e.g. `default-src 'none'; "
    "frame-ancestors 'none'` for a JSON API; FastAPI's `/docs` page needs its CDN allowed).",
    shown="unset (no CSP)",
)
AGENTWATCH_SECURITY_HSTS = _var(
    "AGENTWATCH_SECURITY_HSTS",
    Text("max-age=31536000; includeSubDomains"),
    "The `Strict-Transport-Security` value sent with `hsts` / `hsts-always`.",
)
AGENTWATCH_ERROR_HANDLERS = _var(
    "AGENTWATCH_ERROR_HANDLERS",
    Flag(True),
    "`false` leaves FastAPI's own error responses untouched (no JSON 500, no `request_id` in error bodies).",
)
AGENTWATCH_ERROR_DETAIL = _var(
    "AGENTWATCH_ERROR_DETAIL",
    Flag(False),
    "Development mode: the JSON 500 carries the exception type and (scrubbed) message instead of a generic one.",
)


# --- Request ids and logs -------------------------------------------------------------
_in("logs")
AGENTWATCH_LOG_FORMAT = _var(
    "AGENTWATCH_LOG_FORMAT",
    Choice("off", ("json", "pretty", "off")),
    "The app's console logs: `json` (one object per line: `timestamp` (ISO 8601, UTC), `level`, `logger`, "
    "`message`, `trace_id`, `span_id`, `request_id`, `session_id` when present, `exception`, extra fields), "
    "`pretty` (one readable line per record, colored only on a terminal and without `NO_COLOR`) or `off` (the "
    "app's own format). `json`/`pretty` format the console handlers the app (or uvicorn) configures, keeping "
    "their streams, levels and filters, with every field scrubbed; an app that configures none gets one on stdout, "
    "which steps aside for the app's own `basicConfig`/`dictConfig`.",
)
AGENTWATCH_LOG_EXPORT_LEVEL = _var(
    "AGENTWATCH_LOG_EXPORT_LEVEL",
    Choice("app", ("app", "debug", "info", "warning", "error", "critical")),
    "The lowest level of log records exported, independent of the console: `app` (default) exports what the "
    "app's logger levels let through. A level below the root logger's makes agentwatch lower the root logger to "
    "it and give the root's other handlers the app's level, so the console shows what it did (a service that "
    "prints WARNING can export INFO); a level above it exports less than the console shows.",
    shown="`app`",
)
OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED = _var(
    "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED",
    Flag(False),
    "Upstream (deprecated): export log records through the SDK's own `LoggingHandler` instead of the logging "
    "instrumentation's. agentwatch's configurator installs it as the stock one does (the instrumentation then steps "
    "aside, as its warning says); the same records are exported either way.",
)
OTEL_PYTHON_LOG_CORRELATION = _var(
    "OTEL_PYTHON_LOG_CORRELATION",
    Flag(False),
    "Upstream (logging instrumentation): add `otelTraceID`, `otelSpanID`, `otelServiceName` to every record and "
    "call `basicConfig` with `OTEL_PYTHON_LOG_FORMAT` and `OTEL_PYTHON_LOG_LEVEL`; the app's later configuration "
    "still applies.",
)
OTEL_PYTHON_LOG_FORMAT = _var(
    "OTEL_PYTHON_LOG_FORMAT",
    Text(),
    "Upstream: the console format used with `OTEL_PYTHON_LOG_CORRELATION=true` (a `%`-style format). With "
    "`AGENTWATCH_LOG_FORMAT=json`/`pretty` that format wins (it carries the trace ids too).",
)
OTEL_PYTHON_LOG_LEVEL = _var(
    "OTEL_PYTHON_LOG_LEVEL",
    Text(),
    "Upstream: the root level set with `OTEL_PYTHON_LOG_CORRELATION=true` (`debug`, `info`, `warning`, `error`).",
)
AGENTWATCH_LOG_SCRUB_CONSOLE = _var(
    "AGENTWATCH_LOG_SCRUB_CONSOLE",
    Flag(True),
    "With `AGENTWATCH_LOG_FORMAT=off`, scrub what the app's console handlers print (the same scrubber as the "
    "export; the app's format is kept, only PII and secrets are replaced). `false` prints the app's lines untouched.",
)

def markdown_table() -> str:
    """The configuration table of docs/configuration.md, generated from :data:`VARIABLES`."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for var in VARIABLES:
        rows.append(f"| `{var.name}` | {var.default_text} | {var.meaning.replace('|', '/')} |")
    return "\n".join(rows)
