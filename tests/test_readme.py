"""The README's configuration table is exactly the env-var catalogue (docs that lie are bugs)."""

from __future__ import annotations

import re
from pathlib import Path

from agentwatch.distro.environment_variables import VARIABLES, markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def _table() -> str:
    text = README.read_text()
    match = re.search(r"<!-- config-table:start[^>]*-->\n(.*?)<!-- config-table:end -->", text, re.S)
    assert match, "config table markers missing from README.md"
    return match.group(1).strip()


def test_readme_table_matches_catalogue():
    assert _table() == markdown_table(), "regenerate: python -c 'from agentwatch.distro.environment_variables import _write_readme; _write_readme()'"


def test_every_variable_read_in_code_is_catalogued():
    names = {v.name for v in VARIABLES}
    source = "\n".join(p.read_text() for p in (README.parent / "agentwatch").rglob("*.py"))
    # AGENTWATCH_STRICT is the test suite's switch (agentwatch.distro.guard), not a user setting.
    used = set(re.findall(r"\b(AGENTWATCH_[A-Z_]+)\b", source)) - {"AGENTWATCH_EXPORT_MODE", "AGENTWATCH_STRICT"}
    assert used <= names, used - names
