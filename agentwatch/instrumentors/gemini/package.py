"""The google-genai releases this instrumentation supports (``instrumentation_dependencies()``).

Bounded above the newest major it is tested with (google-genai 3.4.0, the lock): it wraps private SDK
methods (``Models._generate_content``, ``google.genai._extra_utils``) that a new major may change.
Checked by ``GeminiInstrumentor().instrument()`` (BaseInstrumentor logs the conflict and instruments
nothing); ``opentelemetry-instrument`` passes ``skip_dep_check`` and checks agentwatch's own
distribution instead.
"""

_instruments = ("google-genai >= 1.0.0, < 4",)
