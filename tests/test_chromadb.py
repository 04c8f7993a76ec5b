"""agentwatch.instrumentors.chromadb against the real chromadb.

In-process: an ``EphemeralClient`` (collections created with ``embedding_function=None`` and
explicit embeddings -- nothing is embedded by a model, and a guard fails any test that opens a
non-loopback connection, which is how a model download would start), a real SDK
TracerProvider / MeterProvider with in-memory exporter / reader. Over HTTP: a real ``chroma run``
server with the sync ``HttpClient`` and the ``AsyncHttpClient``. End to end: a FastAPI app
(tests/chroma_app) under ``opentelemetry-instrument`` exporting to a local OTLP receiver, its
retrieval function named in ``AGENTWATCH_RAG_TARGETS``; what it emits is checked against the
catalogue in ``agentwatch.semconv``.

These run in the ``.venv-chroma`` venv (``make test-chroma``; ``make test`` runs them after the
main suite). Where chromadb is not installed they are skipped, unless
``AGENTWATCH_REQUIRE_CHROMADB=1`` (set by the Makefile): then a missing chromadb fails.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

if os.environ.get("AGENTWATCH_REQUIRE_CHROMADB") == "1":
    chromadb = importlib.import_module("chromadb")  # must be there: an ImportError fails the run
else:
    chromadb = pytest.importorskip("chromadb", reason="chromadb is tested in .venv-chroma (make test-chroma)")

from chromadb.api.models.AsyncCollection import AsyncCollection  # noqa: E402
from chromadb.api.models.Collection import Collection  # noqa: E402
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings  # noqa: E402
from chromadb.config import Settings  # noqa: E402
from opentelemetry.instrumentation.utils import suppress_instrumentation  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from _service import BIN, FAST_EXPORT, clean_env, free_port  # noqa: E402
from _telemetry import Telemetry  # noqa: E402
from agentwatch import semconv  # noqa: E402
from agentwatch.instrumentors import chromadb as chroma_instr  # noqa: E402
from agentwatch.instrumentors.chromadb import AgentwatchChromaInstrumentor  # noqa: E402
from otlp_receiver import OTLPReceiver  # noqa: E402

pytestmark = pytest.mark.chromadb

SCOPE = "agentwatch.instrumentors.chromadb"
NAMESPACE = "default_tenant|default_database"
APP_DIR = Path(__file__).resolve().parent / "chroma_app"
_LOOPBACK = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}
SECRET_DOCUMENT = "the vault code is 4412"
SECRET_QUERY = "what is the vault code"


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail the test if anything tries to reach beyond loopback (a model download would)."""
    attempts: list = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in _LOOPBACK:
            attempts.append(address)
            raise OSError(f"test guard: no network ({address!r})")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in _LOOPBACK and host is not None:
            attempts.append(host)
            raise socket.gaierror(f"test guard: no network ({host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert not attempts, f"network access attempted: {attempts}"


@pytest.fixture(scope="module")
def client():
    return chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))


@pytest.fixture
def collection(client):
    name = f"kb-{uuid.uuid4().hex[:8]}"
    made = client.create_collection(name, embedding_function=None)
    yield made
    try:
        client.delete_collection(name)
    except Exception:  # noqa: BLE001,S110 - a test may have deleted it
        pass


class ChromaTelemetry(Telemetry):
    """The shared in-memory telemetry, reading the chromadb instrumentor's scope unless told otherwise."""

    def spans(self, scope: str | None = SCOPE) -> list:
        return super().spans(scope)

    def metrics(self, scope: str | None = SCOPE) -> dict:
        return super().metrics(scope)

    def points(self, name: str, scope: str | None = SCOPE) -> list:
        return super().points(name, scope)

    def gauge(self, expected: dict | None = None, timeout: float = 10.0) -> dict:
        """{collection: count} from the document gauge, collected until it equals ``expected``
        (or, without one, is not empty): a count slower than the callback's wait comes next time."""
        deadline = time.monotonic() + timeout
        while True:
            points = self.points("agentwatch.vectordb.collection.documents")
            values = {p.attributes["db.collection.name"]: p.value for p in points}
            if (values == expected if expected is not None else values) or time.monotonic() > deadline:
                return values
            time.sleep(0.1)


@pytest.fixture
def tel(monkeypatch):
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    monkeypatch.delenv("AGENTWATCH_CHROMADB_MAX_COLLECTIONS", raising=False)
    telemetry = ChromaTelemetry()
    AgentwatchChromaInstrumentor().instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    yield telemetry
    AgentwatchChromaInstrumentor().uninstrument()
    telemetry.shutdown()


def _unit(*values: float) -> list[float]:
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


def _fill(collection) -> None:
    collection.add(
        ids=["d1", "d2", "d3"],
        embeddings=[_unit(1, 0, 0), _unit(0, 1, 0), _unit(0, 0, 1)],
        documents=[SECRET_DOCUMENT, "refund policy", "shipping times"],
        metadatas=[{"topic": "vault"}, {"topic": "billing"}, {"topic": "shipping"}],
    )


class WordHash(EmbeddingFunction[Documents]):
    """The test's own embedding function: a deterministic word hash, no model."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - chromadb's parameter name
        out = []
        for text in input:
            vector = [0.0] * 8
            for word in text.lower().split():
                vector[sum(word.encode()) % 8] += 1.0
            out.append(vector)
        return out

    @staticmethod
    def name() -> str:
        return "agentwatch-test-word-hash"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> "WordHash":
        return WordHash()


# ------------------------------------------------------------------------- in process


def test_every_collection_call_is_a_db_client_span(tel, collection):
    name = collection.name
    _fill(collection)
    found = collection.query(query_embeddings=[_unit(1, 0.1, 0), _unit(0, 1, 0.1)], n_results=2)
    single = collection.query(query_embeddings=_unit(0, 0, 1), n_results=1)  # one embedding, not a batch
    got = collection.get(ids=["d2", "d3"])
    peeked = collection.peek(limit=5)
    collection.update(ids=["d2"], embeddings=[_unit(0, 1, 1)])
    collection.upsert(ids=["d4", "d5"], embeddings=[_unit(1, 1, 0), _unit(1, 0, 1)])
    deleted = collection.delete(ids=["d4", "d5", "missing"])
    count = collection.count()

    # the app gets chromadb's own answers
    assert found["ids"] == [["d1", "d2"], ["d2", "d3"]]
    assert single["ids"] == [["d3"]] and sorted(got["ids"]) == ["d2", "d3"] and len(peeked["ids"]) == 3
    assert deleted == {"deleted": 3} and count == 3  # chromadb counts the ids it was given

    spans = tel.spans()
    assert [s.name for s in spans] == [
        f"add {name}", f"query {name}", f"query {name}", f"get {name}", f"peek {name}",
        f"update {name}", f"upsert {name}", f"delete {name}", f"count {name}",
    ]
    common = {"db.system.name": "chromadb", "db.collection.name": name, "db.namespace": NAMESPACE}
    expected = [
        {"db.operation.name": "add", "agentwatch.vectordb.records": 3},
        {"db.operation.name": "query", "agentwatch.vectordb.query.count": 2, "agentwatch.vectordb.query.n_results": 2,
         "db.response.returned_rows": 4},
        {"db.operation.name": "query", "agentwatch.vectordb.query.count": 1, "agentwatch.vectordb.query.n_results": 1,
         "db.response.returned_rows": 1},
        {"db.operation.name": "get", "db.response.returned_rows": 2},
        {"db.operation.name": "peek", "agentwatch.vectordb.query.n_results": 5, "db.response.returned_rows": 3},
        {"db.operation.name": "update", "agentwatch.vectordb.records": 1},
        {"db.operation.name": "upsert", "agentwatch.vectordb.records": 2},
        {"db.operation.name": "delete", "agentwatch.vectordb.records": 3},
        {"db.operation.name": "count"},
    ]
    for span, attributes in zip(spans, expected):
        assert span.kind == SpanKind.CLIENT, span.name
        assert span.status.status_code == StatusCode.UNSET, span.name
        assert dict(span.attributes) == {**common, **attributes}, span.name
        assert span.instrumentation_scope.version


def test_spans_nest_under_the_current_span(tel, collection):
    _fill(collection)
    tracer = tel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("retrieval kb") as parent:
        collection.query(query_embeddings=[_unit(1, 0, 0)], n_results=1)
    (query,) = [s for s in tel.spans() if s.name.startswith("query")]
    assert query.parent is not None and query.parent.span_id == parent.get_span_context().span_id
    assert query.context.trace_id == parent.get_span_context().trace_id


def test_numpy_embeddings_are_counted_not_recorded(tel, collection):
    import numpy

    collection.add(ids=["a", "b"], embeddings=numpy.array([_unit(1, 0, 0), _unit(0, 1, 0)], dtype="float32"))
    collection.query(query_embeddings=numpy.array(_unit(1, 0, 0), dtype="float32"), n_results=2)
    collection.query(query_embeddings=numpy.array([_unit(1, 0, 0)] * 3, dtype="float32"), n_results=1)
    add, one, three = tel.spans()
    assert add.attributes["agentwatch.vectordb.records"] == 2
    assert one.attributes["agentwatch.vectordb.query.count"] == 1 and one.attributes["db.response.returned_rows"] == 2
    assert three.attributes["agentwatch.vectordb.query.count"] == 3 and three.attributes["db.response.returned_rows"] == 3


def test_duration_and_returned_rows_metrics(tel, collection):
    name = collection.name
    _fill(collection)
    for _ in range(2):
        collection.query(query_embeddings=[_unit(1, 0, 0), _unit(0, 1, 0)], n_results=3)
    collection.get(ids=["d1"])
    metrics = tel.metrics()
    assert set(metrics) == set(semconv.VECTORDB_METRICS_BY_NAME)
    base = {"db.system.name": "chromadb", "db.collection.name": name, "db.namespace": NAMESPACE}
    durations = {p.attributes["db.operation.name"]: p for p in tel.points("db.client.operation.duration")}
    assert {op: p.count for op, p in durations.items()} == {"add": 1, "query": 2, "get": 1}
    for operation, point in durations.items():
        assert dict(point.attributes) == {**base, "db.operation.name": operation}
        assert list(point.explicit_bounds) == [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]
        assert 0 < point.sum < 5
    rows = {p.attributes["db.operation.name"]: (p.count, p.sum) for p in tel.points("db.client.response.returned_rows")}
    assert rows == {"query": (2, 12), "get": (1, 1)}  # 2 queries x 2 vectors x 3 results
    assert metrics["db.client.operation.duration"].unit == "s"
    assert metrics["db.client.response.returned_rows"].unit == "{row}"


def test_document_count_gauge(tel, client, collection):
    other = client.create_collection(f"kb-{uuid.uuid4().hex[:8]}", embedding_function=None)
    try:
        _fill(collection)
        other.add(ids=["x"], embeddings=[_unit(1, 1, 1)])
        assert tel.gauge({collection.name: 3, other.name: 1}) == {collection.name: 3, other.name: 1}
        gauge = tel.metrics()["agentwatch.vectordb.collection.documents"]
        assert gauge.unit == "{document}"
        point = next(p for p in gauge.data.data_points if p.attributes["db.collection.name"] == collection.name)
        assert dict(point.attributes) == {"db.system.name": "chromadb", "db.collection.name": collection.name, "db.namespace": NAMESPACE}

        # the next collection counts what is there now, without a span of its own
        spans_before = len(tel.spans())
        collection.delete(ids=["d1"])
        other.add(ids=["y", "z"], embeddings=[_unit(1, 0, 1), _unit(0, 1, 1)])
        assert tel.gauge({collection.name: 2, other.name: 3}) == {collection.name: 2, other.name: 3}
        assert len(tel.spans()) == spans_before + 2  # the delete and the add; counting is not traced

        # a deleted collection is no longer reported
        client.delete_collection(other.name)
        assert tel.gauge({collection.name: 2}) == {collection.name: 2}
    finally:
        try:
            client.delete_collection(other.name)
        except Exception:  # noqa: BLE001,S110
            pass


def test_gauge_holds_collections_weakly_through_their_client(tel, collection):
    """The gauge keeps counting a collection the app no longer holds (its client is alive) ..."""
    _fill(collection)
    name = collection.name
    entries = tel_entries(tel)
    assert len(entries) == 1
    (entry,) = entries.values()
    assert entry.api() is collection._client  # a weak reference to the client, not the collection
    assert tel.gauge({name: 3}) == {name: 3}

    # ... and drops it once the client is gone
    class FakeClient:
        pass

    fake = FakeClient()
    entry.api = __import__("weakref").ref(fake)
    del fake
    assert tel.points("agentwatch.vectordb.collection.documents") == []
    assert tel_entries(tel) == {}


def tel_entries(tel) -> dict:
    return dict(AgentwatchChromaInstrumentor()._telemetry.counts._entries)  # noqa: SLF001


def test_collections_beyond_the_bound_fold_into_other(tel, client, monkeypatch, capsys):
    AgentwatchChromaInstrumentor().uninstrument()
    monkeypatch.setenv("AGENTWATCH_CHROMADB_MAX_COLLECTIONS", "2")
    AgentwatchChromaInstrumentor().instrument(tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider)
    made = [client.create_collection(f"kb-bound-{i}-{uuid.uuid4().hex[:6]}", embedding_function=None) for i in range(4)]
    try:
        for collection in made:
            collection.add(ids=["a"], embeddings=[_unit(1, 0, 0)])
        durations = sorted(p.attributes["db.collection.name"] for p in tel.points("db.client.operation.duration"))
        assert durations == sorted([made[0].name, made[1].name, "_other"])
        other = next(p for p in tel.points("db.client.operation.duration") if p.attributes["db.collection.name"] == "_other")
        assert other.count == 2 and "db.namespace" not in other.attributes
        assert tel.gauge({made[0].name: 1, made[1].name: 1}) == {made[0].name: 1, made[1].name: 1}
        assert [s.attributes["db.collection.name"] for s in tel.spans()] == [c.name for c in made]  # spans keep names
        err = capsys.readouterr().err
        assert err.count("more than 2 distinct chromadb collections") == 1, err
    finally:
        for collection in made:
            client.delete_collection(collection.name)


def test_gauge_callback_waits_briefly_and_never_raises(tel, collection, monkeypatch, capsys):
    _fill(collection)
    api_class = type(collection._client)
    real_count = api_class._count

    def slow_count(self, *args, **kwargs):
        time.sleep(1.2)
        return real_count(self, *args, **kwargs)

    monkeypatch.setattr(api_class, "_count", slow_count)
    started = time.monotonic()
    points = tel.points("agentwatch.vectordb.collection.documents")
    assert time.monotonic() - started < chroma_instr.COUNT_WAIT_SECONDS + 0.5
    assert points == []  # nothing known yet: no value rather than a wait
    assert tel.gauge() == {collection.name: 3}  # the helper thread finished: reported next time

    def broken_count(self, *args, **kwargs):
        raise RuntimeError("chroma is down")

    monkeypatch.setattr(api_class, "_count", broken_count)
    deadline = time.monotonic() + 10  # once the slow count still running has finished
    while tel.points("agentwatch.vectordb.collection.documents") and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(2):
        assert tel.points("agentwatch.vectordb.collection.documents") == []
    err = capsys.readouterr().err
    assert err.count("could not be counted (RuntimeError('chroma is down'))") == 1, err


def test_the_apps_exceptions_pass_unchanged(tel, client, collection):
    _fill(collection)
    raised = []
    for call in (
        lambda: collection.add(ids=["bad"], embeddings=[[1.0, 2.0]]),  # wrong dimension
        lambda: collection.query(query_embeddings=[_unit(1, 0, 0)], n_results=0),
    ):
        with pytest.raises(Exception) as instrumented:
            call()
        raised.append(instrumented.value)
    AgentwatchChromaInstrumentor().uninstrument()
    for call, seen in zip(
        (
            lambda: collection.add(ids=["bad"], embeddings=[[1.0, 2.0]]),
            lambda: collection.query(query_embeddings=[_unit(1, 0, 0)], n_results=0),
        ),
        raised,
    ):
        with pytest.raises(Exception) as plain:
            call()
        assert type(plain.value) is type(seen) and str(plain.value) == str(seen)

    add, query = [s for s in tel.spans() if s.status.status_code == StatusCode.ERROR]
    for span, error in zip((add, query), raised):
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes["error.type"] == type(error).__qualname__
        (event,) = span.events
        assert event.name == "exception" and event.attributes["exception.message"] == str(error)
    failed = [p for p in tel.points("db.client.operation.duration") if "error.type" in p.attributes]
    assert {(p.attributes["db.operation.name"], p.attributes["error.type"]) for p in failed} == {
        ("add", type(raised[0]).__qualname__), ("query", type(raised[1]).__qualname__),
    }


def test_no_content_by_default_query_text_only_with_capture(tel, client, monkeypatch):
    worded = client.create_collection(f"kb-ef-{uuid.uuid4().hex[:6]}", embedding_function=WordHash())
    try:
        worded.add(ids=["v1", "v2"], documents=[SECRET_DOCUMENT, "refund policy"])
        worded.query(query_texts=[SECRET_QUERY], n_results=1)
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
        worded.query(query_texts=SECRET_QUERY, n_results=1)
        worded.upsert(ids=["v3"], documents=["another secret 9981"])
    finally:
        client.delete_collection(worded.name)
    add, plain, captured, upsert = tel.spans()
    exported = json.dumps([dict(s.attributes) for s in (add, plain, upsert)] + [[dict(e.attributes) for e in s.events] for s in tel.spans()])
    for secret in (SECRET_DOCUMENT, SECRET_QUERY, "9981", "vault"):
        assert secret not in exported
    assert "agentwatch.vectordb.query.text" not in plain.attributes
    assert captured.attributes["agentwatch.vectordb.query.text"] == SECRET_QUERY
    assert SECRET_DOCUMENT not in json.dumps(dict(captured.attributes))
    assert not any(isinstance(v, (tuple, list)) and len(v) > 4 for s in tel.spans() for v in s.attributes.values())


def test_failures_of_ours_never_reach_the_app(tel, collection, capsys, lenient):
    _fill(collection)
    expected = collection.query(query_embeddings=[_unit(1, 0, 0)], n_results=2)

    def boom(*_args, **_kwargs):
        raise RuntimeError("injected instrumentation fault")

    for name in ("_request_attributes", "_returned_rows"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(chroma_instr, name, boom)
            assert collection.query(query_embeddings=[_unit(1, 0, 0)], n_results=2) == expected
            assert collection.count() == 3
            with pytest.raises(Exception) as error:
                collection.add(ids=["bad"], embeddings=[[1.0]])
            assert "dimension" in str(error.value)
    err = capsys.readouterr().err
    assert err.count("chromadb telemetry (span start) failed") == 1, err
    assert err.count("chromadb telemetry (span end) failed") == 1, err
    for span in tel.spans():
        assert span.end_time is not None  # every span that started also ended


def test_suppressed_instrumentation_makes_no_span(tel, collection):
    _fill(collection)
    with suppress_instrumentation():
        collection.query(query_embeddings=[_unit(1, 0, 0)], n_results=1)
    assert [s.name.split()[0] for s in tel.spans()] == ["add"]


def test_uninstrument_restores_the_originals(collection):
    originals = {(cls, op): cls.__dict__[op] for cls in (Collection, AsyncCollection) for op in chroma_instr.OPERATIONS}
    telemetry = Telemetry()
    instrumentor = AgentwatchChromaInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        for (cls, op), original in originals.items():
            assert cls.__dict__[op] is not original and cls.__dict__[op].__wrapped__ is original, (cls, op)
        collection.count()
        assert len(telemetry.spans()) == 1
    finally:
        instrumentor.uninstrument()
    for (cls, op), original in originals.items():
        assert cls.__dict__[op] is original, (cls, op)
    collection.count()
    assert len(telemetry.spans()) == 1 and telemetry.points("agentwatch.vectordb.collection.documents") == []
    # and again: instrument() after uninstrument() wraps once more
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        collection.count()
        assert len(telemetry.spans()) == 2
    finally:
        instrumentor.uninstrument()


def test_a_failed_model_download_is_the_apps_error_and_the_spans(tel, client, no_network):
    """Querying by text without an embedding function makes chromadb fetch its default ONNX
    model: the network guard stops it (proof the guard sees downloads; the other tests make
    none), the app gets chromadb's exception and the query span records it."""
    bare = client.create_collection(f"kb-bare-{uuid.uuid4().hex[:6]}", embedding_function=None)
    try:
        with pytest.raises(Exception) as error:
            bare.query(query_texts=["anything"], n_results=1)
        assert no_network, "the model download was not seen"
    finally:
        client.delete_collection(bare.name)
        no_network.clear()
    (query,) = tel.spans()
    assert query.name == f"query {bare.name}" and query.status.status_code == StatusCode.ERROR
    assert query.attributes["error.type"] == type(error.value).__qualname__
    assert query.attributes["agentwatch.vectordb.query.count"] == 1


# ------------------------------------------------------------------- over HTTP (chroma run)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = (data / "server.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "chroma"), "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(data)},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError((data / "server.log").read_text()) from None
            time.sleep(0.1)
    yield port
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture
def http_tel(tel):
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    httpx_instrumentor = HTTPXClientInstrumentor()
    httpx_instrumentor.instrument(tracer_provider=tel.tracer_provider)
    yield tel
    httpx_instrumentor.uninstrument()


def test_http_client_spans_carry_the_server_and_wrap_the_http_calls(http_tel, chroma_server):
    tel = http_tel
    remote = chromadb.HttpClient(host="127.0.0.1", port=chroma_server, settings=Settings(anonymized_telemetry=False))
    name = f"kb-http-{uuid.uuid4().hex[:6]}"
    collection = remote.create_collection(name, embedding_function=None)
    try:
        collection.add(ids=["a", "b"], embeddings=[_unit(1, 0), _unit(0, 1)])
        found = collection.query(query_embeddings=[_unit(1, 0.2)], n_results=2)
        assert found["ids"] == [["a", "b"]]
        http_spans = len(tel.spans(None))
        assert tel.gauge({name: 2}) == {name: 2}
        (point,) = tel.points("agentwatch.vectordb.collection.documents")
        assert point.attributes["server.port"] == chroma_server and point.attributes["server.address"] == "127.0.0.1"
        assert len(tel.spans(None)) == http_spans, "the gauge's own HTTP calls are not traced"
    finally:
        remote.delete_collection(name)
    add, query = tel.spans()
    for span in (add, query):
        assert span.attributes["server.address"] == "127.0.0.1" and span.attributes["server.port"] == chroma_server
        http = [s for s in tel.spans(None) if s.parent is not None and s.parent.span_id == span.context.span_id]
        assert http and all(
            s.kind == SpanKind.CLIENT and s.instrumentation_scope.name == "opentelemetry.instrumentation.httpx" for s in http
        )
        assert "POST" in [s.name for s in http]  # the add / query request itself
    assert query.attributes["db.response.returned_rows"] == 2


def test_async_http_client(tel, chroma_server):
    name = f"kb-async-{uuid.uuid4().hex[:6]}"

    async def main():
        remote = await chromadb.AsyncHttpClient(
            host="127.0.0.1", port=chroma_server, settings=Settings(anonymized_telemetry=False)
        )
        collection = await remote.create_collection(name, embedding_function=None)
        try:
            await collection.add(ids=["a", "b", "c"], embeddings=[_unit(1, 0), _unit(0, 1), _unit(1, 1)])
            found = await collection.query(query_embeddings=[_unit(1, 0.1)], n_results=2)
            with pytest.raises(Exception) as error:
                await collection.add(ids=["bad"], embeddings=[[1.0, 2.0, 3.0]])
            # the gauge counts an AsyncCollection on the loop it is used on, from the reader's thread
            values = await asyncio.to_thread(tel.gauge, {name: 3})
            return found, error.value, values
        finally:
            await remote.delete_collection(name)

    found, error, values = asyncio.run(main())
    assert found["ids"] == [["a", "c"]]
    add, query, bad = [s for s in tel.spans() if s.attributes.get("db.collection.name") == name]
    assert (add.name, query.name, bad.name) == (f"add {name}", f"query {name}", f"add {name}")
    assert query.attributes["db.response.returned_rows"] == 2 and query.kind == SpanKind.CLIENT
    assert query.attributes["server.port"] == chroma_server
    assert bad.attributes["error.type"] == type(error).__qualname__ and bad.status.status_code == StatusCode.ERROR
    assert values == {name: 3}


# --------------------------------------------------------------- end to end (the distro)


def _run_app(tmp_path: Path, rx: OTLPReceiver, **extra: str) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(
        **rx.env(),
        OTEL_SERVICE_NAME="chroma-app",
        **FAST_EXPORT,
        OTEL_LOGS_EXPORTER="none",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="system_metrics",
        AGENTWATCH_RAG_TARGETS="kb:search=kb",
        KB_PATH=str(tmp_path / "kb"),
        HOME=str(home),  # a model download would land in ~/.cache/chroma
        PYTHONPATH=str(APP_DIR),
        **extra,
    )
    proc = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "app.py", str(free_port())],
        cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert not (home / ".cache" / "chroma").exists(), "chromadb downloaded an embedding model"
    return proc


@pytest.fixture(scope="module")
def app_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chroma_app")
    with OTLPReceiver(protocol="http") as rx:
        proc = _run_app(tmp, rx)
        return proc, rx.spans(), rx.metrics()


@pytest.mark.slow
def test_server_retrieval_and_chromadb_spans_nest(app_run):
    proc, spans, _ = app_run
    responses = [json.loads(line.split(" ", 2)[2]) for line in proc.stdout.splitlines() if line.startswith("RESPONSE 200")]
    assert [r["ids"][0] for r in responses] == ["kb-refund", "kb-invoice", "kb-password"], proc.stdout
    assert "Traceback" not in proc.stderr and "agentwatch WARNING" not in proc.stderr, proc.stderr
    by_id = {s["span_id"]: s for s in spans}
    servers = [s for s in spans if s["kind"] == "SERVER" and s["name"] == "POST /ask"]
    assert len(servers) == 3
    for server, response in zip(sorted(servers, key=lambda s: s["start_time_unix_nano"]), responses):
        (retrieval,) = [s for s in spans if s["parent_span_id"] == server["span_id"] and s["name"] == "retrieval kb"]
        (query,) = [s for s in spans if s["parent_span_id"] == retrieval["span_id"]]
        assert query["name"] == "query support-kb" and query["kind"] == "CLIENT" and query["scope"] == SCOPE
        assert query["attributes"] == {
            "db.system.name": "chromadb", "db.collection.name": "support-kb", "db.namespace": NAMESPACE,
            "db.operation.name": "query", "agentwatch.vectordb.query.count": 1,
            "agentwatch.vectordb.query.n_results": 2, "db.response.returned_rows": 2,
        }
        # the RAG instrumentor read chromadb's result: ids and distances
        documents = json.loads(retrieval["attributes"]["gen_ai.retrieval.documents"])
        assert [d["id"] for d in documents] == response["ids"]
        assert [d["score"] for d in documents] == pytest.approx(response["distances"])
        assert retrieval["attributes"]["agentwatch.retrieval.score_kind"] == "distance"
        assert retrieval["attributes"]["agentwatch.retrieval.top_score"] == pytest.approx(min(response["distances"]))
        assert retrieval["attributes"]["gen_ai.request.top_k"] == 2
        assert by_id[server["span_id"]]["trace_id"] == query["trace_id"]
    (load,) = [s for s in spans if s["name"] == "upsert support-kb"]
    assert load["attributes"]["agentwatch.vectordb.records"] == 5 and load["parent_span_id"] is None


@pytest.mark.slow
def test_metrics_arrive_with_the_gauge(app_run):
    _, _, metrics = app_run
    gauges = [m for m in metrics if m["name"] == "agentwatch.vectordb.collection.documents"]
    assert gauges, sorted({m["name"] for m in metrics})
    latest = gauges[-1]
    assert latest["type"] == "gauge" and latest["unit"] == "{document}" and latest["scope"] == SCOPE
    assert [(p["attributes"], p["value"]) for p in latest["data_points"]] == [
        ({"db.system.name": "chromadb", "db.collection.name": "support-kb", "db.namespace": NAMESPACE}, 5)
    ]
    durations = [m for m in metrics if m["name"] == "db.client.operation.duration"][-1]
    queries = [p for p in durations["data_points"] if p["attributes"]["db.operation.name"] == "query"]
    assert [p["count"] for p in queries] == [3]
    rows = [m for m in metrics if m["name"] == "db.client.response.returned_rows"][-1]
    assert [(p["count"], p["sum"]) for p in rows["data_points"]] == [(3, 6)]


@pytest.mark.slow
def test_emitted_telemetry_matches_the_catalogue(app_run):
    _, spans, metrics = app_run
    ours = {m["name"]: m for m in metrics if m["scope"] == SCOPE}  # the last export of each
    assert set(ours) == set(semconv.VECTORDB_METRICS_BY_NAME)
    for name, metric in ours.items():
        entry = semconv.VECTORDB_METRICS_BY_NAME[name]
        assert metric["type"] == entry.instrument and metric["unit"] == entry.unit, name
        assert metric["description"] == entry.description, name
        for point in metric["data_points"]:
            assert set(point["attributes"]) <= set(entry.attributes), (name, point["attributes"])
            if entry.buckets:
                assert [float(b) for b in point["explicit_bounds"]] == [float(b) for b in entry.buckets], name
    (entry,) = semconv.VECTORDB_SPANS
    pattern = re.compile("^" + re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(entry.name)) + "$")
    chroma_spans = [s for s in spans if s["scope"] == SCOPE]
    assert chroma_spans
    for span in chroma_spans:
        assert pattern.match(span["name"]) and span["kind"] == entry.kind, span["name"]
        assert set(span["attributes"]) <= set(entry.attributes) | set(entry.content_attributes), span["attributes"]
        assert span["name"] == f'{span["attributes"]["db.operation.name"]} {span["attributes"]["db.collection.name"]}'
