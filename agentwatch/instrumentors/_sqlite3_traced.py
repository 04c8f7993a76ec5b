"""The sqlite3 instrumentor of :mod:`agentwatch.instrumentors.sqlite3`, built on the contrib
``opentelemetry-instrumentation-sqlite3`` (imported only where that package is installed)."""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation import dbapi
from opentelemetry.instrumentation.sqlite3 import (
    _CONNECTION_ATTRIBUTES,
    _DATABASE_SYSTEM,
    SQLite3Instrumentor,
)
from opentelemetry.instrumentation.sqlite3.version import __version__
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from agentwatch.instrumentors._sqlite3_package import _instruments

__all__ = ["AgentwatchSQLite3Instrumentor"]

# Spans and metrics are reported under the stock instrumentation scope, so a
# backend cannot tell (and need not care) which of the two produced them.
_SCOPE_NAME = SQLite3Instrumentor.__module__  # "opentelemetry.instrumentation.sqlite3"


class _CursorTracer(dbapi.CursorTracer):
    """The dbapi CursorTracer, minus one way it breaks the app.

    Upstream ``get_operation_name`` raises ``IndexError`` for a statement that
    is blank or only a comment (``"  "``, ``"/* x */"``) -- sqlite3 runs those
    fine. Here the span is then named after the database, as upstream does
    for an empty statement.
    """

    def get_operation_name(self, cursor: Any, args: Any) -> str:
        try:
            return super().get_operation_name(cursor, args)
        except IndexError:
            return ""


class _TracedCursorProxy(dbapi.TracedCursorProxy):
    """dbapi cursor proxy that also traces ``executescript``."""

    def __init__(self, cursor: Any, db_api_integration: dbapi.DatabaseApiIntegration):
        super().__init__(cursor, db_api_integration)
        self._self_cursor_tracer = _CursorTracer(db_api_integration)

    def executescript(self, *args: Any, **kwargs: Any):
        return self._self_cursor_tracer.traced_execution(
            self.__wrapped__, self.__wrapped__.executescript, *args, **kwargs
        )


class _TracedConnectionProxy(dbapi.TracedConnectionProxy):
    """dbapi connection proxy whose execute shortcuts are traced.

    Mirrors CPython's ``Connection.execute`` (``cursor = self.cursor();
    cursor.execute(...); return cursor``), with ``self.cursor()`` being the
    traced cursor, so the span comes from the same CursorTracer as any cursor
    statement and the returned cursor stays traced for reuse.
    """

    def cursor(self, *args: Any, **kwargs: Any):
        return _TracedCursorProxy(
            self.__wrapped__.cursor(*args, **kwargs),
            self._self_db_api_integration,  # pyright: ignore[reportArgumentType]
        )

    def execute(self, *args: Any, **kwargs: Any):
        cursor = self.cursor()
        cursor.execute(*args, **kwargs)
        return cursor

    def executemany(self, *args: Any, **kwargs: Any):
        cursor = self.cursor()
        cursor.executemany(*args, **kwargs)
        return cursor

    def executescript(self, *args: Any, **kwargs: Any):
        cursor = self.cursor()
        cursor.executescript(*args, **kwargs)
        return cursor


class _DatabaseApiIntegration(dbapi.DatabaseApiIntegration):
    """Hands out the extended connection proxy from the wrapped ``connect``."""

    def wrapped_connection(self, connect_method, args, kwargs):
        connection = connect_method(*args, **kwargs)
        self.get_connection_attributes(connection)
        return _TracedConnectionProxy(connection, self)


class AgentwatchSQLite3Instrumentor(SQLite3Instrumentor):
    """``SQLite3Instrumentor`` that also traces the connection shortcuts."""

    # BaseInstrumentor keeps its singleton in ``cls._instance``; without this
    # the subclass would inherit the stock instance (if one was created first)
    # and ``AgentwatchSQLite3Instrumentor()`` would return a SQLite3Instrumentor.
    _instance = None

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        """The stock instrumentation this one extends (sqlite3 itself is in the stdlib)."""
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        """Wrap ``sqlite3.connect`` and ``sqlite3.dbapi2.connect``."""
        for module in self._TO_WRAP:
            dbapi.wrap_connect(
                _SCOPE_NAME,
                module,  # pyright: ignore[reportArgumentType] - upstream types the module as a callable
                "connect",
                _DATABASE_SYSTEM,
                _CONNECTION_ATTRIBUTES,
                version=__version__,
                tracer_provider=kwargs.get("tracer_provider"),
                meter_provider=kwargs.get("meter_provider"),
                db_api_integration_factory=_DatabaseApiIntegration,
            )

    def _uninstrument(self, **kwargs: Any) -> None:
        """Restore the original ``connect`` functions."""
        for module in self._TO_WRAP:
            dbapi.unwrap_connect(module, "connect")  # pyright: ignore[reportArgumentType] - upstream types the module as a callable

    @staticmethod
    def instrument_connection(
        connection: Any,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> Any:
        """Enable instrumentation in one SQLite connection.

        Args:
            connection: The connection to instrument.
            tracer_provider: The optional tracer provider to use. If omitted
                the current globally configured one is used.
            meter_provider: The optional meter provider to use (metrics are
                recorded only under the ``database`` semconv opt-in).

        Returns:
            The connection behind a proxy that traces cursor statements and
            the ``execute``/``executemany``/``executescript`` shortcuts. A
            connection that is already instrumented is returned unchanged
            (with the upstream warning).
        """
        proxy = dbapi.instrument_connection(
            _SCOPE_NAME,
            connection,
            _DATABASE_SYSTEM,
            _CONNECTION_ATTRIBUTES,
            version=__version__,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            db_api_integration_factory=_DatabaseApiIntegration,
        )
        # dbapi.instrument_connection always builds the stock proxy; rewrap
        # the same connection and integration in ours.
        if type(proxy) is dbapi.TracedConnectionProxy:  # pylint: disable=unidiomatic-typecheck
            return _TracedConnectionProxy(proxy.__wrapped__, proxy._self_db_api_integration)
        return proxy
