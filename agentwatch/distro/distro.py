"""The agentwatch distro: defaults through environment variables, and instrumentor loading.

``opentelemetry-instrument`` runs ``configure()`` before anything else. The
distro only fills variables the user has not set (``os.environ.setdefault``),
so every explicit choice wins; instrumentors read them when they load.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro

from agentwatch.distro import _diagnostics
from agentwatch.distro import environment_variables as ev
from agentwatch.distro.guard import failed, guard, run, strict
from agentwatch.distro.settings import settings

#: Contrib instrumentors replaced by an agentwatch subclass that closes a gap: (module, class, whether the
#: subclass only records more, so that over a no-op SDK, ``OTEL_SDK_DISABLED=true``, the contrib one is loaded).
_REPLACEMENTS = {
    # The contrib instrumentors, with agentwatch's client layer where it gives their output (agentwatch.web.client);
    # it injects trace context as they do, so it stays with the SDK off.
    ("httpx", "opentelemetry.instrumentation.httpx"): ("agentwatch.web.client", "AgentwatchHTTPXClientInstrumentor", False),
    ("httpx2", "opentelemetry.instrumentation.httpx"): ("agentwatch.web.client", "AgentwatchHTTPX2ClientInstrumentor", False),
    ("sqlite3", "opentelemetry.instrumentation.sqlite3"): (
        "agentwatch.instrumentors.sqlite3",
        "AgentwatchSQLite3Instrumentor",
        True,  # it adds the Connection.execute shortcuts' spans
    ),
}

#: agentwatch's instrumentors that only record: no trace context carried, nothing the app sees changed. With
#: ``OTEL_SDK_DISABLED=true`` nothing they record goes anywhere, so they are not loaded at all (their wrappers would
#: only cost the app). Kept: ``agentwatch_web`` (health endpoints, request ids, error responses, the server
#: span's context extraction) and ``agentwatch_mcp`` (it carries trace context in MCP messages), as the contrib
#: instrumentors keep propagating over a no-op SDK.
RECORDING_ONLY = frozenset({
    "gemini", "agentwatch_intent", "agentwatch_rag", "agentwatch_planner", "agentwatch_tools", "agentwatch_agents",
    "agentwatch_chromadb", "agentwatch_adk", "agentwatch_caches", "agentwatch_queues", "agentwatch_retries",
    "agentwatch_pybreaker", "agentwatch_aiobreaker", "agentwatch_slowapi",
})

selected = False  # set when this distro's configure() ran (read by the selection guard)


class AgentwatchDistro(BaseDistro):
    """Entry point ``opentelemetry_distro: agentwatch``."""

    def _configure(self, **kwargs: Any) -> None:
        global selected  # noqa: PLW0603
        selected = True
        with guard("applying agentwatch's defaults", "the variables stay as they are"):
            apply_environment_defaults()
            _quiet_loader_about_other_configurators()

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        """Load one instrumentor; an unexpected failure costs only that instrumentor."""
        from opentelemetry.instrumentation.dependencies import DependencyConflictError

        if entry_point.name == "fastapi" and _server_layer_replaces_contrib():
            return  # agentwatch_web opens the server spans (agentwatch.web.server); one layer, not two
        if entry_point.name == "fastapi" and not settings().asgi_message_spans:
            # 0.66b1 has no environment variable for this; the option is an instrument() kwarg.
            kwargs.setdefault("exclude_spans", ["receive", "send"])
        if entry_point.name in RECORDING_ONLY and settings().sdk_disabled:
            _diagnostics.warn_once(
                "sdk-disabled:instrumentors",
                "OTEL_SDK_DISABLED=true: agentwatch's recording-only instrumentors are not loaded "
                "(the contrib ones and agentwatch_web/agentwatch_mcp still carry trace context)",
                level=logging.INFO,
            )
            return
        if _is_gemini_entry_point(entry_point) and _skip_for_gemini(entry_point):
            return
        try:
            instrumentor = self._instrumentor_class(entry_point)
            instrumentor().instrument(**kwargs)
        except (ModuleNotFoundError, DependencyConflictError):
            raise  # the loader reports these (library not installed / wrong version)
        except ImportError as error:
            _diagnostics.warn_once(
                f"instrumentor:{entry_point.name}", f"instrumentor {entry_point.name!r} could not be imported ({error}); skipped"
            )
        except Exception as error:
            if strict():
                raise
            failed(f"instrumentor {entry_point.name!r}", error, "skipped")
        else:
            if entry_point.name == "logging":
                from agentwatch.distro import logs

                run("attaching logs to uvicorn's loggers", logs.install)

    @staticmethod
    def _instrumentor_class(entry_point: Any) -> type:
        module = entry_point.value.split(":", 1)[0]
        replacement = _REPLACEMENTS.get((entry_point.name, module))
        if replacement is not None and not (replacement[2] and settings().sdk_disabled):
            import importlib

            return getattr(importlib.import_module(replacement[0]), replacement[1])
        return entry_point.load()


def _server_layer_replaces_contrib() -> bool:
    """AGENTWATCH_SERVER_LAYER=agentwatch (default) and its conditions hold (:func:`agentwatch.web.choice.wanted`)."""
    from agentwatch.web import choice

    return bool(run("choosing the HTTP server layer", choice.wanted, default=False,
                    outcome="the contrib FastAPI instrumentation is loaded"))


def _is_gemini_entry_point(entry_point: Any) -> bool:
    """agentwatch's ``gemini`` entry point or the official google-genai instrumentation's."""
    from agentwatch.distro.genai_choice import is_official_entry_point

    return entry_point.name == "gemini" or is_official_entry_point(entry_point)


def _skip_for_gemini(entry_point: Any) -> bool:
    """One Gemini instrumentation per process: say which (once) and whether to skip this entry point.

    With the official opentelemetry-instrumentation-google-genai installed too, both would wrap
    ``Models.generate_content`` and every call would get two spans. AGENTWATCH_GENAI_INSTRUMENTATION
    picks one (agentwatch's by default); see ``agentwatch.distro.genai_choice``.
    """
    return run("choosing between Gemini instrumentations", _skips_official, entry_point, default=False,
               outcome="both load as usual")


def _skips_official(entry_point: Any) -> bool:
    from agentwatch.distro import genai_choice

    status = genai_choice.announce_choice()
    return genai_choice.is_official_entry_point(entry_point) and status.skip_official


class _OtherConfiguratorsFilter(logging.Filter):
    """Drops the loader's "Configuration of X not loaded" lines when agentwatch's configurator is the one chosen.

    With opentelemetry-distro installed too (it is a dependency), every start
    would otherwise print a warning about a configurator that was correctly skipped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Configuration of") and "not loaded" in message:
            return "agentwatch" not in tuple(str(a) for a in (record.args or ()))
        return True


def _quiet_loader_about_other_configurators() -> None:
    if os.environ.get(ev.OTEL_PYTHON_CONFIGURATOR) == "agentwatch":
        loader = logging.getLogger("opentelemetry.instrumentation.auto_instrumentation._load")
        if not any(isinstance(f, _OtherConfiguratorsFilter) for f in loader.filters):
            loader.addFilter(_OtherConfiguratorsFilter())


def apply_environment_defaults() -> dict[str, str]:
    """Set agentwatch's defaults for variables the user left unset; return what was set."""
    current = settings()
    defaults = {
        ev.OTEL_PYTHON_CONFIGURATOR: "agentwatch",
        # Stable HTTP and database conventions: sqlite3 spans then name db.system.name /
        # db.query.text like the chromadb spans (stable names only) in the same trace.
        ev.OTEL_SEMCONV_STABILITY_OPT_IN: "http,database",
    }
    if not current.service_name.startswith("unknown_service"):
        # Workers spawned by uvicorn/gunicorn see argv ['-c', ...]: pass the name down.
        defaults[ev.OTEL_SERVICE_NAME] = current.service_name
    probes = _health_probe_exclusion()
    if probes and not os.environ.get(ev.OTEL_PYTHON_EXCLUDED_URLS, "").strip():
        # The contrib FastAPI instrumentation reads OTEL_PYTHON_FASTAPI_EXCLUDED_URLS, else the generic one.
        defaults[ev.OTEL_PYTHON_FASTAPI_EXCLUDED_URLS] = probes
    applied = {}
    for name, value in defaults.items():
        if not os.environ.get(name, "").strip():
            os.environ[name] = value
            applied[name] = value
            current.sources[name] = "agentwatch default"
    return applied


def _health_probe_exclusion() -> str | None:
    """The URL regex that keeps the health endpoints (``agentwatch.web``) out of traces and HTTP metrics."""
    import re

    web = settings().web  # the same reading the web layer uses (a bad value warned once, there)
    if not web.health_enabled:
        return None
    return re.escape(web.prefix) + "(/live|/ready|/startup|/detailed)?/?$"
