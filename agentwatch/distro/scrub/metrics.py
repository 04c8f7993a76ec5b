"""Metrics: resource, data point and exemplar attributes of a collection.

Points whose attributes become equal once scrubbed are merged (sums added, histograms
combined), so a scrape never shows the same series twice.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from agentwatch.distro.scrub.values import attributes_safely, scrub_parts, scrub_resource

if TYPE_CHECKING:
    from agentwatch.distro.scrub import Scrubber

__all__ = ["scrub_metrics"]


def scrub_metrics(scrubber: Scrubber, metrics_data: Any, safely: bool = False) -> Any:
    """A scrubbed copy of ``MetricsData`` (resource, data point and exemplar attributes).

    ``safely``: attributes are scrubbed value by value, any value that fails becomes
    ``[REDACTED:error]`` (the fallback after a failure).
    """
    resource_metrics = []
    changed = False
    for rm in metrics_data.resource_metrics:
        resource = scrub_resource(scrubber, rm.resource)
        scope_metrics = []
        rm_changed = resource is not rm.resource
        for sm in rm.scope_metrics:
            metrics = []
            sm_changed = False
            for metric in sm.metrics:
                data = _scrub_metric_data(scrubber, metric.data, safely)
                if data is not metric.data:
                    sm_changed = True
                    metric = dataclasses.replace(metric, data=data)
                metrics.append(metric)
            if sm_changed:
                rm_changed = True
                sm = dataclasses.replace(sm, metrics=metrics)
            scope_metrics.append(sm)
        if rm_changed:
            changed = True
            rm = dataclasses.replace(rm, resource=resource, scope_metrics=scope_metrics)
        resource_metrics.append(rm)
    if not changed:
        return metrics_data
    return dataclasses.replace(metrics_data, resource_metrics=resource_metrics)


def _scrub_metric_data(scrubber: Scrubber, data: Any, safely: bool) -> Any:
    """``data`` with its points' and exemplars' attributes scrubbed (merged where they became equal)."""
    points = getattr(data, "data_points", None)
    if not points:
        return data
    maps: list[Any] = []
    for point in points:
        maps.append(point.attributes)
        maps.extend(exemplar.filtered_attributes for exemplar in (getattr(point, "exemplars", None) or ()))
    if safely:
        new_maps = [attributes_safely(scrubber, m) for m in maps]
    else:
        done = scrub_parts(scrubber, (), maps)
        if done is None:
            return data
        new_maps = done[1]
    new_points = []
    at = 0
    for point in points:
        attributes = new_maps[at]
        exemplars = list(getattr(point, "exemplars", None) or ())
        new_exemplars = []
        changed = attributes is not point.attributes
        for offset, exemplar in enumerate(exemplars, start=1):
            filtered = new_maps[at + offset]
            if filtered is not exemplar.filtered_attributes:
                changed = True
                exemplar = dataclasses.replace(exemplar, filtered_attributes=dict(filtered or {}))
            new_exemplars.append(exemplar)
        at += 1 + len(exemplars)
        if changed:
            point = dataclasses.replace(point, attributes=dict(attributes or {}), exemplars=new_exemplars)
        new_points.append(point)
    return dataclasses.replace(data, data_points=_merge_points(data, new_points))


def _merge_points(data: Any, points: list[Any]) -> list[Any]:
    """Points whose attributes became equal after scrubbing are merged (no duplicate series)."""
    from opentelemetry.sdk.metrics.export import Gauge, Histogram, HistogramDataPoint, NumberDataPoint, Sum

    merged: dict[Any, int] = {}
    out: list[Any] = []
    for point in points:
        key = frozenset((k, _hashable(v)) for k, v in (point.attributes or {}).items())
        index = merged.get(key)
        if index is None:
            merged[key] = len(out)
            out.append(point)
            continue
        first = out[index]
        exemplars = list(first.exemplars or []) + list(point.exemplars or [])
        if isinstance(data, Sum) and isinstance(point, NumberDataPoint):
            out[index] = dataclasses.replace(first, value=first.value + point.value, exemplars=exemplars,
                                             time_unix_nano=max(first.time_unix_nano, point.time_unix_nano))
        elif isinstance(data, Gauge) and isinstance(point, NumberDataPoint):
            if point.time_unix_nano >= first.time_unix_nano:
                out[index] = dataclasses.replace(point, exemplars=exemplars)
        elif (
            isinstance(data, Histogram)
            and isinstance(point, HistogramDataPoint)
            and list(point.explicit_bounds) == list(first.explicit_bounds)
        ):
            out[index] = dataclasses.replace(
                first,
                count=first.count + point.count,
                sum=first.sum + point.sum,
                bucket_counts=[a + b for a, b in zip(first.bucket_counts, point.bucket_counts)],
                min=min(first.min, point.min),
                max=max(first.max, point.max),
                time_unix_nano=max(first.time_unix_nano, point.time_unix_nano),
                exemplars=exemplars,
            )
        # other kinds (exponential histograms): the first point is kept
    return out


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value
