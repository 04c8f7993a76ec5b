"""
Agent instrumentation for hand-written agent loops: the app's agent-loop functions become
``invoke_agent {gen_ai.agent.name}`` INTERNAL spans, as the GenAI conventions define them.

Zero code: name the functions in ``AGENTWATCH_AGENT_TARGETS`` and run the app under
``opentelemetry-instrument`` (functions of the script itself included: ``__main__:run_agent``)::

    AGENTWATCH_AGENT_TARGETS=agent:run_agent=support opentelemetry-instrument python app.py

Each span carries ``gen_ai.operation.name=invoke_agent`` and ``gen_ai.agent.name`` (``=name``, default
the function's name). The distro's roll-up processor (:mod:`agentwatch.distro.rollup`) adds what ran
under it: ``agentwatch.agent.gen_ai.calls`` / ``.input_tokens`` / ``.output_tokens`` and
``agentwatch.agent.tool_calls`` / ``agentwatch.agent.tool_errors``.

API
---
"""

from __future__ import annotations

from typing import Any

from agentwatch import semconv as sc
from agentwatch.distro import environment_variables as ev
from agentwatch.instrumentors._agents.calls import Call, Role
from agentwatch.instrumentors._agents.instrumentor import AgentInstrumentor

__all__ = ["AgentwatchAgentLoopInstrumentor", "AgentLoopRole", "ROLE"]


class AgentLoopRole(Role):
    role = "agent"
    entry_point = "agentwatch_agents"

    def target_name(self, target: Any) -> str:
        return target.name or target.path.rsplit(".", 1)[-1]

    def span_name(self, name: str) -> str:
        return f"invoke_agent {name}"

    def start_attributes(self, call: Call) -> dict[str, Any]:
        return {sc.GEN_AI_OPERATION_NAME: "invoke_agent", sc.GEN_AI_AGENT_NAME: call.name}


ROLE = AgentLoopRole()


class AgentwatchAgentLoopInstrumentor(AgentInstrumentor):
    """Entry point ``opentelemetry_instrumentor: agentwatch_agents``."""

    roles = ((ROLE, ev.AGENTWATCH_AGENT_TARGETS),)
