"""Caches and job queues named by targets: real functools / cachetools / aiocache caches, real asyncio and
queue.Queue objects, FastAPI background tasks under a real app, read through the real SDK's metric reader.

Target modules are real files imported from a temporary directory (fresh module names per test), in both
import orders; what is measured is checked against the catalogue (agentwatch.semconv.CACHE_QUEUE_METRICS).
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import queue
import subprocess
import sys
import textwrap
import time

import pytest
from fastapi import BackgroundTasks

from _service import clean_env
from agentwatch import semconv as sc
from agentwatch.instrumentors.caches import AgentwatchCachesInstrumentor
from agentwatch.instrumentors.queues import BACKGROUND, AgentwatchQueuesInstrumentor

_counter = itertools.count()

MODULE = '''
import asyncio, functools, queue
import cachetools
import aiocache

@functools.lru_cache(maxsize=8)
def lookup(key):
    return key * 2

PRICES = cachetools.LRUCache(maxsize=4)
TTL = cachetools.TTLCache(maxsize=100, ttl=60)

@cachetools.cached(cachetools.LRUCache(maxsize=16))
def square(x):
    return x * x

@cachetools.cached(cachetools.LRUCache(maxsize=16), info=True)
def cube(x):
    return x ** 3

MEMORY = aiocache.SimpleMemoryCache()

JOBS = queue.Queue()
STACK = queue.LifoQueue()
RANKED = queue.PriorityQueue()
AJOBS = asyncio.Queue()
NOT_A_CACHE = 42
'''


@pytest.fixture
def env(telemetry, monkeypatch, tmp_path):
    name = f"aw_cache_mod_{next(_counter)}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    instrumentors = []

    def instrument(caches="", queues=""):
        monkeypatch.setenv("AGENTWATCH_CACHE_TARGETS", caches.replace("M:", f"{name}:"))
        monkeypatch.setenv("AGENTWATCH_QUEUE_TARGETS", queues.replace("M:", f"{name}:"))
        for cls in (AgentwatchCachesInstrumentor, AgentwatchQueuesInstrumentor):
            instrumentor = cls()
            instrumentor.instrument(meter_provider=telemetry.meter_provider)
            instrumentors.append(instrumentor)

    telemetry.module_name, telemetry.instrument = name, instrument
    yield telemetry
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
    sys.modules.pop(name, None)


def _by(points, *keys):
    return {tuple(p.attributes.get(k) for k in keys): p.value for p in points}


def _lookups(telemetry):
    return _by(telemetry.points(sc.CACHE_LOOKUPS_METRIC), sc.CACHE_NAME, sc.CACHE_RESULT)


@pytest.mark.parametrize("order", ["instrument-then-import", "import-then-instrument"])
def test_lru_cache_hits_misses_size_whatever_the_import_order(env, order):
    if order == "import-then-instrument":
        importlib.import_module(env.module_name)
    env.instrument(caches="M:lookup=kb-lookup")
    module = importlib.import_module(env.module_name)
    for key in (1, 2, 1, 1, 3):
        module.lookup(key)
    assert _lookups(env) == {("kb-lookup", "hit"): 2, ("kb-lookup", "miss"): 3}
    assert _by(env.points(sc.CACHE_SIZE_METRIC), sc.CACHE_NAME) == {("kb-lookup",): 3}
    assert _by(env.points(sc.CACHE_MAX_SIZE_METRIC), sc.CACHE_NAME) == {("kb-lookup",): 8}
    # Nothing wraps the hot path: the function is still the lru_cache object itself.
    assert type(module.lookup).__name__ == "_lru_cache_wrapper"


def test_cache_clear_keeps_the_counter_monotonic(env):
    env.instrument(caches="M:lookup")
    module = importlib.import_module(env.module_name)
    module.lookup(1), module.lookup(1)
    assert _lookups(env) == {(f"{env.module_name}.lookup", "hit"): 1, (f"{env.module_name}.lookup", "miss"): 1}
    module.lookup.cache_clear()
    module.lookup(1)
    assert _lookups(env) == {(f"{env.module_name}.lookup", "hit"): 1, (f"{env.module_name}.lookup", "miss"): 2}


def test_cachetools_caches_and_decorated_functions(env):
    env.instrument(caches="M:PRICES=prices,M:TTL=ttl,M:square=square,M:cube=cube")
    module = importlib.import_module(env.module_name)
    prices = module.PRICES
    prices["a"] = 1
    assert prices["a"] == 1
    with pytest.raises(KeyError):
        prices["nope"]
    assert prices.get("a") == 1 and prices.get("nope", "dflt") == "dflt"
    assert isinstance(prices, __import__("cachetools").LRUCache)
    module.TTL["k"] = "v"
    module.TTL.get("k")
    for x in (2, 2, 3):
        assert module.square(x) == x * x
    for x in (2, 2, 2):
        assert module.cube(x) == 8
    assert _lookups(env) == {
        ("prices", "hit"): 2, ("prices", "miss"): 2,
        ("ttl", "hit"): 1, ("ttl", "miss"): 0,
        ("square", "hit"): 1, ("square", "miss"): 2,
        ("cube", "hit"): 2, ("cube", "miss"): 1,
    }
    sizes = _by(env.points(sc.CACHE_SIZE_METRIC), sc.CACHE_NAME)
    assert sizes == {("prices",): 1, ("ttl",): 1, ("square",): 2, ("cube",): 1}
    assert _by(env.points(sc.CACHE_MAX_SIZE_METRIC), sc.CACHE_NAME)[("prices",)] == 4


def test_uninstrument_gives_the_cache_its_class_back(env):
    env.instrument(caches="M:PRICES=prices")
    module = importlib.import_module(env.module_name)
    import cachetools

    assert type(module.PRICES) is not cachetools.LRUCache and isinstance(module.PRICES, cachetools.LRUCache)
    module.PRICES["x"] = 1
    AgentwatchCachesInstrumentor().uninstrument()
    assert type(module.PRICES) is cachetools.LRUCache
    assert module.PRICES["x"] == 1  # the data never moved


def test_aiocache_cache_counted(env):
    env.instrument(caches="M:MEMORY=memory")
    module = importlib.import_module(env.module_name)

    async def use():
        await module.MEMORY.set("a", 1)
        assert await module.MEMORY.get("a") == 1
        assert await module.MEMORY.get("b") is None
        assert await module.MEMORY.multi_get(["a", "b", "c"]) == [1, None, None]

    asyncio.run(use())
    assert _lookups(env) == {("memory", "hit"): 2, ("memory", "miss"): 3}


def test_not_a_cache_and_missing_targets_warn_once(env, capsys):
    env.instrument(caches="M:NOT_A_CACHE,M:nothing_here,M:lookup=ok")
    module = importlib.import_module(env.module_name)
    module.lookup(1)
    err = capsys.readouterr().err
    assert "NOT_A_CACHE' is a int, not a cache" in err
    assert "nothing_here' does not exist" in err
    assert _lookups(env) == {("ok", "hit"): 0, ("ok", "miss"): 1}


def test_no_targets_costs_nothing(env):
    env.instrument()
    assert AgentwatchCachesInstrumentor()._telemetry is None
    assert env.points(sc.CACHE_LOOKUPS_METRIC) == []


def test_thread_queue_depth_and_oldest_age(env):
    env.instrument(queues="M:JOBS=jobs,M:STACK=stack,M:RANKED=ranked")
    module = importlib.import_module(env.module_name)
    module.JOBS.put("first")
    time.sleep(0.2)
    module.JOBS.put("second")
    module.STACK.put("bottom")
    time.sleep(0.1)
    module.STACK.put("top")
    module.RANKED.put((1, "x"))
    depth = _by(env.points(sc.QUEUE_DEPTH_METRIC), sc.QUEUE_NAME)
    assert depth[("jobs",)] == 2 and depth[("stack",)] == 2 and depth[("ranked",)] == 1
    ages = _by(env.points(sc.QUEUE_OLDEST_AGE_METRIC), sc.QUEUE_NAME)
    assert ages[("jobs",)] >= 0.2 and ages[("stack",)] >= 0.1
    assert ("ranked",) not in ages  # a priority queue's order is its own: depth only
    assert module.JOBS.get() == "first"  # the items are the app's, untouched
    ages = _by(env.points(sc.QUEUE_OLDEST_AGE_METRIC), sc.QUEUE_NAME)
    assert ages[("jobs",)] < 0.2  # "second" is the oldest now
    assert module.STACK.get() == "top"
    assert _by(env.points(sc.QUEUE_OLDEST_AGE_METRIC), sc.QUEUE_NAME)[("stack",)] >= 0.1  # "bottom" still waits
    module.JOBS.get()
    assert _by(env.points(sc.QUEUE_OLDEST_AGE_METRIC), sc.QUEUE_NAME)[("jobs",)] == 0.0


def test_asyncio_queue_depth_and_age(env):
    importlib.import_module(env.module_name)
    env.instrument(queues="M:AJOBS=ajobs")
    module = sys.modules[env.module_name]

    async def use():
        await module.AJOBS.put(1)
        module.AJOBS.put_nowait(2)
        await asyncio.sleep(0.1)
        depth = _by(env.points(sc.QUEUE_DEPTH_METRIC), sc.QUEUE_NAME)[("ajobs",)]
        age = _by(env.points(sc.QUEUE_OLDEST_AGE_METRIC), sc.QUEUE_NAME)[("ajobs",)]
        assert await module.AJOBS.get() == 1
        return depth, age

    depth, age = asyncio.run(use())
    assert depth == 2 and age >= 0.1
    AgentwatchQueuesInstrumentor().uninstrument()
    assert "_put" not in vars(module.AJOBS) and "_get" not in vars(module.AJOBS)


def test_queue_target_that_is_no_queue_warns(env, capsys):
    env.instrument(queues="M:PRICES")
    importlib.import_module(env.module_name)
    assert "not an asyncio.Queue or queue.Queue" in capsys.readouterr().err


def test_fastapi_background_tasks_wait_and_run(env):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    env.instrument()
    app = FastAPI()
    seen = []

    def job(value):
        seen.append(value)

    @app.post("/enqueue")
    def enqueue(tasks: BackgroundTasks):
        tasks.add_task(job, 1)
        tasks.add_task(job, 2)
        return {"ok": True}

    from starlette.background import BackgroundTask

    pending = BackgroundTask(job, "never run")
    time.sleep(0.05)
    depth = _by(env.points(sc.QUEUE_DEPTH_METRIC), sc.QUEUE_NAME)
    assert depth[(BACKGROUND,)] == 1
    assert _by(env.points(sc.QUEUE_OLDEST_AGE_METRIC), sc.QUEUE_NAME)[(BACKGROUND,)] >= 0.05
    with TestClient(app) as client:
        assert client.post("/enqueue").status_code == 200
    assert seen == [1, 2]
    assert _by(env.points(sc.QUEUE_DEPTH_METRIC), sc.QUEUE_NAME)[(BACKGROUND,)] == 1  # only the one never run
    del pending
    import gc

    gc.collect()
    assert _by(env.points(sc.QUEUE_DEPTH_METRIC), sc.QUEUE_NAME)[(BACKGROUND,)] == 0  # forgotten with its owner


def test_metrics_match_the_catalogue(env):
    env.instrument(caches="M:lookup,M:PRICES", queues="M:JOBS")
    module = importlib.import_module(env.module_name)
    module.lookup(1)
    module.PRICES["a"] = 1
    module.JOBS.put(1)
    emitted = {**env.metrics(scope="agentwatch.instrumentors.caches"), **env.metrics(scope="agentwatch.instrumentors.queues")}
    assert set(emitted) == set(sc.CACHE_QUEUE_METRICS_BY_NAME)
    for name, metric in emitted.items():
        entry = sc.CACHE_QUEUE_METRICS_BY_NAME[name]
        assert metric.unit == entry.unit, name
        kind = type(metric.data).__name__
        assert kind == {"counter": "Sum", "gauge": "Gauge"}[entry.instrument], name
        for point in metric.data.data_points:
            assert set(point.attributes) <= set(entry.attributes), name


def test_absent_libraries_cost_nothing_at_start_up(tmp_path):
    """No targets: neither instrumentor imports cachetools, aiocache or asyncio's queues for the app, nor hooks."""
    code = textwrap.dedent("""
        import sys
        from opentelemetry.sdk.metrics import MeterProvider
        from agentwatch.instrumentors.caches import AgentwatchCachesInstrumentor
        from agentwatch.instrumentors.queues import AgentwatchQueuesInstrumentor
        before = set(sys.modules)
        AgentwatchCachesInstrumentor().instrument(meter_provider=MeterProvider())
        AgentwatchQueuesInstrumentor().instrument(meter_provider=MeterProvider())
        new = sorted(set(sys.modules) - before)
        assert not [m for m in new if m.split(".")[0] in ("cachetools", "aiocache", "starlette", "fastapi")], new
        assert AgentwatchCachesInstrumentor()._telemetry is None
        print("ok", len(new))
    """)
    env = clean_env()
    env.pop("AGENTWATCH_CACHE_TARGETS", None)
    env.pop("AGENTWATCH_QUEUE_TARGETS", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok")


def test_thread_queue_under_contention_keeps_ages_in_step(env):
    """Producers and consumers in threads: every put time leaves with its item (the deque never drifts)."""
    import threading

    env.instrument(queues="M:JOBS=jobs")
    module = importlib.import_module(env.module_name)
    jobs: queue.Queue = module.JOBS

    def produce():
        for i in range(2000):
            jobs.put(i)

    def consume():
        for _ in range(2000):
            jobs.get()

    threads = [threading.Thread(target=f) for f in (produce, produce, consume, consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    watched = AgentwatchQueuesInstrumentor()._telemetry.watched[0]  # pyright: ignore[reportOptionalMemberAccess]
    assert jobs.qsize() == 0 and len(watched.times) == 0


def test_report_shows_hit_ratio_size_and_queue_wait(env, tmp_path):
    """Through the real file exporter into `agentwatch report`: the caches and queues section."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    from agentwatch.distro.file_exporter import OTLPJsonFileMetricExporter
    from agentwatch.report import render

    out = tmp_path / "telemetry"
    out.mkdir()
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPJsonFileMetricExporter(str(out)),
                                                                           export_interval_millis=3_600_000)])
    env.meter_provider = provider  # the fixture's instrument() binds to this provider
    env.instrument(caches="M:lookup=kb-lookup", queues="M:JOBS=jobs")
    module = importlib.import_module(env.module_name)
    for key in (1, 1, 1, 2):
        module.lookup(key)
    module.JOBS.put("job")
    time.sleep(0.05)
    provider.force_flush()
    provider.shutdown()
    report = render(str(out))
    assert "Caches and queues" in report
    line = next(line for line in report.splitlines() if "kb-lookup" in line)
    assert line.split()[1:6] == ["4", "2", "2", "50%", "2"], line
    line = next(line for line in report.splitlines() if line.strip().startswith("jobs "))
    assert line.split()[1] == "1" and float(line.split()[2]) >= 0.05, line


def test_a_cache_named_twice_is_counted_once_and_a_computing_missing_is_a_miss(env, capsys, tmp_path):
    """Hostile shapes: the same cache under two targets, a cachetools subclass whose __missing__ computes
    (a hit for the caller, a miss for the cache), a subclass with __slots__."""
    (tmp_path / f"{env.module_name}_extra.py").write_text(textwrap.dedent("""
        import cachetools

        class Defaulting(cachetools.LRUCache):
            __slots__ = ("extra",)
            def __missing__(self, key):
                value = self[key] = f"computed-{key}"
                return value

        DEFAULTING = Defaulting(maxsize=10)
    """))
    extra = f"{env.module_name}_extra"
    env.instrument(caches=f"M:PRICES=first,M:PRICES=second,{extra}:DEFAULTING=defaulting")
    module = importlib.import_module(env.module_name)
    defaulting = importlib.import_module(extra).DEFAULTING
    module.PRICES["a"] = 1
    module.PRICES["a"]
    assert defaulting["k"] == "computed-k" and defaulting["k"] == "computed-k"
    assert "already named 'first'" in capsys.readouterr().err
    assert _lookups(env) == {("first", "hit"): 1, ("first", "miss"): 0, ("defaulting", "hit"): 1, ("defaulting", "miss"): 1}
    sys.modules.pop(extra, None)
