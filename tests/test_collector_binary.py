"""The real collector (collector/distribution/, built by ``make collector``) validates the
bundled configs: ``otelcol-agentwatch validate --config ...`` loads every component's
factory, unmarshals every key into its Go config struct and runs each config's own
``Validate`` (unknown keys, types, ranges, cross-field rules, OTTL statements, regexes,
the service graph).

What the binary cannot tell stays with the offline check (collector/tools/otelcol_check.py,
tests/test_collector_config.py): every ``${env:...}`` has a default (the binary substitutes
silently), deprecated aliases (the binary accepts them with a warning), ``memory_limiter``
first and ``batch`` last, components defined but unused, and the README's variable table.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _collector import COLLECTOR, collector_binary
from local_stack import collector_env, free_port

from _collector import SINGLE_ENV

pytestmark = SINGLE_ENV

CONFIGS = [COLLECTOR / "otelcol" / "agent.yaml", COLLECTOR / "otelcol" / "gateway.yaml"]
GATEWAY = CONFIGS[1]


def _validate(binary: str, *configs: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, "validate", *(f"--config={path}" for path in configs)],
        capture_output=True, text=True, timeout=120, env=env,
    )


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_the_real_collector_validates_the_config(path):
    done = _validate(collector_binary(), path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_binary_has_exactly_the_components_the_configs_use():
    import yaml

    done = subprocess.run([collector_binary(), "components"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    built = yaml.safe_load(done.stdout)
    have = {kind: {c["name"] for c in built.get(kind) or []} for kind in ("receivers", "processors", "exporters", "connectors", "extensions")}
    used: dict[str, set[str]] = {kind: set() for kind in have}
    for path in CONFIGS:
        config = yaml.safe_load(path.read_text())
        for kind in used:
            used[kind] |= {cid.split("/")[0] for cid in config.get(kind) or {}}
    used["exporters"].add("file")  # what the end-to-end test and make demo-stack write to (tools/local_stack.py)
    assert have == used
    assert built["buildinfo"]["version"] == "0.161.0"


# What the binary catches that nothing offline could check as well (the Go config structs
# and their Validate methods): each mutation of the gateway config must fail validate.
MUTATIONS = [
    ("unknown key", lambda t: t.replace("check_interval: 1s", "check_intervall: 1s")),
    ("unknown component type", lambda t: t.replace("  batch:\n", "  batchx:\n", 1)),
    ("bad OTTL", lambda t: t.replace("where IsString(log.body)", "where IsStrin(log.body)", 1)),
    ("bad RE2 in redaction", lambda t: t.replace("- '\\bAIza[0-9A-Za-z_-]{35}'", "- '\\bAIza([0-9A-Za-z_-]{35}'", 1)),
    ("memory limit below spike", lambda t: t.replace("${env:OTELCOL_MEMORY_LIMIT_PERCENTAGE:-80}", "10", 1)),
    ("connector on one side only", lambda t: t.replace("receivers: [otlp, span_metrics]", "receivers: [otlp]")),
    ("undefined exporter in a pipeline", lambda t: t.replace("exporters: [prometheus]", "exporters: [prometheus, zipkin]")),
    ("bad duration", lambda t: t.replace("${env:OTELCOL_TAIL_DECISION_WAIT:-10s}", "ten seconds", 1)),
]


@pytest.mark.parametrize("mutate", [m[1] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_validate_rejects(mutate, tmp_path):
    text = GATEWAY.read_text()
    mutated = mutate(text)
    assert mutated != text, "the mutation did not apply"
    path = tmp_path / "gateway.yaml"
    path.write_text(mutated)
    done = _validate(collector_binary(), path)
    assert done.returncode != 0, f"validate accepted it:\n{done.stdout}{done.stderr}"


# `validate` does not build every component: an unknown tail-sampling policy type passes it
# and fails only when the collector starts. Such a mutation must make a real start fail (the
# unbroken configs start in tests/test_collector_e2e.py).
START_MUTATIONS = [
    ("tail sampling policy type", lambda t: t.replace("type: status_code", "type: status_codes", 1)),
]


@pytest.mark.parametrize("mutate", [m[1] for m in START_MUTATIONS], ids=[m[0] for m in START_MUTATIONS])
def test_validate_passes_but_start_fails(mutate, tmp_path):
    mutated = mutate(GATEWAY.read_text())
    assert mutated != GATEWAY.read_text(), "the mutation did not apply"
    path = tmp_path / "gateway.yaml"
    path.write_text(mutated)
    binary = collector_binary()
    assert _validate(binary, path).returncode == 0  # the limit of validate this test documents
    ports = {name: str(free_port()) for name in ("grpc", "http", "health", "metrics", "prom")}
    env = collector_env(
        MY_POD_IP="127.0.0.1", OTELCOL_OTLP_GRPC_PORT=ports["grpc"], OTELCOL_OTLP_HTTP_PORT=ports["http"],
        OTELCOL_HEALTH_PORT=ports["health"], OTELCOL_METRICS_PORT=ports["metrics"], OTELCOL_PROMETHEUS_PORT=ports["prom"],
        OTELCOL_ZPAGES_ENDPOINT=f"127.0.0.1:{free_port()}", OTELCOL_PPROF_ENDPOINT=f"127.0.0.1:{free_port()}",
        OTELCOL_QUEUE_DIR=str(tmp_path / "queue"),
    )
    process = subprocess.Popen([binary, f"--config={path}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"the collector started with a broken config:\n{output[-2000:]}")
    assert process.returncode != 0, output[-2000:]
