"""Holds ``agentwatch-select.pth``, installed at the top of site-packages.

``opentelemetry-instrument`` picks the first ``opentelemetry_distro`` entry point
it finds, and that order follows the file order in site-packages (install order,
or a hash on ext4). The one-line ``.pth`` runs in each interpreter at start-up,
before ``sitecustomize``: only when the auto-instrumentation folder is on
``PYTHONPATH`` (i.e. under ``opentelemetry-instrument``) and the user has not set
``OTEL_PYTHON_DISTRO`` itself, it sets ``OTEL_PYTHON_DISTRO=agentwatch``. An
explicit choice of the user always wins; ``agentwatch.distro.selection`` then
says in one line which distro ran.
"""
