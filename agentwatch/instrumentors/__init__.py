"""agentwatch instrumentors: one BaseInstrumentor per module."""
