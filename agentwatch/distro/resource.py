"""The resource every signal carries.

Precedence, lowest to highest: host/OS/process detection, the SDK defaults
(``telemetry.sdk.*``, ``service.instance.id``), ``OTEL_RESOURCE_ATTRIBUTES``,
then the values settled in :mod:`agentwatch.distro.settings` (which already
honour ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``), then
``telemetry.distro.*``, which always says agentwatch.

``process.command_line`` and ``process.command_args`` are left out on purpose:
command lines routinely carry secrets (``--api-key ...``) and are unbounded.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.sdk.resources import OsResourceDetector, ProcessResourceDetector, Resource

from agentwatch.distro.guard import run
from agentwatch.distro.settings import Settings
from agentwatch.version import __version__

_DROPPED_PROCESS_KEYS = ("process.command_line", "process.command_args")


def _detected() -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    from opentelemetry.sdk.resources import _HostResourceDetector  # private in 1.45, kept behind a guard

    for detector in (_HostResourceDetector(), OsResourceDetector(), ProcessResourceDetector()):
        # A detector must not cost the resource.
        detected = run(
            f"resource detector {type(detector).__name__}", detector.detect, outcome="its attributes are left out"
        )
        if detected is not None:
            attributes.update(detected.attributes)
    for key in _DROPPED_PROCESS_KEYS:
        attributes.pop(key, None)
    return attributes


class StableResource(Resource):
    """A :class:`Resource` whose hash is computed once.

    The OTLP encoders group every span and log record of a batch by resource and hash it each time;
    the SDK's ``Resource.__hash__`` JSON-dumps all attributes on every call (agentwatch's resource has
    ~24), measured at 18-20 % of the export threads' encoding time (benchmarks/README.md, "Where the CPU
    goes"). A resource never changes once built, so the hash can be kept. Equal to, and hashing like, a
    plain ``Resource`` with the same attributes; ``merge`` (the SDK's fork-time ``_update_resource``
    calls it) keeps the kind.
    """

    def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def merge(self, other: Resource) -> StableResource:
        merged = super().merge(other)
        return StableResource(merged.attributes, merged.schema_url)


def app_package_version(argv0: str | None = None) -> str | None:
    """The version of the installed distribution the program runs from, where that is reliable: the
    program file sits inside a site-packages directory (``python -m pkg``, a module of an installed
    package). A script in a project directory or a console-script shim gives None."""
    import sys
    from importlib import metadata
    from pathlib import Path

    path = Path(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else "")).resolve()
    parts = path.parts
    for index, part in enumerate(parts):
        if part in ("site-packages", "dist-packages") and index + 1 < len(parts) - 1:
            top = parts[index + 1]
            try:
                distributions = metadata.packages_distributions().get(top) or []
                return metadata.version(distributions[0]) if len(distributions) == 1 else None
            except Exception:  # noqa: BLE001 - a broken metadata entry: no version rather than a wrong one
                return None
    return None


def build_resource(settings: Settings, auto_instrumentation_version: str | None = None) -> Resource:
    ours: dict[str, Any] = {
        "service.name": settings.service_name,
        "telemetry.distro.name": "agentwatch",
        "telemetry.distro.version": __version__,
    }
    # Only what is known: a made-up "unknown" version or "development" environment would label every
    # signal wrongly (and split Prometheus series when the real value is set later).
    version = settings.service_version or app_package_version()
    if version:
        ours["service.version"] = version
    if settings.environment:
        ours["deployment.environment.name"] = settings.environment
    if auto_instrumentation_version:
        ours["telemetry.auto.version"] = auto_instrumentation_version
    return StableResource(_detected()).merge(Resource.create({})).merge(Resource(settings.resource_attributes)).merge(
        Resource(ours)
    )


def fork_attributes() -> Resource:
    """What changes in a forked worker (gunicorn): its own pid."""
    return Resource({"process.pid": os.getpid(), "process.parent_pid": os.getppid()})
