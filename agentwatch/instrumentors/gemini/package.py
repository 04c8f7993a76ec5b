"""The google-genai releases this instrumentation supports (``instrumentation_dependencies()``)."""

_instruments = ("google-genai >= 1.0.0",)
