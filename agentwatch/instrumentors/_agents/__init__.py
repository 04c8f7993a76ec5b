"""Shared machinery of the agent instrumentors (intent, rag, planner), by job.

- :mod:`.targets`: ``module:function`` / ``module:Class.method`` strings from
  ``AGENTWATCH_*_TARGETS`` (optionally ``=name``), wrapped when their module is imported,
  whatever the import order, and unwrapped symmetrically.
- :mod:`.calls`: what one traced call records (:class:`~.calls.Role`, :class:`~.calls.Call`,
  ``begin``/``end``) and the one wrapper for functions, methods, coroutines and generators.
- :mod:`.extract`: reading an intent, documents or a verdict from the common return shapes.
- :mod:`.instrumentor`: :class:`~.instrumentor.AgentInstrumentor`, the base that ties roles to targets.
- :mod:`.settings`: the agent section of the settings (read by the distro's one reader), content
  capture and the off switches.

Dependencies run one way: ``instrumentor -> calls -> targets -> settings``, and ``calls -> extract``.
Nothing here imports the app or any library beyond OpenTelemetry and wrapt.
"""
