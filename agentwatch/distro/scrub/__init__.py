"""The one scrubber: PII and secrets never leave the process.

Every exporter that agentwatch builds (OTLP gRPC/HTTP, console, ``otlp_json_file``)
is wrapped in a guard (``exporters.py``) that hands the inner exporter scrubbed
*copies* of what it exports; the Prometheus reader scrubs each collection before
it is turned into exposition text (``prometheus.py``). So there is exactly one
place where data is cleaned, once per export, after every processor has run::

    span / log record / metric points  ->  Scrubber  ->  inner exporter

What is cleaned: span names, span and event and link attributes, event names,
the span status message, the span's and links' ``tracestate`` values, resource attributes,
log bodies (strings, and dicts and lists at any depth), log attributes and event names,
metric data point and exemplar attributes. Keys as well as values: a key that is itself
personal data (``extra=dict(request.query_params)``) is exported as its scrubbed text, keys
that become equal told apart by ``#2``, ``#3``... (``values.scrub_mapping``).

What is kept (``rules.DEFAULT_KEEP``, ``AGENTWATCH_SCRUB_KEEP_ATTRIBUTES``): infrastructure
attributes (``server.address``, peers on client spans, user agents, versions, health-check
names) are scanned without the detectors that misread them; keys whose last word describes a
secret (``password_reset_count``, ``auth.method``) are not redacted by name; SQL placeholders
are not secrets. Length limits cut scrubbed text, never raw text (``limits.py``).

How values are recognised:

* **By key.** An attribute or dict key whose name contains a sensitive word (unless its last
  word describes the secret: ``password_reset_count``, ``auth.method``)
  (``password``, ``secret``, ``token``, ``api_key``, ``authorization``, ``cookie``,
  ``session``, ``credential``, ``private_key``... see :data:`SENSITIVE_KEYS`) has
  its whole value replaced. Keys are compared word by word (``db.password``,
  ``http.request.header.x-goog-api-key``, ``accessToken`` all match) so token
  *counts* do not: ``gen_ai.usage.input_tokens`` (the word is ``tokens``),
  ``gen_ai.token.type`` and ``llm.token_count.prompt`` (a counting word next to
  ``token``) keep their values, and numbers under the weak words ``token``,
  ``session``, ``auth`` are kept (a secret is a string).
* **By content**, in every string, wherever it is: e-mail addresses, phone
  numbers (E.164 and common national formats), US SSNs, payment cards (Luhn and
  brand checked), IPv4 and IPv6 addresses (loopback and unspecified addresses
  are kept), vendor API keys (Google ``AIza``, OpenAI ``sk-``, Anthropic
  ``sk-ant-``, AWS ``AKIA``, GitHub, Slack, Stripe), JWTs, ``Bearer`` values,
  PEM private keys, credentials in URLs (``https://user:pass@host``), and
  ``name=value`` / ``name: value`` / ``"name": "value"`` pairs with a sensitive
  name in free text, JSON and URL query strings (``?key=...&token=...``).

The replacement keeps the kind: ``[REDACTED:email]``, ``[REDACTED:credit_card]``,
and for a sensitive key the key word that matched: ``[REDACTED:password]``.
Trace and span ids, UUIDs, timestamps, prices and ordinary numbers are left
alone: digit patterns must stand alone (not inside a hex id or a UUID), cards
must pass Luhn and a brand prefix (epoch timestamps start with ``1``), IPv6
needs ``::`` or four colon groups in a row (``12:30:45`` is a time). Metric points
whose attributes become equal once scrubbed are merged (sums added, histograms
combined), so a scrape never shows the same series twice.

The package, from the data up:

* ``rules.py``: detector names, marks, sensitive key rules, ``AGENTWATCH_SCRUB_EXTRA_PATTERNS``
  parsing (a leaf: ``settings.py`` reads it);
* ``detectors.py``: the content patterns, and how each family finds its candidates fast;
* ``hints.py``: the optional Hyperscan pass that says which families must look at a string;
* ``hint_store.py``: its compiled database kept between starts (``AGENTWATCH_CACHE_DIR``);
* ``text.py``: the text engine (:class:`~agentwatch.distro.scrub.text.TextScrubber`);
* ``values.py``: values and attribute maps (keys included), a batch's maps in one pass;
* ``limits.py``: length limits applied after scrubbing (attribute values, captured content);
* ``spans.py``, ``records.py``, ``metrics.py``: the signals, rebuilt as scrubbed copies;
* ``fallback.py``: what the exporters call, which never raises and fails closed.

Speed: all the strings of a batch of spans (or log records) are joined and scanned in one
call; when nothing is found the items are passed on as they are, otherwise the joined text
is scrubbed once, split back, and only the items that changed are copied. Attribute keys are
classified once and cached, and attribute values found clean are remembered.

Failure: the scrubber never raises into the pipeline (``fallback.py``). If scrubbing an
item fails, one warning is printed and the item is scrubbed again value by value; a value
that still cannot be scrubbed is replaced by ``[REDACTED:error]`` (dropping a value is safer
than leaking it), and an item that cannot be rebuilt at all is dropped from the batch.

Configuration (``settings.py``): ``AGENTWATCH_SCRUB``,
``AGENTWATCH_SCRUB_DISABLED_DETECTORS``, ``AGENTWATCH_SCRUB_EXTRA_PATTERNS``,
``AGENTWATCH_SCRUB_EXTRA_KEYS``, ``AGENTWATCH_SCRUB_ENGINE``, ``AGENTWATCH_SCRUB_KEEP_ATTRIBUTES``,
``AGENTWATCH_SCRUB_NOT_SECRET_KEYS``, ``AGENTWATCH_CACHE_DIR``, and the
``OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT`` variables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from agentwatch.distro.scrub import fallback, metrics, records, spans, values
from agentwatch.distro.scrub.detectors import is_card_number
from agentwatch.distro.scrub.limits import AttributeLimits
from agentwatch.distro.scrub.rules import (
    DEFAULT_KEEP,
    DETECTOR_ALIASES,
    DETECTORS,
    ERROR_MARK,
    SENSITIVE_KEYS,
    KeyRules,
    Renamed,
    key_words,
    parse_extra_patterns,
)
from agentwatch.distro.scrub.text import TextScrubber

__all__ = [
    "DEFAULT_KEEP",
    "DETECTORS",
    "DETECTOR_ALIASES",
    "ERROR_MARK",
    "SENSITIVE_KEYS",
    "AttributeLimits",
    "Scrubber",
    "default_scrubber",
    "is_card_number",
    "key_words",
    "parse_extra_patterns",
    "scrub_text",
    "scrubber_for",
]


class Scrubber(TextScrubber):
    """Redacts PII and secrets from strings, attribute maps, spans, logs and metrics.

    ``disabled``: detector names (see :data:`DETECTORS`, :data:`DETECTOR_ALIASES`) to
    switch off. ``extra_patterns``: ``(kind, regex)`` pairs; a match (or its first
    group, when the regex has groups) becomes ``[REDACTED:<kind>]``. ``extra_keys``:
    more sensitive key names (matched like the built-in ones, values always redacted).
    ``engine``: ``auto`` (the Hyperscan hint pass where it runs) or ``re``. ``cache_dir``:
    where the hint pass's compiled database is kept between starts (``None``: not kept).

    One scrubber is shared by the exporters' threads: its caches (key classes, values
    found clean, scrubbed resources) are safe to fill and clear from several at once.
    """

    def __init__(
        self,
        disabled: Iterable[str] = (),
        extra_patterns: Iterable[tuple[str, str | re.Pattern[str]]] = (),
        extra_keys: Iterable[str] = (),
        engine: str = "auto",
        keep: Mapping[str, tuple[frozenset[str], bool]] | None = None,
        not_secret_keys: Iterable[str] = (),
        limits: AttributeLimits | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(disabled, extra_patterns, extra_keys, engine, cache_dir)
        #: The attribute value length limits applied after scrubbing (``limits.py``).
        self.limits = limits if limits is not None and limits.any else None
        self._keys = KeyRules(
            self.extra_keys,
            "sensitive_keys" in self.enabled,
            dict(DEFAULT_KEEP if keep is None else keep),
            not_secret_keys,
            self.scrub_text,
            self._keep_scan,
        )
        # Attribute values found clean (code.file.path, http.route, user agents, model names
        # recur on every record): skipped by the next batches. A value's result does not
        # depend on its neighbours, so this changes no output. Bounded (values.remember_clean).
        self._clean_values: dict[str, None] = {}
        self._resource_cache: dict[int, tuple[Any, Any]] = {}

    def _keep_scan(self, off: frozenset[str]) -> Callable[[str], str]:
        """The scan of keep-list values: this scrubber's detectors without ``off`` (built on first use;
        Python's ``re`` engine: these values are short)."""
        built: list[TextScrubber] = []

        def scan(text: str) -> str:
            if not built:
                disabled = [d for d in DETECTORS if d not in self.enabled or d in off]
                built.append(TextScrubber(disabled, self.extra_patterns, self.extra_keys, "re"))
            return built[0].scrub_text(text)

        return scan

    def scrub_key(self, key: Any) -> Any:
        """An attribute or dict key as it may be exported: its scrubbed text when it is itself
        personal data (``jane@example.com`` -> ``[REDACTED:email]``), else ``key``."""
        if isinstance(key, str):
            kind = self._keys.classify(key)
            return kind.key if type(kind) is Renamed else key
        return values.scan(self, key, 0) if type(key) is int else key

    def classify_key(self, key: str) -> Any:
        """``rules.SAFE``, ``rules.PLAIN`` or a :class:`rules.Sensitive` for an attribute/dict key (cached)."""
        return self._keys.classify(key)

    def scrub_value(self, value: Any, key: str | None = None) -> Any:
        """One attribute or body value (nested dicts and lists included); ``key`` is its key."""
        if key is not None and isinstance(key, str):
            return values.value_for(self, self._keys.classify(key), value)
        return values.scan(self, value, 0)

    def scrub_attributes(self, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """A scrubbed copy of an attribute map, or the same object when nothing needed scrubbing."""
        return values.scrub_attributes(self, attributes)

    def scrub_resource(self, resource: Any) -> Any:
        """A resource with scrubbed attributes (cached per resource object)."""
        return values.scrub_resource(self, resource)

    def scrub_span(self, span: Any) -> Any:
        """A scrubbed copy of a ``ReadableSpan``, or the span itself when it is clean."""
        return spans.scrub_batch(self, [span])[0]

    def scrub_log(self, record: Any) -> Any:
        """A scrubbed copy of a ``ReadableLogRecord``, or the record itself when it is clean."""
        return records.scrub_batch(self, [record])[0]

    def scrub_metrics(self, metrics_data: Any, safely: bool = False) -> Any:
        """A scrubbed copy of ``MetricsData`` (resource, data point and exemplar attributes)."""
        return metrics.scrub_metrics(self, metrics_data, safely)

    # batches (what the exporters call): never raise ---------------------------------------------
    def scrub_spans(self, spans: Sequence[Any]) -> list[Any]:
        """Scrubbed copies of a batch of spans (clean ones are passed on as they are). Never raises."""
        return fallback.scrub_spans(self, spans)

    def scrub_logs(self, records: Sequence[Any]) -> list[Any]:
        """Scrubbed copies of a batch of log records (clean ones are passed on as they are). Never raises."""
        return fallback.scrub_logs(self, records)

    def scrub_metrics_safely(self, metrics_data: Any) -> Any:
        """``scrub_metrics`` that never raises: on failure, values are scrubbed one by one; ``None`` if even that fails."""
        return fallback.scrub_metrics_safely(self, metrics_data)


_cached: tuple[Any, Scrubber | None] | None = None


def scrubber_for(settings: Any) -> Scrubber | None:
    """The scrubber the settings ask for (``None`` when ``AGENTWATCH_SCRUB=false``), built once per settings."""
    global _cached  # noqa: PLW0603 - one scrubber per settings object
    if _cached is not None and _cached[0] is settings:
        return _cached[1]
    scrubber = None
    section = settings.scrub  # no getattr defaults: a renamed field must fail, not scrub less
    if section.enabled:
        scrubber = Scrubber(
            disabled=section.disabled_detectors,
            extra_patterns=section.extra_patterns,
            extra_keys=section.extra_keys,
            engine=section.engine,
            cache_dir=section.cache_dir,
            keep=section.keep,
            not_secret_keys=section.not_secret_keys,
            limits=AttributeLimits(section.span_attribute_length, section.attribute_length,
                                   section.log_attribute_length, section.log_body_length),
        )
    _cached = (settings, scrubber)
    return scrubber


def default_scrubber() -> Scrubber | None:
    """The scrubber of this process's settings (for readers and exporters built outside ``setup()``)."""
    # Imported here: settings.py imports this package's rules, which runs this module first.
    from agentwatch.distro.settings import settings

    return scrubber_for(settings())


def scrub_text(text: str) -> str:
    """One string through this process's scrubber (for code that exports or returns free text itself).

    Never raises (but under the test suite, see ``guard.strict``); returns ``text`` unchanged
    when ``AGENTWATCH_SCRUB=false``, and ``[REDACTED:error]`` if the text cannot be scrubbed.
    """
    try:
        scrubber = default_scrubber()
        return text if scrubber is None else scrubber.scrub_text(text)
    except Exception as error:  # noqa: BLE001 - never break the caller
        fallback.scrub_failed("text", error, "it was replaced by [REDACTED:error]")
        return ERROR_MARK
