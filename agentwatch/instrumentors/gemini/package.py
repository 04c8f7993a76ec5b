"""The google-genai releases this instrumentation supports (``instrumentation_dependencies()``).

Tested with google-genai 2.30.0 (requirements-lowest.lock, beside google-adk) and 3.4.0
(requirements.lock); bounded above the newest major tested: it wraps private SDK methods
(``Models._generate_content``, ``google.genai._extra_utils``) that a new major may change. Older
releases are accepted untested: a method one of them lacks is reported once and left alone.
Checked by ``GeminiInstrumentor().instrument()`` (BaseInstrumentor logs the conflict and instruments
nothing); ``opentelemetry-instrument`` passes ``skip_dep_check`` and checks agentwatch's own
distribution instead.
"""

_instruments = ("google-genai >= 1.0.0, < 4",)
