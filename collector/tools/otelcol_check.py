"""Offline checks of the bundled OpenTelemetry Collector configs (no collector binary).

    python collector/tools/otelcol_check.py collector/otelcol/gateway.yaml ...

exits 1 and prints one line per problem. What is checked (tests/test_collector_config.py
runs the same functions):

* env substitutions: every ``${...}`` is ``${env:NAME:-default}`` (a default is
  required, it may be empty); ``$$`` is a literal ``$``; no naked ``$NAME``;
* component types exist in the pinned otelcol-contrib release
  (``collector/vendor/otelcol/components.json``); a deprecated alias is an error here;
* every key of every component validates against the vendored upstream
  ``config.schema.yaml`` files (core components) or the hand-written closed key sets of
  ``contrib-keys.yaml`` (contrib components, the ``service`` section); unknown key = error;
  scalar types are checked against the core schemas after substituting the defaults;
* the service graph: pipelines reference defined components of the right kind, have
  receivers and exporters, ``memory_limiter`` first and ``batch`` last, connectors are
  used as exporter and receiver, extensions are defined and enabled, persistent queues
  point at enabled storage extensions, and nothing is defined but unused.

Regexes are checked with Go's regexp by ``tests/test_collector_redaction.py``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

COLLECTOR = Path(__file__).resolve().parents[1]
VENDOR = COLLECTOR / "vendor" / "otelcol"
SCHEMAS = VENDOR / "core-schemas"
PINNED_VERSION = "0.161.0"
KINDS = {"receivers": "receiver", "processors": "processor", "exporters": "exporter", "connectors": "connector", "extensions": "extension"}

# Core components with a vendored config.schema.yaml: (kind, type) -> schema directory.
CORE_SCHEMAS = {
    ("receiver", "otlp"): "receiver/otlpreceiver",
    ("processor", "batch"): "processor/batchprocessor",
    ("processor", "memory_limiter"): "processor/memorylimiterprocessor",
    ("exporter", "otlp_grpc"): "exporter/otlpexporter",
    ("exporter", "otlp_http"): "exporter/otlphttpexporter",
    ("exporter", "debug"): "exporter/debugexporter",
    ("extension", "zpages"): "extension/zpagesextension",
    ("extension", "memory_limiter"): "extension/memorylimiterextension",
}
STORAGE_EXTENSIONS = {"file_storage", "db_storage", "redis_storage"}

ENV_RE = re.compile(r"\$\{env:(?P<name>[A-Za-z_][A-Za-z0-9_]*):-(?P<default>[^}]*)\}")


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    env: dict[str, set[str]] = field(default_factory=dict)  # NAME -> defaults used


# --- env substitution -------------------------------------------------------------------
def scan_substitutions(text: str, report: Report) -> str:
    """Check every ``$`` of the raw text; return the text with defaults substituted and ``$$`` collapsed."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("${", i):
            end = text.find("}", i)
            token = text[i : end + 1] if end >= 0 else text[i:]
            match = ENV_RE.fullmatch(token)
            line = text.count("\n", 0, i) + 1
            if not match:
                report.errors.append(
                    f"line {line}: bad substitution {token!r}: write ${{env:NAME:-default}} (a default is required; $$ for a literal $)"
                )
                out.append(token)
            else:
                report.env.setdefault(match["name"], set()).add(match["default"])
                out.append(match["default"])
            i += len(token)
            continue
        if re.match(r"\$[A-Za-z_]", text[i:]):
            line = text.count("\n", 0, i) + 1
            report.errors.append(f"line {line}: naked ${text[i + 1 : i + 12]}... is not expanded by the collector: use ${{env:NAME:-default}}")
        out.append(char)
        i += 1
    return "".join(out)


# --- component catalogue ----------------------------------------------------------------
def components() -> dict[str, Any]:
    return json.loads((VENDOR / "components.json").read_text())


def check_types(config: dict[str, Any], report: Report) -> None:
    catalogue = components()
    for section, kind in KINDS.items():
        for cid in config.get(section) or {}:
            ctype = cid.split("/", 1)[0]
            if ctype in catalogue["canonical"][kind]:
                continue
            if ctype in catalogue["deprecated_or_older"][kind]:
                report.errors.append(f"{kind} {cid!r}: {ctype!r} is a deprecated alias or removed type in otelcol-contrib {PINNED_VERSION}; use the canonical name")
            else:
                report.errors.append(f"{kind} {cid!r}: unknown {kind} type {ctype!r} in otelcol-contrib {PINNED_VERSION}")


# --- schemas ----------------------------------------------------------------------------
_schema_cache: dict[Path, dict] = {}


def _load_schema(directory: str) -> dict:
    path = SCHEMAS / directory.strip("/") / "config.schema.yaml"
    if path not in _schema_cache:
        _schema_cache[path] = yaml.safe_load(path.read_text())
    return _schema_cache[path]


def resolve_ref(ref: str, current: str) -> tuple[dict, str]:
    """A core-schemas ``$ref`` -> (schema node, directory it lives in)."""
    ref = ref.removeprefix("go.opentelemetry.io/collector")
    if not ref.startswith(("/", "./")):
        return _load_schema(current)["$defs"][ref], current
    path, _, name = ref.rpartition(".")
    if ref.startswith("./"):
        directory = (Path(current) / path[2:]).as_posix() if path != "." else current
    else:
        directory = path.strip("/")
    schema = _load_schema(directory)
    return (schema["$defs"][name] if name else schema), directory


def _properties(node: dict, where: str) -> tuple[dict[str, tuple[dict, str]], bool]:
    """Properties of a schema node incl. its allOf refs: {key: (node, dir)}, and whether it is an object."""
    while "$ref" in node:
        node, where = resolve_ref(node["$ref"], where)
    props = {key: (value, where) for key, value in (node.get("properties") or {}).items()}
    is_object = node.get("type") == "object" or bool(props)
    for part in node.get("allOf") or []:
        sub, sub_where = (resolve_ref(part["$ref"], where) if "$ref" in part else (part, where))
        more, _ = _properties(sub, sub_where)
        props.update(more)
        is_object = True
    return props, is_object


_SCALARS = {"integer": int, "boolean": bool, "number": (int, float), "string": str}


def validate_schema(value: Any, node: dict, where: str, path: str, report: Report) -> None:
    ref_name = ""
    while "$ref" in node:
        ref_name = node["$ref"]
        node, where = resolve_ref(node["$ref"], where)
    if value is None:
        return
    if ref_name.endswith("configtelemetry.level"):  # an int32 that unmarshals from its name
        if value not in ("none", "basic", "normal", "detailed"):
            report.errors.append(f"{path}: {value!r} is not a telemetry level (none, basic, normal, detailed)")
        return
    if ref_name.endswith("configopaque.map_list") and isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(item, (str, int, float)):
                report.errors.append(f"{path}.{key}: header value must be a string")
        return
    props, is_object = _properties(node, where)
    if is_object and (props or not node.get("additionalProperties")):
        if not isinstance(value, dict):
            report.errors.append(f"{path}: expected a mapping, got {type(value).__name__}")
            return
        for key, item in value.items():
            if key not in props:
                report.errors.append(f"{path}.{key}: unknown key (known: {sorted(props)})")
            else:
                sub, sub_where = props[key]
                validate_schema(item, sub, sub_where, f"{path}.{key}", report)
        return
    if is_object and isinstance(node.get("additionalProperties"), dict):
        if not isinstance(value, dict):
            report.errors.append(f"{path}: expected a mapping")
            return
        for key, item in value.items():
            validate_schema(item, node["additionalProperties"], where, f"{path}.{key}", report)
        return
    kind = node.get("type")
    if kind == "array":
        if not isinstance(value, list):
            report.errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for index, item in enumerate(value):
            validate_schema(item, node.get("items") or {}, where, f"{path}[{index}]", report)
        return
    expected = _SCALARS.get(kind or "")
    if expected is None:
        return
    if node.get("x-customType") == "time.Duration":
        if not (isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+|0", value))):
            report.errors.append(f"{path}: {value!r} is not a Go duration")
        return
    if kind in ("integer", "number") and isinstance(value, bool) or not isinstance(value, expected):
        report.errors.append(f"{path}: expected {kind}, got {value!r}")


def validate_keys(value: Any, spec: Any, path: str, report: Report) -> None:
    """Validate against a contrib-keys.yaml node."""
    if spec is None or value is None:
        return
    if "$core" in spec:
        node, where = resolve_ref(spec["$core"], "")
        validate_schema(value, node, where, path, report)
        return
    if "$list" in spec:
        if not isinstance(value, list):
            report.errors.append(f"{path}: expected a list")
            return
        for index, item in enumerate(value):
            validate_keys(item, spec["$list"], f"{path}[{index}]", report)
        return
    if not isinstance(value, dict):
        report.errors.append(f"{path}: expected a mapping, got {type(value).__name__}")
        return
    if "$map" in spec:
        for key, item in value.items():
            validate_keys(item, spec["$map"], f"{path}.{key}", report)
        return
    core_props: dict[str, tuple[dict, str]] = {}
    for ref in spec.get("$allOf", []):
        node, where = resolve_ref(ref, "")
        core_props.update(_properties(node, where)[0])
    for key, item in value.items():
        if key in spec and not key.startswith("$"):
            validate_keys(item, spec[key], f"{path}.{key}", report)
        elif key in core_props:
            sub, where = core_props[key]
            validate_schema(item, sub, where, f"{path}.{key}", report)
        else:
            known = sorted(k for k in spec if not k.startswith("$")) + sorted(core_props)
            report.errors.append(f"{path}.{key}: unknown key (known: {known})")


def contrib_keys() -> dict:
    return yaml.safe_load((VENDOR / "contrib-keys.yaml").read_text())


def check_keys(config: dict[str, Any], report: Report) -> None:
    whitelist = contrib_keys()
    for section, kind in KINDS.items():
        for cid, body in (config.get(section) or {}).items():
            ctype = cid.split("/", 1)[0]
            if (kind, ctype) in CORE_SCHEMAS:
                validate_schema(body, _load_schema(CORE_SCHEMAS[(kind, ctype)]), CORE_SCHEMAS[(kind, ctype)], f"{section}.{cid}", report)
            elif ctype in (whitelist.get(kind) or {}):
                validate_keys(body, whitelist[kind][ctype], f"{section}.{cid}", report)
            else:
                report.errors.append(f"{section}.{cid}: no schema or key list for {kind} type {ctype!r}: add one to contrib-keys.yaml")
    validate_keys(config.get("service"), whitelist["service"], "service", report)
    for top in config:
        if top not in KINDS and top != "service":
            report.errors.append(f"unknown top-level section {top!r}")


# --- service graph ----------------------------------------------------------------------
def check_graph(config: dict[str, Any], report: Report) -> None:
    defined = {section: set(config.get(section) or {}) for section in KINDS}
    service = config.get("service") or {}
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        report.errors.append("service.pipelines: no pipeline")
    used: dict[str, set[str]] = {section: set() for section in KINDS}
    connector_as_exporter: set[str] = set()
    connector_as_receiver: set[str] = set()
    for name, pipe in pipelines.items():
        signal = name.split("/", 1)[0]
        if signal not in ("traces", "metrics", "logs", "profiles"):
            report.errors.append(f"pipeline {name!r}: unknown signal {signal!r}")
        pipe = pipe or {}
        for role in ("receivers", "exporters"):
            if not pipe.get(role):
                report.errors.append(f"pipeline {name!r}: no {role}")
        for role in ("receivers", "processors", "exporters"):
            ids = pipe.get(role) or []
            if len(ids) != len(set(ids)):
                report.errors.append(f"pipeline {name!r}: {role} listed twice")
            for cid in ids:
                if role != "processors" and cid in defined["connectors"]:
                    used["connectors"].add(cid)
                    (connector_as_receiver if role == "receivers" else connector_as_exporter).add(cid)
                elif cid in defined[role]:
                    used[role].add(cid)
                else:
                    report.errors.append(f"pipeline {name!r}: {role[:-1]} {cid!r} is not defined")
        processors = pipe.get("processors") or []
        if processors:
            if processors[0].split("/")[0] != "memory_limiter":
                report.errors.append(f"pipeline {name!r}: memory_limiter must be the first processor")
            if processors[-1].split("/")[0] != "batch":
                report.errors.append(f"pipeline {name!r}: batch must be the last processor")
            if "tail_sampling" in processors and processors.index("tail_sampling") < max(
                (processors.index(p) for p in processors if p.split("/")[0] in ("redaction", "resource", "resource_detection", "k8s_attributes")), default=-1
            ):
                report.errors.append(f"pipeline {name!r}: tail_sampling must come after the context processors")
        else:
            report.warnings.append(f"pipeline {name!r}: no processors (no memory_limiter)")
    for cid in defined["connectors"]:
        if cid not in connector_as_exporter or cid not in connector_as_receiver:
            report.errors.append(f"connector {cid!r} must be an exporter of one pipeline and a receiver of another")
    enabled = list(service.get("extensions") or [])
    for ext in enabled:
        if ext not in defined["extensions"]:
            report.errors.append(f"service.extensions: {ext!r} is not defined")
        used["extensions"].add(ext)
    for section in KINDS:
        for cid in sorted(defined[section] - used[section]):
            report.errors.append(f"{section[:-1]} {cid!r} is defined but not used")
    for cid, body in (config.get("exporters") or {}).items():
        queue = (body or {}).get("sending_queue") or {}
        storage = queue.get("storage")
        if storage is not None:
            if storage not in enabled:
                report.errors.append(f"exporter {cid!r}: sending_queue.storage {storage!r} is not an enabled extension")
            elif storage.split("/")[0] not in STORAGE_EXTENSIONS:
                report.errors.append(f"exporter {cid!r}: sending_queue.storage {storage!r} is not a storage extension")
        if cid.split("/")[0] in ("otlp_grpc", "otlp_http", "load_balancing") and "retry_on_failure" not in (body or {}):
            report.warnings.append(f"exporter {cid!r}: no retry_on_failure")


def check_file(path: str | Path) -> Report:
    report = Report()
    text = Path(path).read_text()
    resolved = scan_substitutions(text, report)
    try:
        config = yaml.safe_load(resolved)
        yaml.safe_load(text)  # the raw file must parse too (the collector parses before expanding)
    except yaml.YAMLError as error:
        report.errors.append(f"YAML: {error}")
        return report
    if not isinstance(config, dict):
        report.errors.append("not a mapping")
        return report
    check_types(config, report)
    check_keys(config, report)
    check_graph(config, report)
    return report


def load_resolved(path: str | Path) -> dict[str, Any]:
    """The config with every ``${env:NAME:-default}`` replaced by its default and ``$$`` collapsed."""
    return yaml.safe_load(scan_substitutions(Path(path).read_text(), Report()))


def main(argv: list[str]) -> int:
    status = 0
    for path in argv or sorted(str(p) for p in (COLLECTOR / "otelcol").glob("*.yaml")):
        report = check_file(path)
        for error in report.errors:
            print(f"{path}: ERROR {error}")
        for warning in report.warnings:
            print(f"{path}: warning {warning}")
        if report.errors:
            status = 1
        else:
            print(f"{path}: OK ({len(report.env)} env variables, {len(report.warnings)} warnings)")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
