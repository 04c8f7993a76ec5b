"""Holds ``agentwatch-select.pth``, installed at the top of site-packages.

``opentelemetry-instrument`` picks the first ``opentelemetry_distro`` entry point
it finds, and that order follows the file order in site-packages (install order,
or a hash on ext4). The one-line ``.pth`` runs in each interpreter at start-up,
before ``sitecustomize``: only when the auto-instrumentation folder is on
``PYTHONPATH`` (i.e. under ``opentelemetry-instrument``) and the user has not set
``OTEL_PYTHON_DISTRO`` itself, it sets ``OTEL_PYTHON_DISTRO=agentwatch``. An
explicit choice of the user always wins; ``agentwatch.distro.selection`` then
says in one line which distro ran.

From Python 3.15, ``import`` lines in ``.pth`` files give way to ``.start`` files (PEP 829: one
``pkg.mod:callable`` per line, called at start-up; a ``.start`` file beside a ``.pth`` of the same name
turns that ``.pth``'s import lines off). ``agentwatch-select.start`` names :func:`select` below, which does
exactly what the ``.pth`` line does; older Pythons ignore the ``.start`` file.
"""

import os


def select() -> None:
    """Under ``opentelemetry-instrument``, and unless the user chose a distro: ``OTEL_PYTHON_DISTRO=agentwatch``."""
    if os.environ.get("OTEL_PYTHON_DISTRO") or "auto_instrumentation" not in os.environ.get("PYTHONPATH", ""):
        return
    os.environ["OTEL_PYTHON_DISTRO"] = "agentwatch"
