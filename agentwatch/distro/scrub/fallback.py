"""What the exporters call: batches scrubbed without ever raising, and failing closed.

If scrubbing a batch fails, it is said once and the items are scrubbed again one by one; an
item that fails is scrubbed again value by value, and a value that still fails is replaced by
``[REDACTED:error]`` (dropping a value is safer than leaking it); an item that cannot be rebuilt
at all is dropped from the batch. Nothing unscrubbed is ever passed on. The warning names the
error's type only: its text may quote the very value that could not be scrubbed. Under the test
suite (``guard.strict()``) the first failure is raised instead, so a bug in a fast path
fails a test rather than hiding behind the slower one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agentwatch.distro.guard import failed, strict
from agentwatch.distro.scrub import metrics, records, spans
from agentwatch.distro.scrub.values import attributes_safely, cut_map, resource_safely, safe_value

if TYPE_CHECKING:
    from agentwatch.distro.scrub import Scrubber

__all__ = ["scrub_failed", "scrub_logs", "scrub_metrics_safely", "scrub_spans"]

_ONE_BY_ONE = "its items were scrubbed again one by one"
_VALUE_BY_VALUE = "its values were scrubbed one by one, and any that failed replaced by [REDACTED:error]"
_DROPPED = "it was dropped"


def scrub_failed(what: str, error: Exception, outcome: str) -> None:
    """Say once that scrubbing a ``what`` failed and what was done instead (re-raised under the suite)."""
    if strict():
        raise error
    failed(f"scrubbing a {what}", error, f"{outcome}, so nothing unscrubbed was exported", detail=type(error).__name__)


def scrub_spans(scrubber: Scrubber, batch: Sequence[Any]) -> list[Any]:
    """Scrubbed copies of a batch of spans (clean ones are passed on as they are). Never raises."""
    try:
        return spans.scrub_batch(scrubber, batch)
    except Exception as error:  # noqa: BLE001 - never break the pipeline
        scrub_failed("span batch", error, _ONE_BY_ONE)
    return _one_by_one(scrubber, batch, spans.scrub_batch, _span_safely, "span")


def scrub_logs(scrubber: Scrubber, batch: Sequence[Any]) -> list[Any]:
    """Scrubbed copies of a batch of log records (clean ones are passed on as they are). Never raises."""
    try:
        return records.scrub_batch(scrubber, batch)
    except Exception as error:  # noqa: BLE001 - never break the pipeline
        scrub_failed("log batch", error, _ONE_BY_ONE)
    return _one_by_one(scrubber, batch, records.scrub_batch, _log_safely, "log record")


def scrub_metrics_safely(scrubber: Scrubber, metrics_data: Any) -> Any:
    """``scrub_metrics`` that never raises: on failure, values are scrubbed one by one; ``None`` if even that fails."""
    try:
        return metrics.scrub_metrics(scrubber, metrics_data)
    except Exception as error:  # noqa: BLE001 - never break the pipeline
        scrub_failed("metric collection", error, _VALUE_BY_VALUE)
    try:
        return metrics.scrub_metrics(scrubber, metrics_data, safely=True)
    except Exception as error:  # noqa: BLE001
        scrub_failed("metric collection (value by value)", error, _DROPPED)
        return None


def _one_by_one(
    scrubber: Scrubber,
    items: Sequence[Any],
    scrub_batch: Callable[[Scrubber, Sequence[Any]], list[Any]],
    safely: Callable[[Scrubber, Any], Any],
    what: str,
) -> list[Any]:
    """Each item alone through ``scrub_batch``, then ``safely`` (value by value); dropped if both fail."""
    out = []
    for item in items:
        try:
            out.append(scrub_batch(scrubber, [item])[0])
            continue
        except Exception as error:  # noqa: BLE001 - never break the pipeline
            scrub_failed(what, error, _VALUE_BY_VALUE)
        try:
            out.append(safely(scrubber, item))
        except Exception as error:  # noqa: BLE001
            scrub_failed(f"{what} (value by value)", error, _DROPPED)
    return out


def _span_safely(scrubber: Scrubber, span: Any) -> Any:
    events, links = span.events, span.links
    description = span.status.description if span.status is not None else None
    texts = [safe_value(scrubber, t) for t in (span.name, description, *(e.name for e in events))]
    maps = [
        attributes_safely(scrubber, m)
        for m in (span.attributes, *(e.attributes for e in events), *(link.attributes for link in links))
    ]
    if scrubber.limits is not None:
        maps = [cut_map(m, scrubber.limits.span if i == 0 else scrubber.limits.event) for i, m in enumerate(maps)]
    return spans.rebuild_span(span, texts, maps, resource_safely(scrubber, span.resource), scrubber=scrubber)


def _log_safely(scrubber: Scrubber, record: Any) -> Any:
    log = record.log_record
    return records.rebuild_log(
        record,
        safe_value(scrubber, log.body),
        cut_map(attributes_safely(scrubber, log.attributes), scrubber.limits.log if scrubber.limits else None),
        safe_value(scrubber, getattr(log, "event_name", None)),
        resource_safely(scrubber, record.resource),
    )
