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
    points = []
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    fields = dataclasses.asdict(point)
                    for volatile in ("start_time_unix_nano", "time_unix_nano", "exemplars"):
                        fields.pop(volatile, None)
                    fields["attributes"] = _typed(dict(point.attributes or {}))
                    points.append((metric.name, repr(sorted(fields.items()))))
    return sorted(points)


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
