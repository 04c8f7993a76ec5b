"""The three agent instrumentors share one base (_agents.instrumentor.AgentInstrumentor): roles declared, nothing else."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from agentwatch.instrumentors._agents.instrumentor import AgentInstrumentor
from agentwatch.instrumentors import intent, planner, rag


def test_each_instrumentor_is_its_own_singleton_even_after_the_base_was_made():
    base = AgentInstrumentor()
    made = [intent.AgentwatchIntentInstrumentor(), rag.AgentwatchRAGInstrumentor(), planner.AgentwatchPlannerInstrumentor()]
    assert [type(i) for i in made] == [intent.AgentwatchIntentInstrumentor, rag.AgentwatchRAGInstrumentor,
                                       planner.AgentwatchPlannerInstrumentor]
    assert base not in made and made[0] is intent.AgentwatchIntentInstrumentor()
    assert [list(i.instrumentation_dependencies()) for i in made] == [[], [], []]


def test_roles_are_bound_on_instrument_and_unbound_on_uninstrument(monkeypatch):
    monkeypatch.setenv("AGENTWATCH_PLANNER_TARGETS", "")
    provider = TracerProvider()
    instrumentor = planner.AgentwatchPlannerInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        assert planner.PLANNER._tracer_provider is provider and planner.CRITIC._tracer_provider is provider
        assert instrumentor._targets is not None
    finally:
        instrumentor.uninstrument()
    assert planner.PLANNER._tracer_provider is None and planner.CRITIC._tracer_provider is None
    assert instrumentor._targets is None
