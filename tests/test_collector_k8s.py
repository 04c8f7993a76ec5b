"""collector/k8s + collector/kustomization.yaml: strict schema validation with the real
`kubernetes-validate --strict` (PyPI kubernetes-validate, which ships the Kubernetes JSON
schemas; no cluster and no network), ConfigMaps generated from the checked files, the
pinned collector image, probes, the headless Service of the load-balancing exporter, and
the PrometheusRule kept in step with alerts.yml (its spec checked by promtool)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from _collector import COLLECTOR, ROOT, otelcol_check, require_tool

KUSTOMIZATION = yaml.safe_load((COLLECTOR / "kustomization.yaml").read_text())
K8S_VERSION = "1.33"


def _resources() -> list[dict]:
    docs = []
    for resource in KUSTOMIZATION["resources"]:
        docs += [d for d in yaml.safe_load_all((COLLECTOR / resource).read_text()) if d]
    return docs


def _generated_configmaps() -> list[dict]:
    """What kustomize's configMapGenerator makes of the files (before the name hash)."""
    out = []
    for generator in KUSTOMIZATION["configMapGenerator"]:
        data = {}
        for entry in generator["files"]:
            key, _, path = entry.partition("=")
            data[key] = (COLLECTOR / path).read_text()
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"], "namespace": KUSTOMIZATION["namespace"]}, "data": data})
    return out


def _by(kind: str, name: str) -> dict:
    return next(d for d in _resources() if d["kind"] == kind and d["metadata"]["name"] == name)


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_kubernetes_validate_strict(tmp_path):
    cli = shutil.which("kubernetes-validate") or str(ROOT / ".venv" / "bin" / "kubernetes-validate")
    docs = _resources() + _generated_configmaps()
    files = []
    for index, doc in enumerate(docs):
        if doc["apiVersion"].startswith("monitoring.coreos.com"):
            continue  # a CRD: kubernetes-validate has no schema (it would only warn); checked below
        path = tmp_path / f"{index:02d}-{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        files.append(str(path))
    proc = subprocess.run([cli, "--strict", "-k", K8S_VERSION, *files], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed") == len(files), proc.stdout


def test_strict_validation_catches_a_typo(tmp_path):
    """The same check fails on an unknown key (proves --strict is in force)."""
    import kubernetes_validate

    deployment = _by("Deployment", "otel-gateway")
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    deployment["spec"]["template"]["spec"]["containers"][0]["portz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_configmaps_come_from_the_checked_files():
    names = {g["name"]: [f.partition("=")[2] for f in g["files"]] for g in KUSTOMIZATION["configMapGenerator"]}
    assert names == {
        "otel-agent-config": ["otelcol/agent.yaml"],
        "otel-gateway-config": ["otelcol/gateway.yaml"],
        "prometheus-agentwatch-alerts": ["prometheus/alerts.yml", "prometheus/slo-rules.yml"],
    }
    for kind, name, config, key in (("DaemonSet", "otel-agent", "otel-agent-config", "agent.yaml"), ("Deployment", "otel-gateway", "otel-gateway-config", "gateway.yaml")):
        spec = _by(kind, name)["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert container["image"] == f"otel/opentelemetry-collector-contrib:{otelcol_check.PINNED_VERSION}"
        assert container["args"] == [f"--config=/conf/{key}"]
        volume = next(v for v in spec["volumes"] if v["name"] == "config")
        assert volume["configMap"]["name"] == config
        assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/conf", "/var/lib/otelcol/queue"}
        report = otelcol_check.check_file(COLLECTOR / "otelcol" / key)
        assert set(_env(container)) - {"GOMEMLIMIT"} <= set(report.env), "env set in the pod that the config does not read"
        assert container["livenessProbe"]["httpGet"]["port"] == "health"


def test_gateway_headless_service_for_load_balancing():
    headless = _by("Service", "otel-gateway-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == _by("Deployment", "otel-gateway")["spec"]["selector"]["matchLabels"]
    agent_env = _env(_by("DaemonSet", "otel-agent")["spec"]["template"]["spec"]["containers"][0])
    assert agent_env["OTELCOL_GATEWAY_HEADLESS"].startswith("otel-gateway-headless.agentwatch.")
    assert agent_env["OTELCOL_GATEWAY_ENDPOINT"].startswith("otel-gateway.agentwatch.")


def test_app_deployment_probes_and_env():
    container = _by("Deployment", "agent-service")["spec"]["template"]["spec"]["containers"][0]
    assert container["startupProbe"]["httpGet"]["path"] == "/health/startup"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    env = _env(container)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://$(HOST_IP):4318"
    from agentwatch.distro import environment_variables as ev

    known = {value for name, value in vars(ev).items() if name.isupper() and isinstance(value, str)}
    for name in env:
        if name.startswith(("AGENTWATCH_", "OTEL_")):
            assert name in known, f"{name} is not an agentwatch/OTel variable agentwatch documents"


def test_prometheusrule_is_generated_from_alerts_and_valid(tmp_path):
    proc = subprocess.run([sys.executable, str(COLLECTOR / "tools" / "gen_prometheusrule.py"), "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    rule = _by("PrometheusRule", "agentwatch")
    files = [yaml.safe_load((COLLECTOR / "prometheus" / name).read_text()) for name in ("alerts.yml", "slo-rules.yml")]
    assert rule["spec"] == {"groups": [group for rules in files for group in rules["groups"]]}
    promtool = require_tool("promtool")
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(rule["spec"]))
    check = subprocess.run([promtool, "check", "rules", str(spec)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
