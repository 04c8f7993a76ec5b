"""
Planner and critique instrumentation: the app's planner becomes a GenAI
``plan {gen_ai.agent.name}`` span, each critic call inside it one
``critique {name}`` child (one per iteration of the draft -> critique -> revise
loop) whose verdict is a ``gen_ai.evaluation.result`` event: a log record parented to the critique
span, as the GenAI conventions define it (also a span event with ``AGENTWATCH_EVALUATION_SPAN_EVENTS``;
see :mod:`agentwatch.instrumentors._agents.evaluation`).

Zero code::

    AGENTWATCH_PLANNER_TARGETS=agent:Planner.plan \\
    AGENTWATCH_CRITIC_TARGETS=agent:Critic.review \\
    opentelemetry-instrument python app.py

From code: ``@agentwatch.planner`` / ``@agentwatch.critic``, or
``with agentwatch.planning("agent"):`` and ``with agentwatch.critique("critic") as c: c.record(verdict)``.

Verdicts are read from bool, ``"accepted"``/``"rejected"``-like strings,
``(bool, score, feedback)`` tuples, dicts / objects with ``accepted|approved|ok``
or ``verdict|decision|status`` and ``score``, or ``AGENTWATCH_CRITIC_EXTRACTOR``.
Iterations are the critiques observed inside the plan; when the planner has
no critic target, an ``iterations``/``attempts``/``rounds`` integer on its
result is used.

Usage
-----

.. code:: python

    from agentwatch.instrumentors.planner import AgentwatchPlannerInstrumentor

    AgentwatchPlannerInstrumentor().instrument()   # AGENTWATCH_PLANNER_TARGETS, AGENTWATCH_CRITIC_TARGETS
    # tracer_provider=, meter_provider=, logger_provider= (the evaluation events') as keywords

API
---
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context

from agentwatch import semconv as sc
from agentwatch.distro import environment_variables as ev
from agentwatch.instrumentors._agents import evaluation, extract
from agentwatch.instrumentors._agents.calls import Call, Role
from agentwatch.instrumentors._agents.instrumentor import AgentInstrumentor

__all__ = ["AgentwatchPlannerInstrumentor", "PlannerRole", "CriticRole", "PLANNER", "CRITIC"]

_PLAN_KEY = otel_context.create_key("agentwatch-plan")


@dataclass
class PlanState:
    """What the critiques of one plan report back to it."""

    iterations: int = 0
    first_accepted: bool | None = None
    last_accepted: bool | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_iteration(self) -> int:
        with self.lock:
            self.iterations += 1
            return self.iterations


class PlannerRole(Role):
    role = "planner"
    entry_point = "agentwatch_planner"

    def span_name(self, name: str) -> str:
        return f"plan {name}"

    def start_attributes(self, call: Call) -> dict[str, Any]:
        return {sc.GEN_AI_OPERATION_NAME: "plan", sc.GEN_AI_AGENT_NAME: call.name}

    def enter(self, call: Call, ctx: Any) -> Any:
        call.state = PlanState()
        return otel_context.set_value(_PLAN_KEY, call.state, ctx)

    def finish(self, call: Call, result: Any) -> None:
        instruments = self.instruments()
        agent = {sc.GEN_AI_AGENT_NAME: call.name}
        instruments["agentwatch.plan.duration"].record(call.duration, agent)
        state: PlanState = call.state
        iterations = state.iterations
        if not iterations:
            counted = extract.as_number(extract.get_field(result, ("iterations", "attempts", "rounds")))
            iterations = int(counted) if counted is not None and counted >= 0 else 0
        if iterations:
            call.span.set_attribute(sc.PLAN_ITERATIONS, iterations)
            instruments["agentwatch.plan.iterations"].record(iterations, agent)
        if state.last_accepted is not None:
            call.span.set_attribute(sc.PLAN_ACCEPTED, state.last_accepted)
        if state.first_accepted is not None:
            instruments["agentwatch.plan.first_try_acceptance"].add(1, {**agent, sc.PLAN_ACCEPTED: state.first_accepted})

    def failed(self, call: Call, error: BaseException) -> None:
        self.instruments()["agentwatch.plan.duration"].record(
            call.duration, {sc.GEN_AI_AGENT_NAME: call.name, sc.ERROR_TYPE: type(error).__qualname__}
        )


class CriticRole(Role):
    role = "critic"
    entry_point = "agentwatch_planner"
    extractor_variable = ev.AGENTWATCH_CRITIC_EXTRACTOR

    def span_name(self, name: str) -> str:
        return f"critique {name}"

    def start_attributes(self, call: Call) -> dict[str, Any]:
        attributes: dict[str, Any] = {sc.GEN_AI_OPERATION_NAME: "critique", sc.GEN_AI_EVALUATION_NAME: call.name}
        plan = otel_context.get_value(_PLAN_KEY)
        if isinstance(plan, PlanState):
            call.state = (plan, plan.next_iteration())
            attributes[sc.CRITIQUE_ITERATION] = call.state[1]
        return attributes

    def finish(self, call: Call, result: Any) -> None:
        verdict = extract.extract_verdict(result)
        if verdict.accepted is None and verdict.score is None:
            return  # unknown shape: the span stays, without a verdict
        label = None
        if verdict.accepted is not None:
            label = "accepted" if verdict.accepted else "rejected"
            call.span.set_attribute(sc.CRITIQUE_VERDICT, label)
            self.instruments()["agentwatch.critique.verdicts"].add(
                1, {sc.GEN_AI_EVALUATION_NAME: call.name, sc.CRITIQUE_VERDICT: label}
            )
            if call.state is not None:
                plan, iteration = call.state
                with plan.lock:
                    if iteration == 1:
                        plan.first_accepted = verdict.accepted
                    plan.last_accepted = verdict.accepted
        # The verdict as a gen_ai.evaluation.result event parented to the critique span (the
        # explanation only with content capture on; a span event too with AGENTWATCH_EVALUATION_SPAN_EVENTS).
        evaluation.emit_evaluation(
            call.name, score=verdict.score, label=label, explanation=verdict.explanation, span=call.span
        )


PLANNER = PlannerRole()
CRITIC = CriticRole()


class AgentwatchPlannerInstrumentor(AgentInstrumentor):
    """Entry point ``opentelemetry_instrumentor: agentwatch_planner`` (planners and critics)."""

    roles = ((PLANNER, ev.AGENTWATCH_PLANNER_TARGETS), (CRITIC, ev.AGENTWATCH_CRITIC_TARGETS))

    def _instrument(self, **kwargs: Any) -> None:
        evaluation.bind(kwargs.get("logger_provider"))  # the verdicts' log events
        super()._instrument(**kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        evaluation.bind()
