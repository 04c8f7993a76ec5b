"""The agent telemetry catalogue: every span, span attribute and metric the agent
instrumentors (intent, rag, planner) emit, as data -- and, in :data:`GENAI_SPANS` /
:data:`GENAI_METRICS`, what the Gemini instrumentor and the per-request GenAI roll-up emit;
in :data:`VECTORDB_SPANS` / :data:`VECTORDB_METRICS`, what the chromadb instrumentor emits.

This module is the single source of truth: the instrumentors create their
instruments from :data:`METRICS` (name, type, unit, buckets, description) -- and the
other catalogues -- through :func:`create_instruments`, the
span and metric tables of docs/telemetry.md are generated from it
(:mod:`agentwatch.catalogue_md` renders them; ``python -m agentwatch._docs`` rewrites them), and ``tests/test_agent_catalogue.py`` checks that what a
real run emits -- metric names, types, units, buckets and attribute keys, span
names and attribute keys -- is exactly what is listed here. ``agentwatch report`` takes every
name it reads from here too, including the HTTP, database and resource names of the
OpenTelemetry conventions it shows.

Naming: OpenTelemetry GenAI semantic conventions where they define the concept
(``retrieval`` and ``plan`` spans, ``gen_ai.data_source.id``,
``gen_ai.retrieval.*``, ``gen_ai.agent.name``, the ``gen_ai.evaluation.result``
event); everything else lives under the ``agentwatch.`` namespace.
Metric attributes are bounded: target names and data-source ids come from the
configuration, intents fold into ``other`` beyond ``AGENTWATCH_INTENT_MAX_DISTINCT``,
verdicts are ``accepted``/``rejected``, ``error.type`` is an exception class name.
Nothing here imports OpenTelemetry, so reading the catalogue is free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from agentwatch._records import Record

# --- attribute names ----------------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_DATA_SOURCE_ID = "gen_ai.data_source.id"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
GEN_AI_RETRIEVAL_QUERY_TEXT = "gen_ai.retrieval.query.text"
GEN_AI_RETRIEVAL_DOCUMENTS = "gen_ai.retrieval.documents"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_EVALUATION_NAME = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
ERROR_TYPE = "error.type"

INTENT_CLASSIFIER = "agentwatch.intent.classifier"
INTENT_NAME = "agentwatch.intent.name"
INTENT_CONFIDENCE = "agentwatch.intent.confidence"
INTENT_LOW_CONFIDENCE = "agentwatch.intent.low_confidence"
RETRIEVAL_DOCUMENT_COUNT = "agentwatch.retrieval.document_count"
RETRIEVAL_TOP_SCORE = "agentwatch.retrieval.top_score"
RETRIEVAL_SCORE_KIND = "agentwatch.retrieval.score_kind"
PLAN_ITERATIONS = "agentwatch.plan.iterations"
PLAN_ACCEPTED = "agentwatch.plan.accepted"
CRITIQUE_ITERATION = "agentwatch.critique.iteration"
CRITIQUE_VERDICT = "agentwatch.critique.verdict"

EVALUATION_EVENT = "gen_ai.evaluation.result"
# invoke_agent / execute_tool spans (AGENTWATCH_AGENT_TARGETS / _TOOL_TARGETS, ADK) and the roll-up's per-agent counts
INVOKE_AGENT, EXECUTE_TOOL, TRANSFER_TOOL = "invoke_agent", "execute_tool", "transfer_to_agent"  # ADK's transfer tool
AGENT_GENAI_CALLS, AGENT_TOOL_CALLS = "agentwatch.agent.gen_ai.calls", "agentwatch.agent.tool_calls"
AGENT_GENAI_INPUT_TOKENS, AGENT_GENAI_OUTPUT_TOKENS = "agentwatch.agent.gen_ai.input_tokens", "agentwatch.agent.gen_ai.output_tokens"
AGENT_TOOL_ERRORS = "agentwatch.agent.tool_errors"

#: agentwatch's own attributes and metrics all live under this prefix.
NAMESPACE = "agentwatch."

# --- metric names -------------------------------------------------------------------------
# (``_METRIC``: several metrics share their name with a span attribute, e.g. intent confidence.)
INTENT_CLASSIFICATIONS_METRIC = "agentwatch.intent.classifications"
INTENT_CONFIDENCE_METRIC = "agentwatch.intent.confidence"
INTENT_LOW_CONFIDENCE_METRIC = "agentwatch.intent.low_confidence"
RETRIEVAL_DURATION_METRIC = "agentwatch.retrieval.duration"
RETRIEVAL_DOCUMENTS_METRIC = "agentwatch.retrieval.documents"
RETRIEVAL_EMPTY_METRIC = "agentwatch.retrieval.empty"
RETRIEVAL_TOP_SCORE_METRIC = "agentwatch.retrieval.top_score"
PLAN_DURATION_METRIC = "agentwatch.plan.duration"
PLAN_ITERATIONS_METRIC = "agentwatch.plan.iterations"
CRITIQUE_VERDICTS_METRIC = "agentwatch.critique.verdicts"
PLAN_FIRST_TRY_ACCEPTANCE_METRIC = "agentwatch.plan.first_try_acceptance"

# --- buckets --------------------------------------------------------------------------
UNIT_INTERVAL_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
RETRIEVAL_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The GenAI client operation buckets: a plan usually includes model calls.
PLAN_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
DOCUMENT_COUNT_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100)
ITERATION_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20)


class Metric(Record):
    """One metric: OpenTelemetry instrument type, unit, attribute keys, histogram buckets."""

    __slots__ = ("name", "instrument", "unit", "description", "attributes", "buckets", "role")
    name: str
    instrument: str  # "counter" | "histogram" | "gauge"
    unit: str
    description: str
    attributes: tuple[str, ...]
    buckets: tuple[float, ...] | None
    role: str

    def __init__(self, name: str, instrument: str, unit: str, description: str, attributes: tuple[str, ...],
                 buckets: tuple[float, ...] | None = None, role: str = "") -> None:
        self._set(name=name, instrument=instrument, unit=unit, description=description, attributes=attributes,
                  buckets=buckets, role=role)

    def create(self, meter: Any, callbacks: Sequence[Callable[..., Any]] | None = None) -> Any:
        """This metric's instrument on an OpenTelemetry ``meter``: a counter, a histogram with the
        catalogue's buckets as advice, or a gauge -- counters and gauges observable when ``callbacks`` are given."""
        if self.instrument == "counter":
            if callbacks:
                return meter.create_observable_counter(
                    self.name, callbacks=list(callbacks), unit=self.unit, description=self.description
                )
            return meter.create_counter(self.name, unit=self.unit, description=self.description)
        if self.instrument == "histogram":
            return meter.create_histogram(
                self.name, unit=self.unit, description=self.description,
                explicit_bucket_boundaries_advisory=list(self.buckets) if self.buckets is not None else None,
            )
        if self.instrument == "gauge":
            if callbacks:
                return meter.create_observable_gauge(
                    self.name, callbacks=list(callbacks), unit=self.unit, description=self.description
                )
            return meter.create_gauge(self.name, unit=self.unit, description=self.description)
        raise ValueError(f"{self.name}: unknown instrument type {self.instrument!r}")


class Span(Record):
    """One span: name pattern, kind, attribute keys (always / when known / opt-in content), events."""

    __slots__ = ("role", "name", "kind", "attributes", "content_attributes", "events", "notes", "event_attributes")
    role: str
    name: str
    kind: str
    attributes: tuple[str, ...]
    content_attributes: tuple[str, ...]
    events: tuple[str, ...]
    notes: str
    event_attributes: tuple[str, ...]

    def __init__(self, role: str, name: str, kind: str, attributes: tuple[str, ...],
                 content_attributes: tuple[str, ...] = (), events: tuple[str, ...] = (), notes: str = "",
                 event_attributes: tuple[str, ...] = ()) -> None:
        self._set(role=role, name=name, kind=kind, attributes=attributes, content_attributes=content_attributes,
                  events=events, notes=notes, event_attributes=event_attributes)


METRICS: tuple[Metric, ...] = (
    # intent ---------------------------------------------------------------------------
    Metric(
        INTENT_CLASSIFICATIONS_METRIC, "counter", "{classification}",
        "Intent classifications, by intent (folded into `other` beyond the bound).",
        (INTENT_CLASSIFIER, INTENT_NAME), role="intent",
    ),
    Metric(
        INTENT_CONFIDENCE_METRIC, "histogram", "1",
        "Confidence of each classification, buckets of 0.1.",
        (INTENT_CLASSIFIER, INTENT_NAME), UNIT_INTERVAL_BUCKETS, role="intent",
    ),
    Metric(
        INTENT_LOW_CONFIDENCE_METRIC, "counter", "{classification}",
        "Classifications whose confidence is below `AGENTWATCH_INTENT_LOW_CONFIDENCE`.",
        (INTENT_CLASSIFIER, INTENT_NAME), role="intent",
    ),
    # retrieval ------------------------------------------------------------------------
    Metric(
        RETRIEVAL_DURATION_METRIC, "histogram", "s",
        "Duration of each retrieval (`error.type` set when it raised).",
        (GEN_AI_DATA_SOURCE_ID, ERROR_TYPE), RETRIEVAL_DURATION_BUCKETS, role="rag",
    ),
    Metric(
        RETRIEVAL_DOCUMENTS_METRIC, "histogram", "{document}",
        "Documents returned per retrieval.",
        (GEN_AI_DATA_SOURCE_ID,), DOCUMENT_COUNT_BUCKETS, role="rag",
    ),
    Metric(
        RETRIEVAL_EMPTY_METRIC, "counter", "{retrieval}",
        "Retrievals that returned no document.",
        (GEN_AI_DATA_SOURCE_ID,), role="rag",
    ),
    Metric(
        RETRIEVAL_TOP_SCORE_METRIC, "histogram", "1",
        "Best score of each non-empty retrieval (highest similarity, or lowest distance for "
        "distance-scored results such as chromadb's); buckets of 0.1 over [0, 1].",
        (GEN_AI_DATA_SOURCE_ID, RETRIEVAL_SCORE_KIND), UNIT_INTERVAL_BUCKETS, role="rag",
    ),
    # planner / critic -----------------------------------------------------------------
    Metric(
        PLAN_DURATION_METRIC, "histogram", "s",
        "Duration of each plan, critique loop included (`error.type` set when it raised).",
        (GEN_AI_AGENT_NAME, ERROR_TYPE), PLAN_DURATION_BUCKETS, role="planner",
    ),
    Metric(
        PLAN_ITERATIONS_METRIC, "histogram", "{iteration}",
        "Iterations (critiques) per completed plan.",
        (GEN_AI_AGENT_NAME,), ITERATION_BUCKETS, role="planner",
    ),
    Metric(
        CRITIQUE_VERDICTS_METRIC, "counter", "{verdict}",
        "Critique verdicts, `accepted` or `rejected`.",
        (GEN_AI_EVALUATION_NAME, CRITIQUE_VERDICT), role="critic",
    ),
    Metric(
        PLAN_FIRST_TRY_ACCEPTANCE_METRIC, "counter", "{plan}",
        "Critiqued plans by whether the first critique accepted them "
        "(`agentwatch.plan.accepted` true/false); the ratio of true is the first-try acceptance rate.",
        (GEN_AI_AGENT_NAME, PLAN_ACCEPTED), role="planner",
    ),
)

SPANS: tuple[Span, ...] = (
    Span(
        "intent", "classify_intent {agentwatch.intent.classifier}", "INTERNAL",
        (INTENT_CLASSIFIER, INTENT_NAME, INTENT_CONFIDENCE, INTENT_LOW_CONFIDENCE, ERROR_TYPE),
        notes="No OpenTelemetry operation exists for intent classification; attributes are ours.",
    ),
    Span(
        "rag", "retrieval {gen_ai.data_source.id}", "INTERNAL",
        (GEN_AI_OPERATION_NAME, GEN_AI_DATA_SOURCE_ID, GEN_AI_REQUEST_TOP_K, GEN_AI_RETRIEVAL_DOCUMENTS,
         RETRIEVAL_DOCUMENT_COUNT, RETRIEVAL_TOP_SCORE, RETRIEVAL_SCORE_KIND, ERROR_TYPE),
        content_attributes=(GEN_AI_RETRIEVAL_QUERY_TEXT,),
        notes="`gen_ai.operation.name=retrieval`. `gen_ai.retrieval.documents` is `[{id, score}]` as JSON "
        "(document `content` added only with content capture on). INTERNAL, not CLIENT: the I/O spans "
        "(sqlite3, HTTP, vector DB) are its CLIENT children.",
    ),
    Span(
        "planner", "plan {gen_ai.agent.name}", "INTERNAL",
        (GEN_AI_OPERATION_NAME, GEN_AI_AGENT_NAME, PLAN_ITERATIONS, PLAN_ACCEPTED, ERROR_TYPE),
        notes="`gen_ai.operation.name=plan`; one `critique` child per iteration.",
    ),
    Span(
        "critic", "critique {gen_ai.evaluation.name}", "INTERNAL",
        (GEN_AI_OPERATION_NAME, GEN_AI_EVALUATION_NAME, CRITIQUE_ITERATION, CRITIQUE_VERDICT, ERROR_TYPE),
        events=(EVALUATION_EVENT,),
        event_attributes=(GEN_AI_EVALUATION_NAME, GEN_AI_EVALUATION_SCORE_LABEL, GEN_AI_EVALUATION_SCORE_VALUE),
        content_attributes=(GEN_AI_EVALUATION_EXPLANATION,),
        notes="`gen_ai.operation.name=critique` (a custom value, as the GenAI conventions allow); "
        "the verdict is a `gen_ai.evaluation.result` log event parented to this span (`score.label` accepted/rejected, "
        "`score.value` when the critic returns a score; `explanation` only with content capture on), also a span "
        "event with `AGENTWATCH_EVALUATION_SPAN_EVENTS`.",
    ),
    Span(
        "tool", "execute_tool {gen_ai.tool.name}", "INTERNAL",
        ("gen_ai.operation.name", "gen_ai.tool.name", "gen_ai.tool.type", "gen_ai.tool.call.id", "gen_ai.tool.description",
         "error.type"),
        notes="A function of the app named in `AGENTWATCH_TOOL_TARGETS` (a hand-written function-calling loop); "
        "`gen_ai.operation.name=execute_tool`, `gen_ai.tool.type=function`, the description is the first line of "
        "its docstring, `gen_ai.tool.name` its name (or `=name`). Its duration goes to `gen_ai.execute_tool.duration`. "
        "When a Gemini call of the same trace asked for it (same name, same arguments), the span links to that "
        "call and carries the model's call id when the model sent one; the next Gemini call that sends the tool's "
        "result (`function_response`) links back to the tool span.",
    ),
)

SPANS = (
    *SPANS,
    Span(
        "agent", "invoke_agent {gen_ai.agent.name}", "INTERNAL",
        (GEN_AI_OPERATION_NAME, GEN_AI_AGENT_NAME, AGENT_GENAI_CALLS, AGENT_GENAI_INPUT_TOKENS, AGENT_GENAI_OUTPUT_TOKENS,
         AGENT_TOOL_CALLS, AGENT_TOOL_ERRORS, ERROR_TYPE),
        notes="A function of the app named in `AGENTWATCH_AGENT_TARGETS` (a hand-written agent loop); "
        "`gen_ai.operation.name=invoke_agent`. The distro's roll-up processor adds the counts of the model calls "
        "(and their billed tokens) and `execute_tool` spans under it (the innermost agent's only, when agents nest).",
    ),
)

METRICS_BY_NAME = {metric.name: metric for metric in METRICS}

# --- GenAI (Gemini) ---------------------------------------------------------------------
# What agentwatch.instrumentors.gemini and the distro's roll-up processor emit: mostly the
# OpenTelemetry GenAI conventions, plus the agentwatch.gen_ai.* / agentwatch.request.gen_ai.*
# names they have no convention for. Kept apart from METRICS/SPANS above (the agent
# instrumentors' catalogue); tests/test_gemini.py checks a real run against these.
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"  # deprecated; only with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai/dup
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"  # opt-in content
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"  # opt-in content
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
# request
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
# opt-in content (on the call span, or on the inference details event)
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS = "gen_ai.tool.definitions"
GEN_AI_INFERENCE_DETAILS_EVENT = "gen_ai.client.inference.operation.details"
# the exception span event (as Span.record_exception writes it)
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

GENAI_COST = "agentwatch.gen_ai.usage.cost"
GENAI_ROUND_TRIP = "agentwatch.gen_ai.round_trip"
GENAI_ROUND_TRIPS = "agentwatch.gen_ai.round_trips"
GENAI_REQUEST_TOOLS = "agentwatch.gen_ai.request.tools"
GENAI_RESPONSE_TOOL_CALLS = "agentwatch.gen_ai.response.tool_calls"
GENAI_STREAM_OUTCOME = "agentwatch.gen_ai.stream.outcome"
GENAI_COUNT_TOKENS_TOTAL = "agentwatch.gen_ai.count_tokens.total_tokens"
REQUEST_GENAI_COST = "agentwatch.request.gen_ai.cost"
REQUEST_GENAI_INPUT_TOKENS = "agentwatch.request.gen_ai.input_tokens"
REQUEST_GENAI_OUTPUT_TOKENS = "agentwatch.request.gen_ai.output_tokens"
REQUEST_GENAI_CALLS = "agentwatch.request.gen_ai.calls"
REQUEST_GENAI_TOOL_CALLS = "agentwatch.request.gen_ai.tool_calls"
REQUEST_GENAI_TOOL_ERRORS = "agentwatch.request.gen_ai.tool_errors"
REQUEST_GENAI_TRANSFERS = "agentwatch.request.gen_ai.transfers"
GENAI_COST_METRIC = "agentwatch.gen_ai.client.cost"
# Tool-call signals of a request (a trace in this process), from the function calls the model sends.
GENAI_TOOL_LOOP_EVENT = "agentwatch.gen_ai.tool_loop"
GENAI_UNKNOWN_TOOL_EVENT = "agentwatch.gen_ai.unknown_tool"
GENAI_TOOL_LOOP_COUNT = "agentwatch.gen_ai.tool_loop.count"
GENAI_TOOL_LOOPS_METRIC = "agentwatch.gen_ai.tool_loops"
GENAI_UNKNOWN_TOOLS_METRIC = "agentwatch.gen_ai.unknown_tool_calls"
# Provider safety blocks (Gemini: prompt_feedback.block_reason, a candidate's safety finish reason or
# blocked rating), with the provider's values. The GenAI conventions define no guardrail event yet.
GENAI_GUARDRAIL_EVENT = "agentwatch.gen_ai.guardrail"
GENAI_GUARDRAIL_TARGET = "agentwatch.gen_ai.guardrail.target"  # "prompt" | "response"
GENAI_GUARDRAIL_REASON = "agentwatch.gen_ai.guardrail.reason"  # BLOCK_REASON / FINISH_REASON name
GENAI_GUARDRAIL_CATEGORY = "agentwatch.gen_ai.guardrail.category"  # the (first) blocked HARM_CATEGORY_*
GENAI_GUARDRAIL_MESSAGE = "agentwatch.gen_ai.guardrail.message"
GENAI_GUARDRAIL_RATINGS = "agentwatch.gen_ai.guardrail.ratings"  # JSON [{category, probability, ...}]
GENAI_GUARDRAIL_CANDIDATE = "agentwatch.gen_ai.guardrail.candidate_index"
GENAI_GUARDRAIL_BLOCKS_METRIC = "agentwatch.gen_ai.guardrail.blocks"
GENAI_GUARDRAIL_ATTRIBUTES = (
    GEN_AI_PROVIDER_NAME, GEN_AI_REQUEST_MODEL, GEN_AI_RESPONSE_ID, GENAI_GUARDRAIL_TARGET, GENAI_GUARDRAIL_REASON,
    GENAI_GUARDRAIL_CATEGORY, GENAI_GUARDRAIL_MESSAGE, GENAI_GUARDRAIL_RATINGS, GENAI_GUARDRAIL_CANDIDATE,
)
GEN_AI_CLIENT_OPERATION_DURATION = "gen_ai.client.operation.duration"
GEN_AI_CLIENT_TOKEN_USAGE = "gen_ai.client.token.usage"
GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
GEN_AI_CLIENT_TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"
GEN_AI_EXECUTE_TOOL_DURATION = "gen_ai.execute_tool.duration"

GENAI_DURATION_BUCKETS = PLAN_DURATION_BUCKETS  # the conventions' advice for gen_ai.client.operation.duration
GENAI_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

# --- resilience: retries, circuit breakers, rate limits ------------------------------------
# agentwatch.instrumentors.retries (tenacity: the Gemini SDK's retry loop, AGENTWATCH_RETRY_TARGETS),
# agentwatch.instrumentors.breakers (pybreaker, aiobreaker), agentwatch.instrumentors.ratelimit (slowapi).
RETRY_ATTEMPTS = "agentwatch.retry.attempts"
RETRY_EVENT = "agentwatch.retry.failed_attempt"
RETRY_ATTEMPT = "agentwatch.retry.attempt"
RETRY_DELAY = "agentwatch.retry.delay"
RETRY_ADVISED_DELAY = "agentwatch.retry.advised_delay"
RETRY_OUTCOME = "agentwatch.retry.outcome"  # "retried" | "exhausted"
RETRY_TARGET = "agentwatch.retry.target"
RETRY_SOURCE = "agentwatch.retry.source"  # "gemini" | "tenacity" | "httpx"
RETRY_EVENT_ATTRIBUTES = (
    RETRY_ATTEMPT, ERROR_TYPE, "http.response.status_code", RETRY_DELAY, RETRY_ADVISED_DELAY, RETRY_OUTCOME,
)
BREAKER_NAME = "agentwatch.circuit_breaker.name"
BREAKER_LIBRARY = "agentwatch.circuit_breaker.library"
BREAKER_STATE = "agentwatch.circuit_breaker.state"
BREAKER_FROM_STATE = "agentwatch.circuit_breaker.previous_state"
BREAKER_REJECTED_EVENT = "agentwatch.circuit_breaker.rejected"
RATE_LIMIT_LIMIT = "agentwatch.rate_limit.limit"
RATE_LIMIT_EVENT = "agentwatch.rate_limit.rejected"
#: The value of the state gauge for each breaker state (one series per breaker, alertable as ``== 2``).
BREAKER_STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}
RETRY_DELAY_BUCKETS = (0, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)

_GENAI_BASE = (GEN_AI_OPERATION_NAME, GEN_AI_PROVIDER_NAME, GEN_AI_SYSTEM, GEN_AI_REQUEST_MODEL, SERVER_ADDRESS, SERVER_PORT)
_GENAI_USAGE = (
    GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, GENAI_COST,
)
_GENAI_RESPONSE = (GEN_AI_RESPONSE_ID, GEN_AI_RESPONSE_MODEL, GEN_AI_RESPONSE_FINISH_REASONS, GENAI_RESPONSE_TOOL_CALLS)
_GENAI_METRIC_ATTRIBUTES = (
    GEN_AI_OPERATION_NAME, GEN_AI_PROVIDER_NAME, GEN_AI_REQUEST_MODEL, GEN_AI_RESPONSE_MODEL, SERVER_ADDRESS,
    SERVER_PORT, ERROR_TYPE,
)
_TOOL_METRIC_ATTRIBUTES = (GEN_AI_OPERATION_NAME, GEN_AI_TOOL_NAME, GEN_AI_TOOL_TYPE, ERROR_TYPE)

GENAI_METRICS: tuple[Metric, ...] = (
    Metric(
        GEN_AI_CLIENT_OPERATION_DURATION, "histogram", "s",
        "Duration of each Gemini call (a whole stream; `error.type` = HTTP status or exception class on failure).",
        _GENAI_METRIC_ATTRIBUTES, GENAI_DURATION_BUCKETS, role="gemini",
    ),
    Metric(
        GEN_AI_CLIENT_TOKEN_USAGE, "histogram", "{token}",
        "Billed tokens per call, by `gen_ai.token.type` (`input`, `output` incl. thinking); summed over every "
        "round trip of the call.",
        (*_GENAI_METRIC_ATTRIBUTES, GEN_AI_TOKEN_TYPE), GENAI_TOKEN_BUCKETS, role="gemini",
    ),
    Metric(
        GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK, "histogram", "s",
        "Streams: time from the call to its first chunk.",
        _GENAI_METRIC_ATTRIBUTES, GENAI_DURATION_BUCKETS, role="gemini",
    ),
    Metric(
        GEN_AI_CLIENT_TIME_PER_OUTPUT_CHUNK, "histogram", "s",
        "Streams: time between consecutive chunks, after the first.",
        _GENAI_METRIC_ATTRIBUTES, GENAI_DURATION_BUCKETS, role="gemini",
    ),
    Metric(
        GEN_AI_EXECUTE_TOOL_DURATION, "histogram", "s",
        "Duration of each tool run: a function the SDK ran for automatic function calling, or one named in "
        "`AGENTWATCH_TOOL_TARGETS` (`error.type` = its exception class when it raised).",
        _TOOL_METRIC_ATTRIBUTES, GENAI_DURATION_BUCKETS, role="gemini",
    ),
    Metric(
        GENAI_TOOL_LOOPS_METRIC, "counter", "{loop}",
        "Requests in which the model asked for the same tool with the same arguments 3 times (counted once, "
        "at the third).",
        (GEN_AI_TOOL_NAME, GEN_AI_REQUEST_MODEL), role="gemini",
    ),
    Metric(
        GENAI_UNKNOWN_TOOLS_METRIC, "counter", "{call}",
        "Function calls the model sent for a function the request did not declare.",
        (GEN_AI_TOOL_NAME, GEN_AI_REQUEST_MODEL), role="gemini",
    ),
    Metric(
        GENAI_GUARDRAIL_BLOCKS_METRIC, "counter", "{block}",
        f"Prompts and responses the provider's safety filters blocked (one per `{GENAI_GUARDRAIL_EVENT}` event), "
        "by target (`prompt`/`response`), the provider's reason and the blocked category when it names one.",
        (GEN_AI_PROVIDER_NAME, GEN_AI_REQUEST_MODEL, GENAI_GUARDRAIL_TARGET, GENAI_GUARDRAIL_REASON,
         GENAI_GUARDRAIL_CATEGORY), role="gemini",
    ),
    Metric(
        GENAI_COST_METRIC, "counter", "USD",
        "Cost of Gemini calls from the bundled (or `AGENTWATCH_GENAI_PRICES`) price table; unknown models add nothing.",
        _GENAI_METRIC_ATTRIBUTES, role="gemini",
    ),
)

GENAI_SPANS: tuple[Span, ...] = (
    Span(
        "gemini", "{gen_ai.operation.name} {gen_ai.request.model}", "CLIENT",
        (*_GENAI_BASE, GEN_AI_REQUEST_STREAM, GEN_AI_REQUEST_TEMPERATURE, GEN_AI_REQUEST_TOP_P, GEN_AI_REQUEST_TOP_K,
         GEN_AI_REQUEST_MAX_TOKENS, GEN_AI_REQUEST_SEED, GEN_AI_REQUEST_PRESENCE_PENALTY, GEN_AI_REQUEST_FREQUENCY_PENALTY,
         GEN_AI_REQUEST_STOP_SEQUENCES, GEN_AI_REQUEST_CHOICE_COUNT, GEN_AI_OUTPUT_TYPE, GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
         GENAI_REQUEST_TOOLS, *_GENAI_RESPONSE, GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, GENAI_STREAM_OUTCOME,
         GENAI_COUNT_TOKENS_TOTAL, *_GENAI_USAGE, GENAI_ROUND_TRIPS, RETRY_ATTEMPTS, ERROR_TYPE),
        content_attributes=(GEN_AI_INPUT_MESSAGES, GEN_AI_OUTPUT_MESSAGES, GEN_AI_SYSTEM_INSTRUCTIONS, GEN_AI_TOOL_DEFINITIONS),
        events=(RETRY_EVENT, GENAI_TOOL_LOOP_EVENT, GENAI_UNKNOWN_TOOL_EVENT),
        event_attributes=(*RETRY_EVENT_ATTRIBUTES, GEN_AI_TOOL_NAME, GENAI_TOOL_LOOP_COUNT),
        notes="One per public SDK call (`generate_content`, `embeddings`, `count_tokens`; chats included), however "
        "many times the SDK's retry loop (`HttpRetryOptions`, tenacity) sent a request. Usage and "
        "cost are the sum over its round trips. With `EVENT_ONLY`/`SPAN_AND_EVENT` content goes to a "
        f"`{GEN_AI_INFERENCE_DETAILS_EVENT}` log event. Each failed attempt the retry loop saw adds a "
        f"`{RETRY_EVENT}` event; `{RETRY_ATTEMPTS}` (HTTP requests sent, retries included) is set when one was retried. "
        f"A response asking for a tool the request did not declare adds `{GENAI_UNKNOWN_TOOL_EVENT}`; the third "
        f"request of the same tool with the same arguments in one trace adds `{GENAI_TOOL_LOOP_EVENT}` "
        "(`gen_ai.tool.name`, the count). A prompt or response the provider's safety filters blocked emits an "
        f"`{GENAI_GUARDRAIL_EVENT}` log event parented to the span (the provider's reason, category, ratings).",
    ),
    Span(
        "gemini round trip", "{gen_ai.operation.name} {gen_ai.request.model}", "CLIENT",
        (*_GENAI_BASE, GENAI_ROUND_TRIP, *_GENAI_RESPONSE, *_GENAI_USAGE, ERROR_TYPE),
        notes="Child of the call span, one per HTTP request when a call sent several (automatic function calling, "
        "continuation); `agentwatch.gen_ai.round_trip` = 1, 2, ...",
    ),
    Span(
        "gemini tool", "execute_tool {gen_ai.tool.name}", "INTERNAL",
        (GEN_AI_OPERATION_NAME, GEN_AI_TOOL_NAME, GEN_AI_TOOL_TYPE, GEN_AI_TOOL_CALL_ID, GEN_AI_TOOL_DESCRIPTION,
         ERROR_TYPE),
        content_attributes=(GEN_AI_TOOL_CALL_ARGUMENTS, GEN_AI_TOOL_CALL_RESULT),
        notes="A function the SDK ran between round trips (automatic function calling); child of the call span. "
        "`error.type` is the function's own exception class (the model is then sent the error).",
    ),
    Span(
        "request roll-up", "the request's server span", "SERVER",
        (REQUEST_GENAI_COST, REQUEST_GENAI_INPUT_TOKENS, REQUEST_GENAI_OUTPUT_TOKENS, REQUEST_GENAI_CALLS,
         REQUEST_GENAI_TOOL_CALLS, REQUEST_GENAI_TOOL_ERRORS, REQUEST_GENAI_TRANSFERS),
        notes="Added by the distro's roll-up processor: the sum over the GenAI call spans that ended inside the "
        "request (round trips not counted twice); cost only when a call had a price. The `execute_tool` spans "
        "that ended inside it (any instrumentation's: the SDK's automatic function calling, Google ADK), those "
        "that failed, and agent transfers (ADK's `transfer_to_agent`), each once the request has one.",
    ),
)

GENAI_METRICS_BY_NAME = {metric.name: metric for metric in GENAI_METRICS}


def metrics_for(role: str) -> tuple[Metric, ...]:
    return tuple(metric for metric in METRICS if metric.role == role)


def metrics_for_role(metrics: Iterable[Metric], role: str) -> tuple[Metric, ...]:
    """The entries of ``metrics`` (a catalogue) that ``role``'s instrumentor emits."""
    return tuple(metric for metric in metrics if metric.role == role)


def create_instruments(
    meter: Any, metrics: Iterable[Metric], gauge_callbacks: Sequence[Callable[..., Any]] = ()
) -> dict[str, Any]:
    """The instruments of ``metrics`` on ``meter``, by metric name (gauges observable when
    ``gauge_callbacks`` are given). Every instrumentor builds its instruments here, from the catalogue."""
    return {
        metric.name: metric.create(meter, gauge_callbacks if metric.instrument == "gauge" else None) for metric in metrics
    }


# --- vector DB (chromadb) -----------------------------------------------------------------
# What agentwatch.instrumentors.chromadb emits: the OpenTelemetry database conventions
# (stable names only: db.system.name, db.operation.name, db.collection.name, db.namespace;
# `chromadb` is not in the conventions' list of well-known db.system.name values, so it is a
# custom one), plus the agentwatch.vectordb.* names they have no convention for. Kept apart
# from METRICS/SPANS (scope `agentwatch.instrumentors.chromadb`); tests/test_chromadb.py
# checks a real run against these.
DB_SYSTEM_NAME = "db.system.name"
DB_COLLECTION_NAME = "db.collection.name"
DB_NAMESPACE = "db.namespace"
DB_OPERATION_NAME = "db.operation.name"
DB_RESPONSE_RETURNED_ROWS = "db.response.returned_rows"

VECTORDB_QUERY_COUNT = "agentwatch.vectordb.query.count"
VECTORDB_QUERY_N_RESULTS = "agentwatch.vectordb.query.n_results"
VECTORDB_RECORDS = "agentwatch.vectordb.records"
VECTORDB_QUERY_TEXT = "agentwatch.vectordb.query.text"
VECTORDB_DOCUMENTS = "agentwatch.vectordb.collection.documents"

# The database conventions' advice for db.client.operation.duration / db.client.response.returned_rows.
DB_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
DB_ROWS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

_DB_METRIC_ATTRIBUTES = (DB_SYSTEM_NAME, DB_COLLECTION_NAME, DB_NAMESPACE, DB_OPERATION_NAME, SERVER_ADDRESS, SERVER_PORT)

VECTORDB_METRICS: tuple[Metric, ...] = (
    Metric(
        "db.client.operation.duration", "histogram", "s",
        "Duration of each chromadb collection call (`error.type` = exception class when it raised).",
        (*_DB_METRIC_ATTRIBUTES, ERROR_TYPE), DB_DURATION_BUCKETS, role="chromadb",
    ),
    Metric(
        "db.client.response.returned_rows", "histogram", "{row}",
        "Records returned by each `query` (summed over its query vectors), `get` and `peek`.",
        _DB_METRIC_ATTRIBUTES, DB_ROWS_BUCKETS, role="chromadb",
    ),
    Metric(
        VECTORDB_DOCUMENTS, "gauge", "{document}",
        "Records in each chromadb collection the app has used (counted when metrics are collected).",
        (DB_SYSTEM_NAME, DB_COLLECTION_NAME, DB_NAMESPACE, SERVER_ADDRESS, SERVER_PORT), role="chromadb",
    ),
)

VECTORDB_SPANS: tuple[Span, ...] = (
    Span(
        "chromadb", "{db.operation.name} {db.collection.name}", "CLIENT",
        (DB_SYSTEM_NAME, DB_COLLECTION_NAME, DB_NAMESPACE, DB_OPERATION_NAME, DB_RESPONSE_RETURNED_ROWS,
         SERVER_ADDRESS, SERVER_PORT, VECTORDB_QUERY_COUNT, VECTORDB_QUERY_N_RESULTS, VECTORDB_RECORDS, ERROR_TYPE),
        content_attributes=(VECTORDB_QUERY_TEXT,),
        notes="One per `Collection` / `AsyncCollection` call: `add`, `get`, `peek`, `query`, `update`, `upsert`, "
        "`delete`, `count`. `db.system.name=chromadb`; `db.namespace` is `{tenant}|{database}`; `server.*` only "
        "for HTTP clients. `query.count` = query vectors/texts in the call, `n_results` = results asked per "
        "query (`limit` for `get`/`peek`), `records` = records sent (`add`/`update`/`upsert`) or deleted. "
        "Embeddings and documents are never recorded; query texts only with content capture on.",
    ),
)

VECTORDB_METRICS_BY_NAME = {metric.name: metric for metric in VECTORDB_METRICS}


# --- caches and job queues (agentwatch.instrumentors.caches / .queues) ---------------------
# Objects the app names in AGENTWATCH_CACHE_TARGETS / AGENTWATCH_QUEUE_TARGETS (plus FastAPI's
# background tasks): read when metrics are collected, so the names carry no per-call cost unless
# counting needs it (see the instrumentors). No OpenTelemetry convention covers them yet.
CACHE_NAME = "agentwatch.cache.name"
CACHE_RESULT = "agentwatch.cache.result"  # hit | miss
QUEUE_NAME = "agentwatch.queue.name"
CACHE_LOOKUPS_METRIC = "agentwatch.cache.lookups"
CACHE_SIZE_METRIC = "agentwatch.cache.size"
CACHE_MAX_SIZE_METRIC = "agentwatch.cache.max_size"
QUEUE_DEPTH_METRIC = "agentwatch.queue.depth"
QUEUE_OLDEST_AGE_METRIC = "agentwatch.queue.oldest_age"

CACHE_QUEUE_METRICS: tuple[Metric, ...] = (
    Metric(
        CACHE_LOOKUPS_METRIC, "counter", "{lookup}",
        "Lookups of each cache named by `AGENTWATCH_CACHE_TARGETS`, `agentwatch.cache.result` = `hit` or `miss` "
        "(read when metrics are collected; monotonic across `cache_clear()`). Hit ratio: hit / all.",
        (CACHE_NAME, CACHE_RESULT), role="cache",
    ),
    Metric(
        CACHE_SIZE_METRIC, "gauge", "{entry}",
        "Current size of each named cache (`currsize`: entries, or the `getsizeof` weight of a cachetools cache).",
        (CACHE_NAME,), role="cache",
    ),
    Metric(
        CACHE_MAX_SIZE_METRIC, "gauge", "{entry}",
        "Capacity of each named cache (`maxsize`); absent for an unbounded one.",
        (CACHE_NAME,), role="cache",
    ),
    Metric(
        QUEUE_DEPTH_METRIC, "gauge", "{item}",
        "Items waiting in each queue named by `AGENTWATCH_QUEUE_TARGETS` (`qsize()`), and FastAPI background "
        "tasks created but not started yet (`agentwatch.queue.name=fastapi.background`).",
        (QUEUE_NAME,), role="queue",
    ),
    Metric(
        QUEUE_OLDEST_AGE_METRIC, "gauge", "s",
        "Age of the oldest waiting item of each queue (0 when empty); FIFO and LIFO queues and background "
        "tasks (a `PriorityQueue` reports its depth only).",
        (QUEUE_NAME,), role="queue",
    ),
)
CACHE_QUEUE_METRICS_BY_NAME = {metric.name: metric for metric in CACHE_QUEUE_METRICS}


# --- HTTP, database and resource names (OpenTelemetry conventions) -------------------------
# What the web layer records and ``agentwatch report`` reads: the stable HTTP names, and the
# pre-1.0 ones older instrumentations still emit (the report falls back to them).
HTTP_SERVER_REQUEST_DURATION_METRIC = "http.server.request.duration"  # unit s
HTTP_SERVER_DURATION_METRIC = "http.server.duration"  # deprecated (pre-1.0 HTTP conventions), unit ms
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_ROUTE = "http.route"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
URL_FULL = "url.full"
URL_PATH = "url.path"
HTTP_METHOD = "http.method"  # deprecated: http.request.method
HTTP_TARGET = "http.target"  # deprecated: url.path (the report reads it as a route when no http.route)
HTTP_STATUS_CODE = "http.status_code"  # deprecated: http.response.status_code
DB_QUERY_TEXT = "db.query.text"
DB_SYSTEM = "db.system"  # deprecated: db.system.name
DB_STATEMENT = "db.statement"  # deprecated: db.query.text

SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
SERVICE_INSTANCE_ID = "service.instance.id"
TELEMETRY_DISTRO_NAME = "telemetry.distro.name"

# --- web layer (agentwatch/web: health checks and error responses) -----------------------
HEALTH_CHECK_NAME = "agentwatch.health.check.name"
HEALTH_CHECK_STATUS = "agentwatch.health.check.status"
HEALTH_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

WEB_METRICS: tuple[Metric, ...] = (
    Metric(
        "agentwatch.health.check.status", "gauge", "{status}",
        "Latest result of each health check: 1 healthy, 0.5 degraded, 0 unhealthy.",
        (HEALTH_CHECK_NAME,), role="health",
    ),
    Metric(
        "agentwatch.health.check.duration", "histogram", "s",
        "Duration of each health check run (cache hits are not runs).",
        (HEALTH_CHECK_NAME, HEALTH_CHECK_STATUS), HEALTH_DURATION_BUCKETS, role="health",
    ),
    Metric(
        "agentwatch.http.server.errors", "counter", "{error}",
        "Unhandled exceptions in routes, answered with a 500, by exception type and route.",
        (ERROR_TYPE, HTTP_ROUTE, HTTP_REQUEST_METHOD), role="errors",
    ),
)
WEB_METRICS_BY_NAME = {metric.name: metric for metric in WEB_METRICS}

RETRY_FAILED_ATTEMPTS_METRIC = "agentwatch.retry.failed_attempts"
GENAI_RATE_LIMIT_DELAY_METRIC = "agentwatch.gen_ai.client.rate_limit.retry_delay"
BREAKER_STATE_METRIC = "agentwatch.circuit_breaker.state"
BREAKER_TRANSITIONS_METRIC = "agentwatch.circuit_breaker.transitions"
BREAKER_REJECTED_METRIC = "agentwatch.circuit_breaker.rejected_calls"
RATE_LIMIT_REJECTIONS_METRIC = "agentwatch.rate_limit.rejections"
_BREAKER_ATTRIBUTES = (BREAKER_NAME, BREAKER_LIBRARY)

RESILIENCE_METRICS: tuple[Metric, ...] = (
    Metric(
        RETRY_FAILED_ATTEMPTS_METRIC, "counter", "{attempt}",
        "Failed attempts of retry loops: tenacity's (the Gemini SDK's, `AGENTWATCH_RETRY_TARGETS`) and the "
        "connection retries of httpx/httpx2 transports made with `retries=N` (`agentwatch.retry.source`); "
        "`agentwatch.retry.outcome` = `retried` (another attempt followed) or `exhausted` (the call gave up); "
        "`error.type` = HTTP status or exception class; Gemini attempts carry the model.",
        (RETRY_SOURCE, RETRY_TARGET, GEN_AI_REQUEST_MODEL, ERROR_TYPE, RETRY_OUTCOME), role="retries",
    ),
    Metric(
        GENAI_RATE_LIMIT_DELAY_METRIC, "histogram", "s",
        "One record per 429 Gemini answered: the retry delay it advised (`RetryInfo`, else `Retry-After`; 0 when "
        "none). Its count is the Gemini 429 count.",
        (GEN_AI_REQUEST_MODEL, GEN_AI_PROVIDER_NAME, SERVER_ADDRESS), RETRY_DELAY_BUCKETS, role="retries",
    ),
    Metric(
        BREAKER_STATE_METRIC, "gauge", "{state}",
        "State of each circuit breaker the app used: 0 closed, 1 half-open, 2 open (names beyond "
        "`AGENTWATCH_RESILIENCE_MAX_NAMES` fold into `_other`).",
        _BREAKER_ATTRIBUTES, role="breakers",
    ),
    Metric(
        BREAKER_TRANSITIONS_METRIC, "counter", "{transition}",
        "State changes of each circuit breaker, from `agentwatch.circuit_breaker.previous_state` to "
        "`agentwatch.circuit_breaker.state`.",
        (*_BREAKER_ATTRIBUTES, BREAKER_FROM_STATE, BREAKER_STATE), role="breakers",
    ),
    Metric(
        BREAKER_REJECTED_METRIC, "counter", "{call}",
        "Calls an open circuit breaker refused without running them.",
        _BREAKER_ATTRIBUTES, role="breakers",
    ),
    Metric(
        RATE_LIMIT_REJECTIONS_METRIC, "counter", "{request}",
        "Requests slowapi rejected (answered 429), by the limit that was hit (limits beyond "
        "`AGENTWATCH_RESILIENCE_MAX_NAMES` fold into `_other`).",
        (RATE_LIMIT_LIMIT,), role="ratelimit",
    ),
)
RESILIENCE_METRICS_BY_NAME = {metric.name: metric for metric in RESILIENCE_METRICS}

RESILIENCE_SPANS: tuple[Span, ...] = (
    Span(
        "retry target", "{agentwatch.retry.target}", "INTERNAL",
        (RETRY_TARGET, RETRY_ATTEMPTS, ERROR_TYPE),
        events=(RETRY_EVENT,), event_attributes=RETRY_EVENT_ATTRIBUTES,
        notes="One per call of a tenacity-decorated function named in `AGENTWATCH_RETRY_TARGETS`, however many "
        f"attempts it made; `{RETRY_ATTEMPTS}` always set, one `{RETRY_EVENT}` event per failed attempt.",
    ),
    Span(
        "breaker rejection", "the current span", "-",
        (BREAKER_NAME, BREAKER_LIBRARY, BREAKER_STATE),
        events=(BREAKER_REJECTED_EVENT,), event_attributes=(BREAKER_NAME, BREAKER_LIBRARY, BREAKER_STATE),
        notes="Set on the span current when an open circuit breaker refused a call (e.g. the request's server span).",
    ),
    Span(
        "rate-limit rejection", "the current span", "-",
        (RATE_LIMIT_LIMIT,), events=(RATE_LIMIT_EVENT,), event_attributes=(RATE_LIMIT_LIMIT,),
        notes="Set on the span current when slowapi rejected the request (its server span).",
    ),
)


# --- MCP (agentwatch.instrumentors.mcp) -----------------------------------------------------
# The GenAI/MCP semantic conventions (semantic-conventions-genai, docs/gen-ai/mcp.md): one CLIENT span
# per request sent, one SERVER span per request handled, four duration histograms (s, their buckets).
MCP_METHOD_NAME = "mcp.method.name"
MCP_SESSION_ID = "mcp.session.id"
MCP_PROTOCOL_VERSION = "mcp.protocol.version"
MCP_RESOURCE_URI = "mcp.resource.uri"
JSONRPC_REQUEST_ID = "jsonrpc.request.id"
RPC_RESPONSE_STATUS_CODE = "rpc.response.status_code"
NETWORK_TRANSPORT = "network.transport"
GEN_AI_PROMPT_NAME = "gen_ai.prompt.name"
MCP_CLIENT_OPERATION_DURATION = "mcp.client.operation.duration"
MCP_SERVER_OPERATION_DURATION = "mcp.server.operation.duration"
MCP_CLIENT_SESSION_DURATION = "mcp.client.session.duration"
MCP_SERVER_SESSION_DURATION = "mcp.server.session.duration"
MCP_DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
_MCP_OPERATION = (MCP_METHOD_NAME, MCP_PROTOCOL_VERSION, GEN_AI_OPERATION_NAME, GEN_AI_TOOL_NAME, GEN_AI_PROMPT_NAME,
                  RPC_RESPONSE_STATUS_CODE, ERROR_TYPE)
_MCP_SPAN = (MCP_METHOD_NAME, MCP_SESSION_ID, MCP_PROTOCOL_VERSION, JSONRPC_REQUEST_ID, GEN_AI_OPERATION_NAME, GEN_AI_TOOL_NAME,
             GEN_AI_PROMPT_NAME, MCP_RESOURCE_URI, RPC_RESPONSE_STATUS_CODE, ERROR_TYPE)
MCP_METRICS: tuple[Metric, ...] = (
    Metric(MCP_CLIENT_OPERATION_DURATION, "histogram", "s", "Each MCP request as seen by its sender, sent to response "
           "(`error.type` = JSON-RPC error code, exception class, or `tool_error`).", _MCP_OPERATION,
           MCP_DURATION_BUCKETS, role="mcp"),
    Metric(MCP_SERVER_OPERATION_DURATION, "histogram", "s", "Each MCP request as seen by the server, received to "
           "result.", (*_MCP_OPERATION, NETWORK_TRANSPORT), MCP_DURATION_BUCKETS, role="mcp"),
    Metric(MCP_CLIENT_SESSION_DURATION, "histogram", "s", "Each `ClientSession` from `async with` entry to exit.",
           (ERROR_TYPE,), MCP_DURATION_BUCKETS, role="mcp"),
    Metric(MCP_SERVER_SESSION_DURATION, "histogram", "s", "Each server session (stdio: the process's serve loop; "
           "Streamable HTTP: one session id's loop).", (NETWORK_TRANSPORT, ERROR_TYPE), MCP_DURATION_BUCKETS,
           role="mcp"),
)
MCP_METRIC_KEYS = frozenset(key for metric in MCP_METRICS for key in metric.attributes)
MCP_SPANS: tuple[Span, ...] = (
    Span("mcp client", "{mcp.method.name} {target}", "CLIENT", _MCP_SPAN,
         content_attributes=(GEN_AI_TOOL_CALL_ARGUMENTS, GEN_AI_TOOL_CALL_RESULT),
         notes="One per request a `ClientSession` sends, `initialize` and list calls included (target: the tool or "
         "prompt name, resource URI; none for list calls); its trace context goes in `params._meta`; `mcp.session.id` "
         "over Streamable HTTP once the server gave one. Replaces the "
         "SDK's own `MCP send` span. Inside an `execute_tool` span a `tools/call` sets these on that span instead. "
         "A tool result with `isError` gives `error.type=tool_error`."),
    Span("mcp server", "{mcp.method.name} {target}", "SERVER", (*_MCP_SPAN, NETWORK_TRANSPORT),
         content_attributes=(GEN_AI_TOOL_CALL_ARGUMENTS, GEN_AI_TOOL_CALL_RESULT),
         notes="One per request a low-level `Server` or `MCPServer` (FastMCP) handles, child of the client's span "
         "(from `params._meta`); replaces the SDK's middleware span. `mcp.session.id` on Streamable HTTP "
         "(redacted by the scrubber unless listed in `AGENTWATCH_SCRUB_NOT_SECRET_KEYS`)."),
)
