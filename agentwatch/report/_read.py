"""Reading the telemetry files: OTLP/JSON lines, line by line, and the values inside them.

Each file is read after its ``.1`` rotation (oldest first); a line that is not a JSON object is
skipped and counted, never raised. The decoders accept what ProtoJSON and plain protobuf JSON
write (ints as strings, ``NaN``, base64 ids) and turn anything else into ``None``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agentwatch import semconv as sc
from agentwatch.report._text import clean

TRACES_FILE = "traces.jsonl"
METRICS_FILE = "metrics.jsonl"
LOGS_FILE = "logs.jsonl"

_SEVERITIES = ((21, "FATAL"), (17, "ERROR"), (13, "WARN"), (9, "INFO"), (5, "DEBUG"), (1, "TRACE"))
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                return None
            return int(number) if math.isfinite(number) else None
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # also "NaN" / "Infinity" as ProtoJSON writes them
        except ValueError:
            return None
    return None


def time_ns(value: Any) -> int | None:
    number = as_int(value)
    return number if number and number > 0 else None


def any_value(value: Any) -> Any:
    """An OTLP/JSON AnyValue as a Python value."""
    value = as_dict(value)
    if "stringValue" in value:
        return str(value["stringValue"])
    if "intValue" in value:
        number = as_int(value["intValue"])
        return number if number is not None else value["intValue"]
    if "doubleValue" in value:
        number = as_float(value["doubleValue"])
        return number if number is not None else value["doubleValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [any_value(item) for item in dicts(as_dict(value["arrayValue"]).get("values"))]
    if "kvlistValue" in value:
        return decode_attributes(as_dict(value["kvlistValue"]).get("values"))
    if "bytesValue" in value:
        return f"<{len(str(value['bytesValue'])) * 3 // 4} bytes>"
    return None


def decode_attributes(value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in dicts(value):
        key = item.get("key")
        if isinstance(key, str):
            result[key] = any_value(item.get("value"))
    return result


def hex_id(value: Any) -> str:
    """Lowercase hex id; tolerates base64 ids (plain protobuf JSON)."""
    if not isinstance(value, str) or not value:
        return ""
    if _HEX.match(value) and len(value) in (16, 32):
        return value.lower()
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return clean(value, 32)


def enum_name(value: Any, names: dict[int, str], prefix: str) -> str:
    number = as_int(value)
    if number is not None:
        return names.get(number, str(number))
    if isinstance(value, str):
        return value[len(prefix) :] if value.startswith(prefix) else value
    return names.get(0, "")


def severity_label(number: Any, text: Any) -> str:
    if isinstance(text, str) and text.strip():
        return clean(text.strip().upper(), 8)
    value = as_int(number)
    if value is None and isinstance(number, str):
        return clean(number.replace("SEVERITY_NUMBER_", ""), 8)
    for low, name in _SEVERITIES:
        if value is not None and value >= low:
            return name
    return "-"


@dataclass
class FileStats:
    name: str
    found: bool = False
    lines: int = 0
    unreadable: int = 0


def read_requests(
    directory: str, filename: str, stats: FileStats, contains: bytes | None = None
) -> Iterator[dict[str, Any]]:
    """Yield each export request (one JSON object per line), ``.1`` rotation first; with ``contains``,
    only the lines holding those bytes (the others are not parsed, nor counted)."""
    for path in (os.path.join(directory, filename + ".1"), os.path.join(directory, filename)):
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            continue
        except OSError:
            stats.found = True
            stats.unreadable += 1
            continue
        stats.found = True
        with handle:
            try:
                for raw in handle:
                    if not raw.strip() or (contains is not None and contains not in raw):
                        continue
                    stats.lines += 1
                    try:
                        request = json.loads(raw)
                    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                        stats.unreadable += 1
                        continue
                    if not isinstance(request, dict):
                        stats.unreadable += 1
                        continue
                    yield request
            except OSError:
                stats.unreadable += 1


class Window:
    def __init__(self) -> None:
        self.first: int | None = None
        self.last: int | None = None

    def add(self, *stamps: int | None) -> None:
        for ns in stamps:
            if ns:
                self.first = ns if self.first is None else min(self.first, ns)
                self.last = ns if self.last is None else max(self.last, ns)


class Resources:
    """Services and instances seen in any resource."""

    def __init__(self) -> None:
        self.services: dict[tuple[str, str, str], None] = {}
        self.instances: set[str] = set()

    def add(self, attributes: dict[str, Any]) -> str:
        name = str(attributes.get(sc.SERVICE_NAME, "unknown_service"))
        version = str(attributes.get(sc.SERVICE_VERSION, "-"))
        distro = str(attributes.get(sc.TELEMETRY_DISTRO_NAME, "-"))
        self.services.setdefault((name, version, distro), None)
        instance = attributes.get(sc.SERVICE_INSTANCE_ID)
        if instance is not None:
            self.instances.add(str(instance))
        return name
