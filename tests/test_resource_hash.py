"""The resource agentwatch builds hashes once (the OTLP encoders hash it for every span and log record)
and is otherwise a plain SDK Resource: equal, same hash, same encoded OTLP."""

from __future__ import annotations

from unittest import mock

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk import resources as sdk_resources
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from agentwatch.distro.resource import StableResource, build_resource, fork_attributes
from agentwatch.distro.settings import load_settings


def _resource() -> Resource:
    return build_resource(load_settings({"OTEL_RESOURCE_ATTRIBUTES": "team=agents,region=eu"}, argv=["app.py"]), "0.66b1")


def test_built_resource_is_stable_and_equal_to_the_plain_one() -> None:
    stable = _resource()
    plain = Resource(stable.attributes, stable.schema_url)
    assert isinstance(stable, StableResource)
    assert stable == plain and plain == stable
    assert hash(stable) == hash(plain)
    assert {plain: 1}[stable] == 1  # a dict keyed by either finds the other


def test_hash_is_computed_once() -> None:
    stable = _resource()
    with mock.patch.object(sdk_resources, "dumps", side_effect=AssertionError("hashed again")):
        for _ in range(100):
            hash(stable)
    plain = Resource(stable.attributes, stable.schema_url)
    with mock.patch.object(sdk_resources, "dumps", wraps=sdk_resources.dumps) as dumps:
        for _ in range(3):
            hash(plain)
    assert dumps.call_count == 3  # what the SDK does without it


def test_fork_merge_keeps_the_kind_and_the_new_pid() -> None:
    provider = TracerProvider(resource=_resource())
    provider._update_resource(fork_attributes())  # what agentwatch runs in a forked worker
    assert isinstance(provider.resource, StableResource)
    assert provider.resource.attributes["process.pid"] == fork_attributes().attributes["process.pid"]


def test_encoded_otlp_is_the_same_as_with_a_plain_resource() -> None:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    stable = _resource()
    plain = Resource(stable.attributes, stable.schema_url)
    encoded = []
    for resource in (stable, plain):
        spans = InMemorySpanExporter()
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        for i in range(5):
            tracer_provider.get_tracer("t").start_span(f"s{i}", attributes={"i": i}).end(end_time=i + 10)
        logs = InMemoryLogRecordExporter()
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        logger_provider.get_logger("t").emit(body="hello", timestamp=1, observed_timestamp=1)
        trace_request = encode_spans(spans.get_finished_spans())
        log_request = encode_logs(logs.get_finished_logs())
        for resource_spans in trace_request.resource_spans:  # ids and times differ between the two runs
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    span.ClearField("trace_id"), span.ClearField("span_id"), span.ClearField("start_time_unix_nano")
        encoded.append((trace_request.SerializeToString(deterministic=True), log_request.SerializeToString(deterministic=True)))
    assert encoded[0] == encoded[1]
    assert len(encoded[0][0]) > 200 and b"service.name" in encoded[0][0]


def test_version_and_environment_only_when_known(tmp_path):
    """No made-up service.version / deployment.environment.name (issue 17, item 6): set, or the version of the
    installed package the program runs from, or absent."""
    import wrapt

    from agentwatch.distro.resource import app_package_version, build_resource
    from agentwatch.distro.settings import load_settings

    unset = build_resource(load_settings({"OTEL_SERVICE_NAME": "svc"})).attributes
    assert "deployment.environment.name" not in unset
    assert unset.get("service.version") in (None, app_package_version())
    chosen = build_resource(load_settings({"AGENTWATCH_SERVICE_VERSION": "1.4.2", "AGENTWATCH_ENVIRONMENT": "prod"})).attributes
    assert (chosen["service.version"], chosen["deployment.environment.name"]) == ("1.4.2", "prod")
    from importlib import metadata

    assert app_package_version(wrapt.__file__) == metadata.version("wrapt")  # a module of an installed package
    script = tmp_path / "app.py"
    script.write_text("")
    assert app_package_version(str(script)) is None  # a script in a project directory
    import opentelemetry.sdk.trace

    assert app_package_version(opentelemetry.sdk.trace.__file__) is None  # a namespace shared by many distributions
