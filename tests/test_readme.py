"""The documentation tells the truth (docs that lie are bugs): the configuration table in
docs/configuration.md is exactly the env-var catalogue, and the generators rewrite the docs
unchanged."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from agentwatch import semconv
from agentwatch.distro import environment_variables
from agentwatch.distro.environment_variables import VARIABLES, markdown_table
from agentwatch.distro.guard import STRICT_ENV

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DOC = ROOT / "docs" / "configuration.md"


def _table() -> str:
    text = CONFIG_DOC.read_text()
    match = re.search(r"<!-- config-table:start[^>]*-->\n(.*?)<!-- config-table:end -->", text, re.S)
    assert match, "config table markers missing from docs/configuration.md"
    return match.group(1).strip()


def test_docs_table_matches_catalogue():
    assert _table() == markdown_table(), "regenerate: python -m agentwatch._docs"


def test_every_variable_read_in_code_is_catalogued():
    names = {v.name for v in VARIABLES}
    source = "\n".join(p.read_text() for p in (ROOT / "agentwatch").rglob("*.py"))
    # STRICT_ENV (AGENTWATCH_STRICT) is the test suite's switch (tests/conftest.py), not a user setting.
    used = set(re.findall(r"\b(AGENTWATCH_[A-Z_]+)\b", source)) - {"AGENTWATCH_EXPORT_MODE", STRICT_ENV}
    assert used <= names, used - names


@pytest.mark.parametrize(
    "write, doc",
    [(environment_variables._write_docs, "configuration.md"), (semconv._write_docs, "telemetry.md")],
    ids=["configuration", "telemetry"],
)
def test_generators_leave_the_docs_unchanged(write, doc, tmp_path):
    """``python -m agentwatch._docs`` on up-to-date docs is a no-op: the writers touch only their blocks."""
    original = ROOT / "docs" / doc
    copy = tmp_path / doc
    shutil.copy(original, copy)
    write(copy)
    assert copy.read_text() == original.read_text()
