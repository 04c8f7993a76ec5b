"""AgentwatchSQLite3Instrumentor traces sqlite3's connection shortcuts.

Real sqlite3 (file and :memory: databases), a real SDK TracerProvider with an
in-memory exporter; the stock SQLite3Instrumentor is used as the reference
for span shape and to document the gap it leaves.
"""

from __future__ import annotations

import sqlite3

import pytest
from opentelemetry.instrumentation._semconv import (
    _OpenTelemetrySemanticConventionStability,
)
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.trace import SpanKind, StatusCode

from agentwatch.instrumentors.sqlite3 import AgentwatchSQLite3Instrumentor

STOCK_SCOPE = "opentelemetry.instrumentation.sqlite3"


# --------------------------------------------------------------------------- helpers


def _statement(span):
    attrs = span.attributes
    return attrs.get("db.query.text", attrs.get("db.statement"))


def _db_system(span):
    attrs = span.attributes
    return attrs.get("db.system.name", attrs.get("db.system"))


def _db_spans(exporter):
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]


@pytest.fixture
def exporter(telemetry):
    return telemetry.span_exporter


@pytest.fixture
def provider(telemetry):
    return telemetry.tracer_provider


@pytest.fixture
def instrumented(provider):
    inst = AgentwatchSQLite3Instrumentor()
    inst.instrument(tracer_provider=provider)
    yield inst
    inst.uninstrument()


@pytest.fixture(params=["file", "memory"])
def db_path(request, tmp_path):
    return str(tmp_path / "agent.db") if request.param == "file" else ":memory:"


@pytest.fixture
def semconv_reset():
    """Let a test re-read OTEL_SEMCONV_STABILITY_OPT_IN, then put things back."""
    cls = _OpenTelemetrySemanticConventionStability
    saved = (cls._initialized, dict(cls._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING))
    cls._initialized = False
    cls._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING = {}
    yield
    cls._initialized, mapping = saved
    cls._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING = mapping


def _scenario(conn: sqlite3.Connection) -> list:
    """Exercise every shortcut and record everything a caller could observe."""
    seen = []
    cur = conn.executescript(
        """
        CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, score REAL);
        INSERT INTO docs (title, score) VALUES ('alpha', 0.5);
        """
    )
    seen.append(("executescript", cur.lastrowid, cur.rowcount, cur.fetchall()))
    cur = conn.execute("INSERT INTO docs (title, score) VALUES (?, ?)", ("beta", 0.75))
    seen.append(("insert", cur.lastrowid, cur.rowcount))
    cur = conn.execute("INSERT INTO docs (title, score) VALUES (:t, :s)", {"t": "gamma", "s": 1.0})
    seen.append(("insert-named", cur.lastrowid, cur.rowcount))
    cur = conn.executemany(
        "INSERT INTO docs (title, score) VALUES (?, ?)", [("d", 0.1), ("e", 0.2), ("f", 0.3)]
    )
    seen.append(("executemany", cur.lastrowid, cur.rowcount))
    cur = conn.execute("UPDATE docs SET score = score + 1 WHERE score < ?", (0.6,))
    seen.append(("update", cur.lastrowid, cur.rowcount))
    conn.commit()
    cur = conn.execute("SELECT id, title, score FROM docs ORDER BY id")
    seen.append(("select", cur.description, cur.fetchmany(2), cur.fetchall(), cur.rowcount))
    # explicit cursor path
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM docs WHERE title LIKE ?", ("%a%",))
    seen.append(("cursor", cur.fetchone(), cur.arraysize))
    # iteration over the returned cursor
    seen.append(("iter", [row for row in conn.execute("SELECT title FROM docs ORDER BY id DESC")]))
    # row_factory set on the connection applies to shortcut cursors
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT id, title FROM docs WHERE id = 2").fetchone()
    seen.append(("row", type(row).__name__, row.keys(), row["title"], tuple(row)))
    conn.row_factory = None
    # with-block transaction: commit on success, rollback on error
    with conn:
        conn.execute("DELETE FROM docs WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError) as exc_info:
        with conn:
            conn.execute("DELETE FROM docs WHERE id = 2")
            conn.execute("INSERT INTO docs (id, title) VALUES (3, 'dup')")
    seen.append(("integrity", str(exc_info.value)))
    seen.append(("after-tx", conn.execute("SELECT id FROM docs ORDER BY id").fetchall()))
    seen.append(("total_changes", conn.total_changes, conn.in_transaction))
    return seen


# --------------------------------------------------------------------------- the gap


def test_stock_instrumentor_produces_no_span_for_connection_execute(provider, exporter):
    stock = SQLite3Instrumentor()
    stock.instrument(tracer_provider=provider)
    try:
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        conn.executescript("INSERT INTO t VALUES (3);")
        assert _db_spans(exporter) == []  # the gap agentwatch closes
        conn.cursor().execute("SELECT * FROM t")
        assert [s.name for s in _db_spans(exporter)] == ["SELECT"]
        conn.close()
    finally:
        stock.uninstrument()


def test_singleton_is_its_own_class():
    stock = SQLite3Instrumentor()  # created first on purpose
    ours = AgentwatchSQLite3Instrumentor()
    assert type(ours) is AgentwatchSQLite3Instrumentor
    assert ours is not stock
    assert ours is AgentwatchSQLite3Instrumentor()
    # the stock one's (sqlite3 is in the stdlib: none) plus the stock package itself, an extra of agentwatch's
    assert list(ours.instrumentation_dependencies()) == [
        *stock.instrumentation_dependencies(), "opentelemetry-instrumentation-sqlite3 >= 0.65b0, < 1"
    ]


# --------------------------------------------------------------------------- spans


def test_each_shortcut_gives_a_child_client_span(instrumented, provider, exporter, db_path):
    tracer = provider.get_tracer("test")
    script = "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);"
    with tracer.start_as_current_span("request") as parent:
        conn = sqlite3.connect(db_path)
        conn.executescript(script)
        conn.execute("INSERT INTO t VALUES (?)", (2,))
        conn.executemany("INSERT INTO t VALUES (?)", [(3,), (4,)])
        cur = conn.cursor()
        cur.execute("SELECT x FROM t ORDER BY x")
        assert cur.fetchall() == [(1,), (2,), (3,), (4,)]
        conn.close()

    spans = _db_spans(exporter)
    assert [(s.name, _statement(s)) for s in spans] == [
        ("CREATE", script),
        ("INSERT", "INSERT INTO t VALUES (?)"),
        ("INSERT", "INSERT INTO t VALUES (?)"),
        ("SELECT", "SELECT x FROM t ORDER BY x"),
    ]
    parent_ctx = parent.get_span_context()
    for span in spans:
        assert _db_system(span) == "sqlite"
        assert span.kind == SpanKind.CLIENT
        assert span.parent is not None and span.parent.span_id == parent_ctx.span_id
        assert span.context.trace_id == parent_ctx.trace_id
        assert span.instrumentation_scope.name == STOCK_SCOPE
        assert span.status.status_code == StatusCode.UNSET


def test_spans_match_stock_cursor_spans(provider, exporter):
    """Same name, attributes and scope as the stock instrumentor's cursor span."""

    def one_cursor_span(instrumentor):
        instrumentor.instrument(tracer_provider=provider)
        try:
            conn = sqlite3.connect(":memory:")
            conn.cursor().execute("SELECT 1")
            conn.close()
        finally:
            instrumentor.uninstrument()
        (span,) = _db_spans(exporter)
        exporter.clear()
        return span

    stock = one_cursor_span(SQLite3Instrumentor())
    ours = one_cursor_span(AgentwatchSQLite3Instrumentor())
    assert ours.name == stock.name
    assert dict(ours.attributes) == dict(stock.attributes)
    assert ours.kind == stock.kind
    assert ours.instrumentation_scope == stock.instrumentation_scope

    AgentwatchSQLite3Instrumentor().instrument(tracer_provider=provider)
    try:
        conn = sqlite3.connect(":memory:")
        conn.execute("SELECT 1")
        conn.close()
    finally:
        AgentwatchSQLite3Instrumentor().uninstrument()
    (shortcut,) = _db_spans(exporter)
    assert shortcut.name == stock.name
    assert dict(shortcut.attributes) == dict(stock.attributes)
    assert shortcut.instrumentation_scope == stock.instrumentation_scope


# --------------------------------------------------------------------------- behaviour


def test_results_identical_to_uninstrumented(tmp_path, provider, exporter):
    plain = sqlite3.connect(str(tmp_path / "plain.db"))
    expected = _scenario(plain)
    plain.close()

    inst = AgentwatchSQLite3Instrumentor()
    inst.instrument(tracer_provider=provider)
    try:
        conn = sqlite3.connect(str(tmp_path / "traced.db"))
        assert isinstance(conn, sqlite3.Connection)
        got = _scenario(conn)
        conn.close()
    finally:
        inst.uninstrument()

    assert got == expected
    names = [s.name for s in _db_spans(exporter)]
    assert names.count("SELECT") == 5
    assert "UPDATE" in names and "DELETE" in names
    # the statement that violated the constraint is recorded as an error
    errors = [s for s in _db_spans(exporter) if s.status.status_code == StatusCode.ERROR]
    assert [(s.name, _statement(s)) for s in errors] == [
        ("INSERT", "INSERT INTO docs (id, title) VALUES (3, 'dup')")
    ]


def test_memory_results_identical(provider, exporter):
    plain = sqlite3.connect(":memory:")
    expected = _scenario(plain)
    inst = AgentwatchSQLite3Instrumentor()
    inst.instrument(tracer_provider=provider)
    try:
        got = _scenario(sqlite3.connect(":memory:"))
    finally:
        inst.uninstrument()
    assert got == expected


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.execute("SELECT * FROM missing_table"),
        lambda c: c.executemany("INSERT INTO missing_table VALUES (?)", [(1,)]),
        lambda c: c.executescript("CREATE TABLE ok (x); SELECT * FROM missing_table;"),
        lambda c: c.cursor().execute("SELECT * FROM missing_table"),
        lambda c: c.execute("SELEC 1"),
    ],
    ids=["execute", "executemany", "executescript", "cursor", "syntax"],
)
def test_failing_statement_raises_same_error_and_marks_span(instrumented, exporter, call):
    with pytest.raises(sqlite3.OperationalError) as plain_exc:
        call(sqlite3.dbapi2.Connection(":memory:"))  # not wrapped: plain sqlite3

    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as traced_exc:
        call(conn)
    assert type(traced_exc.value) is type(plain_exc.value)
    assert str(traced_exc.value) == str(plain_exc.value)
    assert traced_exc.value.args == plain_exc.value.args
    assert getattr(traced_exc.value, "sqlite_errorname", None) == getattr(
        plain_exc.value, "sqlite_errorname", None
    )

    (span,) = _db_spans(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes.get("error.type", "sqlite3.OperationalError").endswith("OperationalError")
    assert any(e.name == "exception" for e in span.events)
    # the connection is still usable after the failure
    assert conn.execute("SELECT 42").fetchone() == (42,)
    conn.close()


def test_connection_api_keeps_working(instrumented, tmp_path, exporter):
    path = str(tmp_path / "tx.db")
    conn = sqlite3.connect(path)
    assert isinstance(conn, sqlite3.Connection)
    conn.execute("CREATE TABLE t (x)")
    with conn as same:
        assert same is conn
        same.execute("INSERT INTO t VALUES (1)")
    assert not conn.in_transaction
    try:
        with conn:
            conn.execute("INSERT INTO t VALUES (2)")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    conn.execute("INSERT INTO t VALUES (3)")
    conn.commit()
    other = sqlite3.connect(path)
    assert other.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (3,)]
    other.close()

    conn.row_factory = sqlite3.Row
    assert conn.row_factory is sqlite3.Row
    row = conn.execute("SELECT x FROM t WHERE x = 3").fetchone()
    assert isinstance(row, sqlite3.Row) and row["x"] == 3

    # the returned cursor is still traced when reused
    cur = conn.execute("SELECT 1")
    exporter.clear()
    cur.execute("SELECT 2")
    assert [_statement(s) for s in _db_spans(exporter)] == ["SELECT 2"]

    conn.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")


def test_blank_or_comment_only_statement_does_not_break(instrumented, exporter):
    conn = sqlite3.connect(":memory:")
    assert conn.execute("   ").fetchall() == []
    assert conn.execute("/* nothing */").fetchall() == []
    assert conn.cursor().execute("-- nothing").fetchall() == []
    assert [_db_system(s) for s in _db_spans(exporter)] == ["sqlite"] * 3
    conn.close()


def test_uninstrument_restores_plain_sqlite3(provider, exporter):
    inst = AgentwatchSQLite3Instrumentor()
    inst.instrument(tracer_provider=provider)
    assert type(sqlite3.connect(":memory:")) is not sqlite3.Connection
    inst.uninstrument()

    conn = sqlite3.connect(":memory:")
    assert type(conn) is sqlite3.Connection
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [(1,)])
    conn.executescript("SELECT 1;")
    conn.cursor().execute("SELECT * FROM t")
    assert exporter.get_finished_spans() == ()

    # and it can be instrumented again
    inst.instrument(tracer_provider=provider)
    try:
        sqlite3.connect(":memory:").execute("SELECT 1")
    finally:
        inst.uninstrument()
    assert len(_db_spans(exporter)) == 1


def test_instrument_connection_returns_extended_proxy(provider, exporter):
    raw = sqlite3.connect(":memory:")
    conn = AgentwatchSQLite3Instrumentor.instrument_connection(raw, tracer_provider=provider)
    assert isinstance(conn, sqlite3.Connection)
    conn.executescript("CREATE TABLE t (x);")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.executemany("INSERT INTO t VALUES (?)", [(2,)])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    spans = _db_spans(exporter)
    assert [s.name for s in spans] == ["CREATE", "INSERT", "INSERT", "SELECT"]
    assert all(s.instrumentation_scope.name == STOCK_SCOPE for s in spans)

    assert AgentwatchSQLite3Instrumentor.uninstrument_connection(conn) is raw
    exporter.clear()
    raw.execute("SELECT 1")
    assert exporter.get_finished_spans() == ()


def test_database_semconv_opt_in_names_and_metrics(monkeypatch, semconv_reset, telemetry, provider, exporter):
    """Under OTEL_SEMCONV_STABILITY_OPT_IN=database: new attribute names and
    the db.client.operation.duration metric, for shortcuts as for cursors."""
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "database")
    inst = AgentwatchSQLite3Instrumentor()
    inst.instrument(tracer_provider=provider, meter_provider=telemetry.meter_provider)
    try:
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        conn.close()
    finally:
        inst.uninstrument()

    for span in _db_spans(exporter):
        assert span.attributes["db.system.name"] == "sqlite"
        assert "db.query.text" in span.attributes
        assert "db.statement" not in span.attributes

    data = telemetry.metrics_data()
    points = {
        metric.name: list(metric.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    durations = points["db.client.operation.duration"]
    ops = sorted(dict(p.attributes)["db.operation.name"] for p in durations)
    assert ops == ["CREATE", "INSERT"]
    assert all(dict(p.attributes)["db.system.name"] == "sqlite" for p in durations)


# --------------------------------------------------------------------------- without the stock package
def test_dependencies_name_the_stock_package():
    """What it needs is what it says: the stock instrumentation it extends (an extra of agentwatch)."""
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    (requirement,) = AgentwatchSQLite3Instrumentor().instrumentation_dependencies()
    assert requirement.startswith("opentelemetry-instrumentation-sqlite3 ")
    assert get_dependency_conflicts([requirement]) is None  # installed here, in range


_WITHOUT_STOCK = r'''
import sys, sqlite3, json
sys.modules["opentelemetry.instrumentation.sqlite3"] = None  # as if opentelemetry-instrumentation-sqlite3 were absent
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import agentwatch.instrumentors, opentelemetry.instrumentation.instrumentor  # loaded under opentelemetry-instrument anyway
loaded_before = set(sys.modules)
from agentwatch.instrumentors.sqlite3 import AgentwatchSQLite3Instrumentor
imported = sorted(set(sys.modules) - loaded_before)
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
instrumentor = AgentwatchSQLite3Instrumentor()
deps = instrumentor.instrumentation_dependencies()
result = instrumentor.instrument(tracer_provider=provider)
connection = sqlite3.connect(":memory:")
same = AgentwatchSQLite3Instrumentor.instrument_connection(connection) is connection
rows = connection.execute("SELECT 1").fetchall()
instrumentor.uninstrument()
print(json.dumps({"deps": list(deps), "conflict": str(get_dependency_conflicts(deps)), "result": result,
                  "connect": sqlite3.connect.__module__ if hasattr(sqlite3.connect, "__module__") else None,
                  "same": same, "rows": rows, "spans": len(exporter.get_finished_spans()), "imported": imported,
                  "dbapi": "opentelemetry.instrumentation.dbapi" in sys.modules}))
'''


def test_without_the_stock_package_a_no_op():
    """opentelemetry-instrumentation-sqlite3 is an extra: without it, importing and instrumenting cost
    nothing and change nothing (no wrapper, no span, no error), and the missing package is named."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _WITHOUT_STOCK], capture_output=True, text=True, timeout=60,
                          env={"AGENTWATCH_STRICT": "1", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["deps"] == ["opentelemetry-instrumentation-sqlite3 >= 0.65b0, < 1"]
    # the package's metadata is still installed here, so no conflict is reported; tests/test_install_wheel.py
    # checks the conflict (and the no-op) where the package is really absent
    assert out["conflict"] == "None"
    assert out["result"] is None and out["same"] and out["rows"] == [[1]] and out["spans"] == 0
    assert out["connect"] == "_sqlite3" and not out["dbapi"], "sqlite3.connect left alone, dbapi never imported"
    assert out["imported"] == ["agentwatch.instrumentors._sqlite3_package", "agentwatch.instrumentors.sqlite3"], (
        "nothing but the module itself (and its requirement string) is imported"
    )
