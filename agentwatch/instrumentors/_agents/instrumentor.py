"""The base of the agent instrumentors: roles bound to the providers, their targets wrapped."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from agentwatch.instrumentors._agents.calls import Role, make_wrapper
from agentwatch.instrumentors._agents.targets import TargetSet, parse_targets


class AgentInstrumentor(BaseInstrumentor):
    """Base of the agent instrumentors (intent, rag, planner): a subclass lists its roles in ``roles``,
    each with the variable naming its targets (``AGENTWATCH_*_TARGETS``).

    ``_instrument`` binds each role to the providers and wraps its targets; ``_uninstrument``
    unwraps them and unbinds the roles.
    """

    roles: tuple[tuple[Role, str], ...] = ()
    _targets: TargetSet | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._instance = None  # BaseInstrumentor's singleton slot: one per subclass, never inherited

    def instrumentation_dependencies(self) -> Collection[str]:
        return []  # instruments the app's own functions, no library

    def _instrument(self, **kwargs: Any) -> None:
        targets = TargetSet()
        for role, variable in self.roles:
            role.bind(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
            for target in parse_targets(variable):
                targets.add(target, lambda t, role=role: make_wrapper(role, role.target_name(t), enabled=role.enabled))
        targets.start()
        self._targets = targets

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._targets is not None:
            self._targets.stop()
        self._targets = None
        for role, _variable in self.roles:
            role.bind()
