"""Regenerate the generated tables in docs/: ``python -m agentwatch._docs`` (from a clone).

The environment-variable table of docs/configuration.md comes from
:mod:`agentwatch.distro.environment_variables`; the span and metric catalogues of
docs/telemetry.md come from :mod:`agentwatch.semconv`. Each file keeps its tables between
``<!-- name:start ... -->`` / ``<!-- name:end -->`` markers; everything else in it is prose
and left as it is. The tests (tests/test_readme.py and the catalogue tests) fail when a
table and its source disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

from agentwatch import catalogue_md
from agentwatch.distro import environment_variables

DOCS = Path(__file__).resolve().parents[1] / "docs"
CONFIGURATION = DOCS / "configuration.md"
TELEMETRY = DOCS / "telemetry.md"


def replace_block(text: str, marker: str, body: str) -> str:
    """``text`` with what lies between ``<!-- {marker}:start ... -->`` and ``<!-- {marker}:end -->`` replaced by ``body``."""
    return re.sub(
        rf"(<!-- {re.escape(marker)}:start[^>]*-->\n).*?(<!-- {re.escape(marker)}:end -->)",
        lambda m: m.group(1) + body + "\n" + m.group(2),
        text,
        flags=re.S,
    )


def _rewrite(path: str | Path, blocks: dict[str, str]) -> None:
    text = Path(path).read_text(encoding="utf-8")
    for marker, body in blocks.items():
        text = replace_block(text, marker, body)
    Path(path).write_text(text, encoding="utf-8")


def write_configuration(path: str | Path = CONFIGURATION) -> None:
    """The configuration table, from the env-var catalogue."""
    _rewrite(path, {"config-table": environment_variables.markdown_table()})


def write_telemetry(path: str | Path = TELEMETRY) -> None:
    """The span and metric catalogues, from semconv."""
    _rewrite(path, {
        "agent-catalogue": catalogue_md.markdown(),
        "genai-catalogue": catalogue_md.genai_markdown(),
        "vectordb-catalogue": catalogue_md.vectordb_markdown(),
        "web-catalogue": catalogue_md.web_markdown(),
        "caches-queues-catalogue": catalogue_md.cache_queue_markdown(),
        "resilience-catalogue": catalogue_md.resilience_markdown(),
        "mcp-catalogue": catalogue_md.mcp_markdown(),
    })


def main() -> None:
    """Rewrite every generated table in place."""
    write_configuration()
    write_telemetry()
    print(f"regenerated {CONFIGURATION} and {TELEMETRY}")


if __name__ == "__main__":
    main()
