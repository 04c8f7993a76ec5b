"""agentwatch's lean metric recording (agentwatch/distro/lean_metrics.py) gives the SDK's results.

The fast paths memoise the SDK's aggregation key and skip its attribute walk for plain dicts; these
tests hold them to the SDK's own functions on attribute sets built to confuse them (``1`` vs ``1.0``
vs ``True``, key order, nested values, invalid keys), then compare whole collected metric data from a
real MeterProvider with and without them.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal import _view_instrument_match, measurement
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from agentwatch.distro import lean_metrics

# The fast recording replaces two functions of opentelemetry-sdk >= 1.45; an older SDK (the lowest
# resolution, 1.44) has neither, and the pipeline then records metrics the SDK's way (one info line).
pytestmark = pytest.mark.skipif(
    not (hasattr(_view_instrument_match, "_hash_attributes") and hasattr(measurement, "_clean_attribute_value")),
    reason="lean metric recording needs opentelemetry-sdk >= 1.45",
)


@pytest.fixture
def stock() -> Iterator[tuple[Any, Any]]:
    """The SDK's own functions, and the fast path removed again after the test."""
    lean_metrics.uninstall()
    originals = (_view_instrument_match._hash_attributes, measurement._clean_attribute_value)
    yield originals
    lean_metrics.uninstall()


def _attribute_sets(seed: int = 7, count: int = 400) -> list[dict[Any, Any]]:
    rng = random.Random(seed)
    scalars: list[Any] = [1, 1.0, True, 0, 0.0, False, None, "1", b"1", "", -0.0, 2**70, "é\u200b", float("nan")]
    keys: list[Any] = ["a", "b", "http.route", "ü", "a.b.c"]
    sets: list[dict[Any, Any]] = [{}, {"": "x"}, {1: "x"}, {None: 1}, {"a": [1, True]}, {"a": (1, 1.0)},
                                  {"a": {"b": 1}}, {"a": object()}, {"a": ["x", None]}]
    for _ in range(count):
        chosen = rng.sample(keys, rng.randint(1, len(keys)))
        sets.append({key: rng.choice(scalars) for key in chosen})
    return sets


def test_fast_functions_equal_the_sdk_functions(stock):
    original_hash, original_clean = stock
    fast_hash = lean_metrics._make_hash(original_hash)
    fast_clean = lean_metrics._make_clean(original_clean)
    for attributes in _attribute_sets():
        cleaned = original_clean(attributes, None)
        assert fast_clean(attributes, None) == cleaned
        assert type(fast_clean(attributes, None)) is type(cleaned)
        for _ in range(2):  # the miss and the cached hit
            assert fast_hash(cleaned) == original_hash(cleaned), attributes
        assert fast_clean(attributes, 3) == original_clean(attributes, 3)  # a length limit: the SDK's path


def test_equal_values_of_other_types_are_separate_series(stock):
    original_hash, _ = stock
    fast_hash = lean_metrics._make_hash(original_hash)
    keys = {fast_hash({"a": value}) for value in (1, 1.0, True)}
    assert len(keys) == 3  # a cache keyed on the items alone would merge them


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted((key, _typed(item)) for key, item in value.items())
    if isinstance(value, tuple):
        return [_typed(item) for item in value]
    return (type(value).__name__, repr(value))


def _collect(record_all) -> list[Any]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    record_all(provider.get_meter("t"))
    data = reader.get_metrics_data()
    provider.shutdown()
    return sorted(point[1:3] for point in _points(data, ""))


def _record(meter) -> None:
    counter = meter.create_counter("c")
    histogram = meter.create_histogram("h", unit="s")
    updown = meter.create_up_down_counter("u")
    for index, attributes in enumerate(_attribute_sets(seed=11, count=200)):
        if any(type(value) is float and value != value for value in attributes.values()):
            continue  # NaN never equals itself: its series cannot be compared across runs
        counter.add(index % 3 + 1, attributes)
        histogram.record(index / 100, attributes)
        updown.add(-1 if index % 2 else 1, attributes)


def test_collected_metrics_are_identical_with_and_without_the_fast_path(stock, caplog):
    without = _collect(_record)
    assert lean_metrics.install()
    with_fast_path = _collect(_record)
    assert with_fast_path == without
    assert len(without) > 300


def test_install_swaps_and_uninstall_restores(stock):
    original_hash, original_clean = stock
    assert lean_metrics.install()
    assert _view_instrument_match._hash_attributes is not original_hash
    assert measurement._clean_attribute_value is not original_clean
    lean_metrics.uninstall()
    assert _view_instrument_match._hash_attributes is original_hash
    assert measurement._clean_attribute_value is original_clean


def test_a_bounded_cache(stock):
    assert lean_metrics.install()
    fast_hash = _view_instrument_match._hash_attributes
    for index in range(lean_metrics._CACHE_LIMIT * 2 + 5):
        fast_hash({"user": str(index)})
    assert len(fast_hash.cache) <= lean_metrics._CACHE_LIMIT


def test_not_installed_when_the_sdk_disagrees(stock, monkeypatch):
    """A future SDK that cleans plain dicts differently keeps its own functions."""
    _, original_clean = stock

    def upper(value, limit):
        cleaned = original_clean(value, limit)
        return {key: v.upper() if isinstance(v, str) else v for key, v in cleaned.items()} if isinstance(cleaned, dict) else cleaned

    monkeypatch.setattr(measurement, "_clean_attribute_value", upper)
    assert not lean_metrics.install()
    assert measurement._clean_attribute_value is upper


def _installed_after_setup(extra_env: dict[str, str]) -> str:
    code = (
        "from agentwatch.distro import configurator, lean_metrics; configurator.setup(); "
        "print(lean_metrics.installed())"
    )
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
           "OTEL_LOGS_EXPORTER": "none", **extra_env}
    env.pop("AGENTWATCH_LEAN_SDK", None)
    env.update(extra_env)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_pipeline_uses_it_by_default_and_the_switch_turns_it_off():
    assert _installed_after_setup({}) == "True"
    assert _installed_after_setup({"AGENTWATCH_LEAN_SDK": "false"}) == "False"


# --- routes: a repeated attribute set recorded straight into its aggregations ----------------------

def _exemplar_fields(point: Any) -> list[Any]:
    return sorted((e.value, e.span_id, e.trace_id, _typed(dict(e.filtered_attributes or {})))
                  for e in (getattr(point, "exemplars", None) or []))


def _collect_all(record_all, *, delta_rounds: int = 1) -> list[Any]:
    """Points of a provider with two readers (cumulative; delta collected ``delta_rounds`` times) and a
    view keeping one key, exemplars included (their timestamps left out)."""
    from opentelemetry.sdk.metrics.export import AggregationTemporality
    from opentelemetry.sdk.metrics.view import View

    cumulative = InMemoryMetricReader()
    delta = InMemoryMetricReader(preferred_temporality={kind: AggregationTemporality.DELTA for kind in _KINDS()})
    provider = MeterProvider(metric_readers=[cumulative, delta],
                             views=[View(instrument_name="viewed", attribute_keys={"route"}), View(instrument_name="*")])
    points: list[Any] = []
    random.seed(5)  # the sums' exemplar reservoir samples at random: the same draws on both paths
    for round_ in range(delta_rounds):
        record_all(provider.get_meter("t"), round_)
        points += _points(delta.get_metrics_data(), f"delta{round_}")
    points += _points(cumulative.get_metrics_data(), "cumulative")
    provider.shutdown()
    return sorted(points)


def _KINDS() -> tuple[type, ...]:  # a constant computed late (the SDK's classes)
    from opentelemetry.sdk.metrics import Counter, Histogram, UpDownCounter

    return (Counter, Histogram, UpDownCounter)


def _points(data: Any, label: str) -> list[Any]:
    points = []
    for resource_metrics in (data.resource_metrics if data else []):
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    fields = dataclasses.asdict(point)
                    for volatile in ("start_time_unix_nano", "time_unix_nano", "exemplars"):
                        fields.pop(volatile, None)
                    fields["attributes"] = _typed(dict(point.attributes or {}))
                    points.append((label, metric.name, repr(sorted(fields.items())), repr(_exemplar_fields(point))))
    return points


def _repeated_recordings(meter, round_: int) -> None:
    """Few attribute sets, many times each, inside a sampled span (exemplars), with bad values mixed in."""
    from opentelemetry import context as context_api
    from opentelemetry import trace as trace_api

    counter, histogram = meter.create_counter("c"), meter.create_histogram("h", unit="s")
    updown, viewed = meter.create_up_down_counter("u"), meter.create_histogram("viewed")
    span = trace_api.NonRecordingSpan(trace_api.SpanContext(
        trace_id=0x1234 + round_, span_id=0x99, is_remote=False, trace_flags=trace_api.TraceFlags(1)))
    token = context_api.attach(trace_api.set_span_in_context(span))
    try:
        _repeated(counter, histogram, updown, viewed)
    finally:
        context_api.detach(token)


def _repeated(counter: Any, histogram: Any, updown: Any, viewed: Any) -> None:
    for index in range(300):
        attributes = {"route": f"/r{index % 3}", "code": 200 + index % 2, "ok": index % 5 == 0, "w": 0.5}
        counter.add(index % 4, attributes)
        histogram.record(index / 7, attributes)
        updown.add(-index if index % 2 else index, attributes)
        viewed.record(index, {**attributes, "user": f"u{index % 11}"})
        if index % 50 == 0:  # values the SDK refuses (and warns about) must be refused the same way
            counter.add(-1, attributes)
            histogram.record(float("nan"), attributes)
            updown.add(float("inf"), attributes)
            counter.add(1, {"route": ["/list", "/values"]})  # not a plain set: the SDK's path


def _recordings_under_each_kind_of_span(meter, round_: int) -> None:
    """The same recordings with the current span of each kind the exemplar code must tell apart:
    agentwatch's own (sampled), the API's non-recording span sampled and not, INVALID_SPAN, a value
    under the span key that is no span at all, and no span."""
    from opentelemetry import context as context_api
    from opentelemetry import trace as trace_api

    from opentelemetry.trace.propagation import _SPAN_KEY

    from agentwatch.distro.tracing import LeanTracerProvider

    tracer = LeanTracerProvider().get_tracer("t")
    instruments = (meter.create_counter("c"), meter.create_histogram("h", unit="s"),
                   meter.create_up_down_counter("u"), meter.create_histogram("viewed"))
    lean = tracer.start_span("lean")
    contexts = [
        trace_api.set_span_in_context(lean),
        trace_api.set_span_in_context(trace_api.NonRecordingSpan(trace_api.SpanContext(
            0x1234 + round_, 0x98, False, trace_api.TraceFlags(1)))),
        trace_api.set_span_in_context(trace_api.NonRecordingSpan(trace_api.SpanContext(
            0x1234 + round_, 0x97, False, trace_api.TraceFlags(0)))),
        trace_api.set_span_in_context(trace_api.INVALID_SPAN),
        context_api.set_value(_SPAN_KEY, "not a span", context_api.Context()),
        context_api.Context(),
    ]
    for context in contexts:
        token = context_api.attach(context)
        try:
            _repeated(*instruments)
        finally:
            context_api.detach(token)
    lean.end()


def test_routes_give_the_sdks_data_points_and_exemplars(stock, caplog):
    without = _collect_all(_repeated_recordings, delta_rounds=3)
    stock_warnings = sorted(r.getMessage() for r in caplog.records)
    caplog.clear()
    assert lean_metrics.install()
    from opentelemetry.sdk.metrics._internal.instrument import Counter, Histogram, UpDownCounter

    assert all(hasattr(method, "__wrapped__") for method in (Counter.add, Histogram.record, UpDownCounter.add))
    with_routes = _collect_all(_repeated_recordings, delta_rounds=3)
    assert with_routes == without
    assert sorted(r.getMessage() for r in caplog.records) == stock_warnings
    assert sum(", 153, 466" in p[3] for p in with_routes) > 20  # exemplars with the span's ids (0x99, 0x1234 + round)


def test_routes_and_exemplar_offers_under_each_kind_of_current_span(stock, caplog):
    """The exemplar filter and buckets read the current span without the SDK's calls: the same exemplars
    (trace and span ids, or none) for every kind of span, sampled or not."""
    random.seed(11)
    without = _collect_all(_recordings_under_each_kind_of_span, delta_rounds=2)
    assert lean_metrics.install()
    from opentelemetry.sdk.metrics._internal.exemplar.exemplar_reservoir import ExemplarBucket

    assert hasattr(ExemplarBucket.offer, "__wrapped__")
    with_routes = _collect_all(_recordings_under_each_kind_of_span, delta_rounds=2)
    assert with_routes == without
    assert any(", 152, 466" in p[3] for p in with_routes)  # the sampled API span's ids (0x98, 0x1234 + round)
    assert not any(", 151, " in p[3] for p in with_routes)  # the unsampled one offers nothing


def test_exemplar_offer_is_restored_and_not_used_when_the_sdk_differs(stock, monkeypatch):
    from opentelemetry.sdk.metrics._internal.exemplar import exemplar_reservoir

    original = exemplar_reservoir.ExemplarBucket.offer
    assert lean_metrics.install()
    assert exemplar_reservoir.ExemplarBucket.offer is not original
    lean_metrics.uninstall()
    assert exemplar_reservoir.ExemplarBucket.offer is original

    class OtherBucket(exemplar_reservoir.ExemplarBucket):  # an SDK whose offer keeps something else too
        def offer(self, value, time_unix_nano, attributes, context):
            super().offer(value, time_unix_nano, attributes, context)
            self.extra = value

    monkeypatch.setattr(exemplar_reservoir, "ExemplarBucket", OtherBucket)
    assert lean_metrics.install()  # the rest of the lean path still installs
    assert OtherBucket.offer.__qualname__.endswith("OtherBucket.offer")  # the probe refused the swap


def test_routes_are_taken_and_rebuilt_when_the_readers_change(stock, monkeypatch):
    assert lean_metrics.install()
    first = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[first])
    counter = provider.get_meter("t").create_counter("c")
    consumed: list[Any] = []
    consumer = counter._measurement_consumer
    original = consumer.consume_measurement
    monkeypatch.setattr(consumer, "consume_measurement", lambda m: (consumed.append(m), original(m))[1])
    for _ in range(10):
        counter.add(1, {"a": "x"})
    assert len(consumed) == 1  # the first went through the SDK's chain, the nine others took the route
    second = InMemoryMetricReader()
    provider.add_metric_reader(second)
    for _ in range(5):
        counter.add(1, {"a": "x"})
    assert len(consumed) == 2  # the readers changed: one more through the chain, then the new route
    values = [p.value for p in second.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data.data_points]
    assert values == [5]
    assert first.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0].value == 15
    provider.shutdown()


def test_uninstall_restores_the_recording_methods(stock):
    from opentelemetry.sdk.metrics._internal.instrument import Counter, Histogram, UpDownCounter

    originals = (Counter.add, Histogram.record, UpDownCounter.add)
    assert lean_metrics.install()
    assert (Counter.add, Histogram.record, UpDownCounter.add) != originals
    lean_metrics.uninstall()
    assert (Counter.add, Histogram.record, UpDownCounter.add) == originals


def test_routes_per_instrument_are_bounded(stock):
    assert lean_metrics.install()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("t").create_counter("c")
    for index in range(lean_metrics._ROUTE_LIMIT * 2 + 3):
        counter.add(1, {"user": str(index)})
    assert len(counter.__dict__["_agentwatch_routes"]) <= lean_metrics._ROUTE_LIMIT
    points = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    assert len(points) == lean_metrics._ROUTE_LIMIT * 2 + 3  # every series kept: only the routes are bounded
    provider.shutdown()
