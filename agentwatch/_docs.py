"""Regenerate the generated tables in docs/: ``python -m agentwatch._docs`` (from a clone).

The environment-variable table of docs/configuration.md comes from
:mod:`agentwatch.distro.environment_variables`; the span and metric catalogues of
docs/telemetry.md come from :mod:`agentwatch.semconv`. Each file keeps its tables between
``<!-- name:start ... -->`` / ``<!-- name:end -->`` markers; everything else in it is prose
and left as it is. The tests (tests/test_readme.py and the catalogue tests) fail when a
table and its source disagree.

A module of its own because ``python -m agentwatch.distro.environment_variables`` would run
a module that importing ``agentwatch.distro`` has already loaded (runpy warns about that).
"""

from __future__ import annotations

from agentwatch import semconv
from agentwatch.distro import environment_variables


def main() -> None:
    """Rewrite every generated table in place."""
    environment_variables._write_docs()
    semconv._write_docs()
    print(f"regenerated {environment_variables.DOCS_PATH} and {semconv.DOCS_PATH}")


if __name__ == "__main__":
    main()
