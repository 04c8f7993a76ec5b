"""Test-only fault injection into agentwatch (tests/test_fault_injection.py).

Imported by a launcher script *after* ``opentelemetry-instrument`` has configured everything and *before*
the app is imported: it replaces agentwatch internals with functions that raise, so every wrapper,
extractor, scrubber and exporter of ours fails on every call. Production code carries no test hook.

``AGENTWATCH_TEST_FAULTS`` (comma-separated: wrappers, extractors, scrubber, exporters) says which.
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
    from agentwatch.instrumentors import _wrapping, gemini, intent, planner, rag

    # The agent roles' span start / end hooks (begin/end of every wrapped call).
    for role in (intent.IntentRole, rag.RetrievalRole, planner.PlannerRole, planner.CriticRole):
        for hook in ("start_attributes", "finish", "failed"):
            setattr(role, hook, _raiser("wrapper"))
    _wrapping.Role.enter = _raiser("wrapper")
    # The Gemini wrappers: the step-aside check, context attach, the end of every call and round trip.
    gemini._step_aside = _raiser("wrapper")  # noqa: SLF001
    for name in ("attach", "_finish", "hop_start", "hop_end"):
        setattr(gemini._Call, name, _raiser("wrapper"))  # noqa: SLF001


def _extractors() -> None:
    from agentwatch.instrumentors import _wrapping, gemini

    for name in ("extract_intent", "extract_documents", "extract_verdict", "query_text", "top_k", "get_field"):
        setattr(_wrapping, name, _raiser("extractor"))
    for name in ("_response_attributes", "_tool_names", "_afc_enabled", "_input_messages", "_output_messages",
                 "_system_instructions", "_function_calls", "_model_name"):
        setattr(gemini, name, _raiser("extractor"))
    gemini._Usage.of = classmethod(_raiser("extractor"))  # noqa: SLF001


def _scrubber() -> None:
    from agentwatch.distro import scrubbing

    for name in ("scrub_spans", "scrub_logs", "scrub_metrics_safely", "scrub_value"):
        setattr(scrubbing.Scrubber, name, _raiser("scrubber"))


def _exporters() -> None:
    from opentelemetry.exporter.otlp.proto.http import _log_exporter, metric_exporter, trace_exporter

    for cls in (trace_exporter.OTLPSpanExporter, metric_exporter.OTLPMetricExporter, _log_exporter.OTLPLogExporter):
        for name in ("export", "force_flush", "shutdown"):
            setattr(cls, name, _raiser("exporter"))


_KINDS = {"wrappers": _wrappers, "extractors": _extractors, "scrubber": _scrubber, "exporters": _exporters}


def install(kinds: str | None = None) -> list[str]:
    chosen = [k.strip() for k in (kinds if kinds is not None else os.environ.get("AGENTWATCH_TEST_FAULTS", "")).split(",") if k.strip()]
    for kind in chosen:
        _KINDS[kind]()
    return chosen


install()
