"""collector/k8s + collector/kustomization.yaml: strict schema validation with the real
`kubernetes-validate --strict` (PyPI kubernetes-validate, which ships the Kubernetes JSON
schemas; no cluster and no network), ConfigMaps generated from the checked files, the
pinned collector image, probes, the headless Service of the load-balancing exporter, and
the PrometheusRule kept in step with alerts.yml (its spec checked by promtool)."""

from __future__ import annotations

import re

import shutil
import subprocess
import sys

import pytest
import yaml

from _collector import COLLECTOR, ROOT, otelcol_check, require_tool

from _collector import SINGLE_ENV

pytestmark = SINGLE_ENV

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
        "prometheus-agentwatch-alerts": ["prometheus/alerts.yml", "prometheus/alerts-resilience.yml", "prometheus/alerts-caches-queues.yml", "prometheus/alerts-agents.yml", "prometheus/slo-rules.yml"],
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
    files = [yaml.safe_load((COLLECTOR / "prometheus" / name).read_text()) for name in ("alerts.yml", "alerts-resilience.yml", "alerts-caches-queues.yml", "alerts-agents.yml", "slo-rules.yml")]
    assert rule["spec"] == {"groups": [group for rules in files for group in rules["groups"]]}
    promtool = require_tool("promtool")
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(rule["spec"]))
    check = subprocess.run([promtool, "check", "rules", str(spec)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


# --- Prometheus Operator ServiceMonitor / PodMonitor (k8s/monitors.yaml) ---------------------
# kubernetes-validate has no schema for CRDs. This is the part of the monitoring.coreos.com/v1
# ServiceMonitor and PodMonitor schemas (prometheus-operator's CRDs) the bundle uses, strict like
# `kubernetes-validate --strict`: an unknown or misspelt key fails.
_DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_SELECTOR = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "matchLabels": _LABELS,
        "matchExpressions": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["key", "operator"],
            "properties": {"key": {"type": "string"}, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]}, "values": {"type": "array", "items": {"type": "string"}}},
        }},
    },
}
_ENDPOINT = {
    "type": "object", "additionalProperties": False, "required": ["port"],
    "properties": {
        "port": {"type": "string"}, "path": {"type": "string", "pattern": "^/"}, "scheme": {"enum": ["http", "https"]},
        "interval": _DURATION, "scrapeTimeout": _DURATION, "honorLabels": {"type": "boolean"}, "honorTimestamps": {"type": "boolean"},
    },
}
_META = {
    "type": "object", "additionalProperties": False, "required": ["name"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": _LABELS, "annotations": _LABELS},
}
_NAMESPACES = {"type": "object", "additionalProperties": False, "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}}


def _monitor_schema(kind: str, endpoints: str) -> dict:
    return {
        "type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": kind}, "metadata": _META,
            "spec": {
                "type": "object", "additionalProperties": False, "required": ["selector", endpoints],
                "properties": {"selector": _SELECTOR, "namespaceSelector": _NAMESPACES, "jobLabel": {"type": "string"},
                               endpoints: {"type": "array", "minItems": 1, "items": _ENDPOINT}},
            },
        },
    }


MONITOR_SCHEMAS = {"ServiceMonitor": _monitor_schema("ServiceMonitor", "endpoints"), "PodMonitor": _monitor_schema("PodMonitor", "podMetricsEndpoints")}


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        ok = {"In": present and value in expr.get("values", []), "NotIn": value not in expr.get("values", []), "Exists": present, "DoesNotExist": not present}[expr["operator"]]
        if not ok:
            return False
    return True


def _seconds(duration: str) -> int:
    value, unit = int(duration[:-1]), duration[-1]
    return value * {"s": 1, "m": 60, "h": 3600}[unit]


def _monitors() -> list[dict]:
    return [d for d in _resources() if d["kind"] in MONITOR_SCHEMAS]


def test_monitors_are_valid_against_the_operator_schema():
    import jsonschema

    kinds = sorted(d["kind"] for d in _monitors())
    assert kinds == ["PodMonitor", "ServiceMonitor"]
    for doc in _monitors():
        jsonschema.validate(doc, MONITOR_SCHEMAS[doc["kind"]])
        spec = doc["spec"]
        for endpoint in spec.get("endpoints", []) + spec.get("podMetricsEndpoints", []):
            assert _seconds(endpoint["scrapeTimeout"]) < _seconds(endpoint["interval"]), "Prometheus refuses a timeout above the interval"
        assert spec["namespaceSelector"] == {"matchNames": [KUSTOMIZATION["namespace"]]}


def test_monitor_schema_catches_a_typo():
    import jsonschema

    doc = next(d for d in _monitors() if d["kind"] == "ServiceMonitor")
    bad = yaml.safe_load(yaml.safe_dump(doc))
    bad["spec"]["endpoints"][0]["honourLabels"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, MONITOR_SCHEMAS["ServiceMonitor"])
    bad = yaml.safe_load(yaml.safe_dump(doc))
    bad["spec"]["endpoints"][0]["interval"] = "15 seconds"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, MONITOR_SCHEMAS["ServiceMonitor"])


def test_servicemonitor_scrapes_the_gateway_exporter_once_per_pod():
    monitor = next(d for d in _monitors() if d["kind"] == "ServiceMonitor")
    services = [d for d in _resources() if d["kind"] == "Service" and _selects(monitor["spec"]["selector"], d["metadata"].get("labels", {}))]
    assert services, "the ServiceMonitor selects no Service"
    gateway = _by("Deployment", "otel-gateway")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        exposing = [s for s in services if endpoint["port"] in {p["name"] for p in s["spec"]["ports"]}]
        assert len(exposing) == 1, f"port {endpoint['port']} on {len(exposing)} selected Services: every pod scraped that often"
        assert _selects({"matchLabels": exposing[0]["spec"]["selector"]}, _by("Deployment", "otel-gateway")["spec"]["template"]["metadata"]["labels"])
        assert endpoint["honorLabels"] is True  # job/instance from the exporter, as prometheus/prometheus.yml does
    exporter = yaml.safe_load((COLLECTOR / "otelcol" / "gateway.yaml").read_text())["exporters"]["prometheus"]
    assert exporter["endpoint"].rstrip("}").endswith(f"-{ports['prometheus']}"), exporter["endpoint"]  # ${env:...:-8889}


def _env_default(value: object) -> object:
    """``${env:VAR:-8888}`` -> 8888 (what the collector uses where VAR is unset); anything else as it is."""
    match = re.fullmatch(r"\$\{env:\w+:-(\d+)\}", str(value))
    return int(match.group(1)) if match else value


def test_podmonitor_scrapes_both_collectors_own_metrics():
    monitor = next(d for d in _monitors() if d["kind"] == "PodMonitor")
    selected = [d for d in _resources() if d["kind"] in ("DaemonSet", "Deployment") and _selects(monitor["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
    assert sorted(d["metadata"]["name"] for d in selected) == ["otel-agent", "otel-gateway"]
    for workload in selected:
        container = workload["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        key = "agent.yaml" if workload["kind"] == "DaemonSet" else "gateway.yaml"
        telemetry = yaml.safe_load((COLLECTOR / "otelcol" / key).read_text())["service"]["telemetry"]["metrics"]["readers"]
        # A port may be ${env:VAR:-default} (tests/test_collector_e2e.py sets its own): the default is what k8s gets.
        served = {_env_default(r["pull"]["exporter"]["prometheus"]["port"]) for r in telemetry if "pull" in r}
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["port"] in ports, (workload["metadata"]["name"], endpoint["port"])
            assert ports[endpoint["port"]] in served, f"{key} serves its metrics on {served}, not {ports[endpoint['port']]}"
