"""Test-only fault injection into agentwatch (tests/test_fault_injection.py).

Imported by a launcher script *after* ``opentelemetry-instrument`` has configured everything and *before*
the app is imported: it replaces agentwatch internals with functions that raise, so every wrapper,
extractor, scrubber and exporter of ours, and every per-request step of the web layer, fails on every
call. Production code carries no test hook.

``AGENTWATCH_TEST_FAULTS`` (comma-separated: wrappers, extractors, scrubber, exporters, web-ids, web) says
which. ``web-ids`` breaks the web layer's first step (request ids), so every request goes to the app
untouched; ``web`` breaks every later step (baggage, span attributes, startup checks, health endpoints,
response headers, context reset, the JSON 500, the request id in error bodies, error telemetry, ids on
outgoing calls, the server layer's span steps) while the ids themselves work.
"""

from __future__ import annotations

import os


class InjectedFault(RuntimeError):
    """Raised by every injected fault (its name shows in agentwatch's warning lines)."""


def _raiser(kind: str):
    def fail(*_args, **_kwargs):
        raise InjectedFault(f"injected {kind} fault")

    return fail


def _wrappers() -> None:
    from agentwatch.instrumentors import intent, planner, rag
    from agentwatch.instrumentors._agents import calls
    from agentwatch.instrumentors.gemini import call, generate_content, handoff

    # The agent roles' span start / end hooks (begin/end of every wrapped call).
    for role in (intent.IntentRole, rag.RetrievalRole, planner.PlannerRole, planner.CriticRole):
        for hook in ("start_attributes", "finish", "failed"):
            setattr(role, hook, _raiser("wrapper"))
    calls.Role.enter = _raiser("wrapper")
    # The Gemini wrappers: the step-aside check, context attach, the end of every call and round trip.
    handoff.step_aside = _raiser("wrapper")
    for name in ("attach", "_finish"):
        setattr(call.Call, name, _raiser("wrapper"))
    for name in ("hop_start", "hop_end"):
        setattr(generate_content.GenerateContentCall, name, _raiser("wrapper"))


def _extractors() -> None:
    from agentwatch.instrumentors._agents import extract as agent_extract
    from agentwatch.instrumentors.gemini import content, extract, tools

    for name in ("extract_intent", "extract_documents", "extract_verdict", "query_text", "top_k", "get_field"):
        setattr(agent_extract, name, _raiser("extractor"))
    for module, names in (
        (extract, ("response_attributes", "model_name")),
        (tools, ("tool_names", "afc_enabled", "function_calls")),
        (content, ("input_messages", "output_messages", "system_instructions")),
    ):
        for name in names:
            setattr(module, name, _raiser("extractor"))
    extract.Usage.of = classmethod(_raiser("extractor"))


def _scrubber() -> None:
    from agentwatch.distro import scrub

    for name in ("scrub_spans", "scrub_logs", "scrub_metrics_safely", "scrub_value"):
        setattr(scrub.Scrubber, name, _raiser("scrubber"))


def _exporters() -> None:
    from opentelemetry.exporter.otlp.proto.http import _log_exporter, metric_exporter, trace_exporter

    for cls in (trace_exporter.OTLPSpanExporter, metric_exporter.OTLPMetricExporter, _log_exporter.OTLPLogExporter):
        for name in ("export", "force_flush", "shutdown"):
            setattr(cls, name, _raiser("exporter"))


def _web_ids() -> None:
    """The first per-request step of the web layer: no request can be set up."""
    from agentwatch.web import request_id

    request_id.from_scope = _raiser("web")


def _web() -> None:
    """Every later per-request step of the web layer (the ids themselves work)."""
    from agentwatch.web import errors, health, middleware, outgoing, telemetry

    for name in ("_attach_baggage", "_annotate_span", "_with_id_headers", "_detach"):
        setattr(middleware, name, _raiser("web"))
    middleware.rid = _RaisingReset(middleware.rid)
    health.state = _raiser("web")  # startup checks, lifespan hooks, and every health endpoint
    # The JSON 500, the exception on the server span, the request id in error bodies, the error counter.
    for name in ("_json_500", "_record_on_span", "_request_id"):
        setattr(errors, name, _raiser("web"))
    telemetry._get = _raiser("web")  # noqa: SLF001
    # The decision on the app's outgoing httpx calls (Gemini: a provider SDK, so no ids are added to it,
    # but the boundary is decided on every call): a failure keeps baggage and ids in.
    outgoing.boundaries.outgoing = _raiser("web")
    # The server layer's steps after the span is open: status and headers on each answer, the exception,
    # the metrics and the context at the end (the span still ends with the last body chunk).
    from agentwatch.web import server

    for name in ("_before_send", "failed", "finish"):
        setattr(server._Exchange, name, _raiser("web"))  # noqa: SLF001


class _RaisingReset:
    """The request-id module as the middleware sees it, with the context reset raising."""

    def __init__(self, module) -> None:
        self._module = module
        self.reset = _raiser("web")

    def __getattr__(self, name: str):
        return getattr(self._module, name)


_KINDS = {
    "wrappers": _wrappers,
    "extractors": _extractors,
    "scrubber": _scrubber,
    "exporters": _exporters,
    "web-ids": _web_ids,
    "web": _web,
}


def install(kinds: str | None = None) -> list[str]:
    chosen = [k.strip() for k in (kinds if kinds is not None else os.environ.get("AGENTWATCH_TEST_FAULTS", "")).split(",") if k.strip()]
    for kind in chosen:
        _KINDS[kind]()
    return chosen


install()
