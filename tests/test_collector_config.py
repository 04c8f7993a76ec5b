"""The bundled collector configs (collector/otelcol/*.yaml), checked offline against the
pinned otelcol-contrib release: component names, schema keys, service graph, env defaults.

The collector binary is not needed: collector/tools/otelcol_check.py reads the vendored
upstream data in collector/vendor/otelcol/ (see PROVENANCE.md there).
"""

from __future__ import annotations

import filecmp
import re
from pathlib import Path

import pytest
import yaml

from _collector import COLLECTOR, ROOT, otelcol_check

from _collector import SINGLE_ENV

pytestmark = SINGLE_ENV

CONFIGS = sorted((COLLECTOR / "otelcol").glob("*.yaml"))
AGENT = COLLECTOR / "otelcol" / "agent.yaml"
GATEWAY = COLLECTOR / "otelcol" / "gateway.yaml"


def test_both_configs_are_there():
    assert [p.name for p in CONFIGS] == ["agent.yaml", "gateway.yaml"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_passes_every_offline_check(path):
    report = otelcol_check.check_file(path)
    assert report.errors == []
    assert report.warnings == []


def _check_text(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return otelcol_check.check_file(path).errors


# Each mutation of the gateway config must be caught, with the expected message.
MUTATIONS = [
    ("deprecated alias", lambda t: t.replace("span_metrics", "spanmetrics"), "deprecated alias"),
    ("old otlp exporter name", lambda t: t.replace("otlp_grpc/traces", "otlp/traces"), "deprecated alias"),
    ("unknown type", lambda t: t.replace("  batch:\n", "  batchx:\n", 1), "unknown processor type 'batchx'"),
    ("core key typo", lambda t: t.replace("check_interval: 1s", "check_intervall: 1s"), "memory_limiter.check_intervall: unknown key"),
    ("queue key typo", lambda t: t.replace("queue_size: ${env:OTELCOL_QUEUE_SIZE:-5000}", "num_consumer: 4", 1), "sending_queue.num_consumer: unknown key"),
    ("grpc key typo", lambda t: t.replace("max_recv_msg_size_mib", "max_recv_msg_size"), "grpc.max_recv_msg_size: unknown key"),
    ("wrong scalar type", lambda t: t.replace("max_recv_msg_size_mib: 16", "max_recv_msg_size_mib: lots"), "expected integer"),
    ("contrib key typo", lambda t: t.replace("decision_wait:", "decision_wiat:"), "tail_sampling.decision_wiat: unknown key"),
    ("redaction has no blocked_keys", lambda t: t.replace("blocked_key_patterns:", "blocked_keys:"), "redaction/pii.blocked_keys: unknown key"),
    ("no default", lambda t: t.replace("${env:LOKI_OTLP_ENDPOINT:-http://loki:3100/otlp}", "${env:LOKI_OTLP_ENDPOINT}"), "bad substitution"),
    ("bash-style default", lambda t: t.replace("${env:LOKI_OTLP_ENDPOINT:-", "${env:LOKI_OTLP_ENDPOINT-"), "bad substitution"),
    ("naked variable", lambda t: t.replace("${env:TRACES_OTLP_ENDPOINT:-tempo:4317}", "$TRACES_OTLP_ENDPOINT"), "naked"),
    ("memory_limiter not first", lambda t: t.replace("processors: [memory_limiter, batch]", "processors: [batch, memory_limiter]"), "memory_limiter must be the first"),
    ("batch not last", lambda t: t.replace("tail_sampling, batch]", "batch, tail_sampling]"), "batch must be the last"),
    ("undefined component", lambda t: t.replace("exporters: [prometheus]", "exporters: [prometheus, zipkin]"), "'zipkin' is not defined"),
    ("connector on one side only", lambda t: t.replace("receivers: [otlp, span_metrics]", "receivers: [otlp]"), "connector 'span_metrics' must be"),
    ("unused component", lambda t: t.replace(", debug]", "]"), "'debug' is defined but not used"),
    ("extension not enabled", lambda t: t.replace("extensions: [health_check, pprof, zpages, file_storage/queue]", "extensions: [health_check, pprof, zpages]"), "not an enabled extension"),
    ("extension not defined", lambda t: t.replace("extensions: [health_check,", "extensions: [basicauth, health_check,"), "'basicauth' is not defined"),
]


@pytest.mark.parametrize(("mutate", "expected"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_checker_catches(mutate, expected, tmp_path):
    text = GATEWAY.read_text()
    mutated = mutate(text)
    assert mutated != text, "the mutation did not apply"
    errors = _check_text(mutated, tmp_path)
    assert any(expected in error for error in errors), errors


def test_every_component_type_is_canonical_in_the_pinned_release():
    catalogue = otelcol_check.components()
    for path in CONFIGS:
        config = otelcol_check.load_resolved(path)
        for section, kind in otelcol_check.KINDS.items():
            for cid in config.get(section) or {}:
                assert cid.split("/")[0] in catalogue["canonical"][kind], (path.name, cid)


def test_issue_shape_agent():
    config = otelcol_check.load_resolved(AGENT)
    lb = config["exporters"]["load_balancing"]
    assert lb["routing_key"] == "traceID"
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["load_balancing"]
    assert "dns" in lb["resolver"]
    for pipe in config["service"]["pipelines"].values():
        assert "load_balancing" not in pipe["exporters"] or pipe is config["service"]["pipelines"]["traces"]


def test_issue_shape_gateway():
    config = otelcol_check.load_resolved(GATEWAY)
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    policies = {p["type"] for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies == {"status_code", "latency", "probabilistic"}
    assert set(config["exporters"]) == {"otlp_grpc/traces", "otlp_http/loki", "prometheus", "debug"}
    assert config["exporters"]["otlp_http/loki"]["endpoint"].endswith("/otlp")
    assert config["connectors"]["span_metrics"]["histogram"]["unit"] == "s"
    pipes = config["service"]["pipelines"]
    assert "span_metrics" in pipes["traces/spanmetrics"]["exporters"] and "tail_sampling" not in pipes["traces/spanmetrics"]["processors"]
    assert "span_metrics" in pipes["metrics"]["receivers"]
    assert "transform/pii_logs" in pipes["logs"]["processors"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_common_shape(path):
    config = otelcol_check.load_resolved(path)
    assert {"health_check", "pprof", "zpages", "file_storage/queue"} <= set(config["service"]["extensions"])
    assert config["extensions"]["health_check"]["endpoint"].startswith("0.0.0.0:")  # localhost would fail k8s probes
    for cid, body in config["exporters"].items():
        if cid.split("/")[0] in ("otlp_grpc", "otlp_http", "load_balancing"):
            assert body["sending_queue"]["enabled"] is True and body["sending_queue"]["storage"] == "file_storage/queue", cid
            assert body["retry_on_failure"]["enabled"] is True, cid
    redaction = config["processors"]["redaction/pii"]
    assert redaction["allow_all_keys"] is True and redaction["summary"] == "silent"
    for pipe in config["service"]["pipelines"].values():
        procs = pipe["processors"]
        assert procs[0] == "memory_limiter" and procs[-1] == "batch"


def _documented_env() -> dict[str, str]:
    text = (COLLECTOR / "README.md").read_text()
    table = text.split("<!-- otelcol-env:start -->", 1)[1].split("<!-- otelcol-env:end -->", 1)[0]
    rows = re.findall(r"^\| `([A-Z_][A-Z0-9_]*)` \| `([^`]*)` \|", table, re.M)
    return dict(rows)


def test_every_env_variable_is_documented_with_its_default():
    documented = _documented_env()
    seen: dict[str, set[str]] = {}
    for path in CONFIGS:
        report = otelcol_check.check_file(path)
        for name, defaults in report.env.items():
            seen.setdefault(name, set()).update(defaults)
    for name, defaults in seen.items():
        assert len(defaults) == 1, f"{name} has different defaults in agent and gateway: {defaults}"
        assert name in documented, f"{name} is not in collector/README.md's table"
        assert documented[name] == next(iter(defaults)), name
    assert set(documented) == set(seen), "README lists variables the configs do not use"


def test_vendored_reference_data_is_what_shared_holds():
    shared = ROOT.parent / "shared" / "otelcol"
    if not shared.is_dir():
        pytest.skip("../shared/otelcol is not beside this clone (only the vendored copy is)")
    vendor = COLLECTOR / "vendor" / "otelcol"
    assert filecmp.cmp(shared / "components.json", vendor / "components.json", shallow=False)
    for path in (vendor / "core-schemas").rglob("config.schema.yaml"):
        assert filecmp.cmp(path, shared / "core-schemas" / path.relative_to(vendor / "core-schemas"), shallow=False), path


def test_contrib_key_lists_parse():
    keys = yaml.safe_load((COLLECTOR / "vendor" / "otelcol" / "contrib-keys.yaml").read_text())
    assert {"extension", "processor", "exporter", "connector", "service"} <= set(keys)
