"""
SQLite instrumentation for `sqlite3`_ that also traces the connection
shortcuts ``Connection.execute``, ``Connection.executemany`` and
``Connection.executescript``.

The stock ``opentelemetry-instrumentation-sqlite3`` only traces statements run
through an explicit cursor (``conn.cursor().execute(...)``); the shortcuts on
the connection -- the most common way to use sqlite3 -- pass straight through
to the real connection and produce no span. ``AgentwatchSQLite3Instrumentor``
is a drop-in replacement for ``SQLite3Instrumentor``: same tracer name and
version, same span names and attributes (``db.system`` / ``db.system.name``,
``db.statement`` / ``db.query.text``, ... following
``OTEL_SEMCONV_STABILITY_OPT_IN`` exactly like the stock one), same metrics,
same dbapi ``CursorTracer``; it only adds the shortcuts (and
``Cursor.executescript``).

The shortcuts behave like sqlite3's own: they create a cursor (through the
instrumented ``conn.cursor()``, so the connection's ``row_factory`` applies),
run the statement on it and return that cursor, or raise exactly what sqlite3
raised (the span is then marked ERROR).

.. _sqlite3: https://docs.python.org/3/library/sqlite3.html

Usage
-----

.. code:: python

    import sqlite3
    from agentwatch.instrumentors.sqlite3 import AgentwatchSQLite3Instrumentor

    # Call instrument() to wrap all database connections
    AgentwatchSQLite3Instrumentor().instrument()

    cnx = sqlite3.connect(":memory:")
    cnx.execute("CREATE TABLE IF NOT EXISTS test (testField INTEGER)")  # span
    cnx.executemany("INSERT INTO test VALUES (?)", [(1,), (2,)])        # span
    rows = cnx.execute("SELECT * FROM test").fetchall()                 # span
    cnx.close()

.. code:: python

    import sqlite3
    from agentwatch.instrumentors.sqlite3 import AgentwatchSQLite3Instrumentor

    # Alternatively, use instrument_connection for an individual connection
    conn = sqlite3.connect(":memory:")
    conn = AgentwatchSQLite3Instrumentor.instrument_connection(conn)
    conn.executescript("CREATE TABLE t (x); INSERT INTO t VALUES (1);")  # span
    conn.close()

Under ``opentelemetry-instrument`` the agentwatch distro uses this class in
place of the stock ``sqlite3`` entry point, so
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=sqlite3`` switches it off as before.

The stock package is an extra (``pip install 'agentwatch[sqlite3]'``): it lags
the OpenTelemetry releases, and a hard dependency on it would hold a service's
whole OpenTelemetry stack back. Without it this class is a no-op:
``instrumentation_dependencies()`` names the package, so ``instrument()``
reports it missing and wraps nothing, and ``instrument_connection`` returns
the connection unchanged. Importing this module costs nothing then.

API
---
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # pyright: ignore[reportMissingTypeStubs]

from agentwatch.instrumentors._sqlite3_package import _instruments

__all__ = ["AgentwatchSQLite3Instrumentor"]


def _stock_installed() -> bool:
    from importlib.util import find_spec

    try:
        return find_spec("opentelemetry.instrumentation.sqlite3") is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


class _WithoutStockSQLite3(BaseInstrumentor):
    """``AgentwatchSQLite3Instrumentor`` where opentelemetry-instrumentation-sqlite3 is not installed."""

    _instance = None

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        """Not reached: ``instrument()`` stops at the missing dependency (unless told to skip the check)."""

    def _uninstrument(self, **kwargs: Any) -> None:
        """Nothing was wrapped."""

    @staticmethod
    def instrument_connection(connection: Any, tracer_provider: Any = None, meter_provider: Any = None) -> Any:
        """The connection, unchanged: nothing traces it without the stock instrumentation."""
        return connection


if _stock_installed():
    from agentwatch.instrumentors._sqlite3_traced import AgentwatchSQLite3Instrumentor
else:
    AgentwatchSQLite3Instrumentor = _WithoutStockSQLite3
