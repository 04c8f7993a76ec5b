"""The documentation tells the truth (docs that lie are bugs): the configuration table in
docs/configuration.md is exactly the env-var catalogue, the generators rewrite the docs
unchanged, every relative link in README.md, CONTRIBUTING.md and docs/*.md leads somewhere,
and the README keeps the set-up contract (two commands; CI runs the second)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from agentwatch import _docs
from agentwatch.distro.environment_variables import VARIABLES, markdown_table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONFIG_DOC = ROOT / "docs" / "configuration.md"
LINKED_DOCS = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


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
    used = set(re.findall(r"\b(AGENTWATCH_[A-Z_]+)\b", source)) - {"AGENTWATCH_EXPORT_MODE"}
    assert used <= names, used - names


@pytest.mark.parametrize(
    "write, doc",
    [(_docs.write_configuration, "configuration.md"), (_docs.write_telemetry, "telemetry.md")],
    ids=["configuration", "telemetry"],
)
def test_generators_leave_the_docs_unchanged(write, doc, tmp_path):
    """``python -m agentwatch._docs`` on up-to-date docs is a no-op: the writers touch only their blocks."""
    original = ROOT / "docs" / doc
    copy = tmp_path / doc
    shutil.copy(original, copy)
    write(copy)
    assert copy.read_text() == original.read_text()


# --------------------------------------------------------------------------- links
_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """``text`` without code: fenced blocks, indented (4-space) code lines and inline code spans."""
    text = _FENCE.sub("", text)
    text = "\n".join(line for line in text.split("\n") if not line.startswith("    "))
    return _INLINE_CODE.sub("", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"`([^`]*)`", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text())
    anchors: set[str] = set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    seen: dict[str, int] = {}
    for match in re.finditer(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", text, re.M):
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _relative_links(path: Path) -> list[str]:
    return [
        target
        for target in _LINK.findall(_prose(path.read_text()))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:...
    ]


def test_the_link_checker_sees_links_and_anchors():
    """Guard against a checker that passes because it finds nothing."""
    links = _relative_links(README)
    assert "docs/configuration.md" in links and "#what-you-get" in links
    assert "why-distro-and-instrumentors-live-under-agentwatch" in _anchors(ROOT / "CONTRIBUTING.md")
    assert "agentwatchhigherrorratio" in _anchors(ROOT / "collector" / "README.md")


@pytest.mark.parametrize("doc", LINKED_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files_and_headings(doc):
    broken = []
    for target in _relative_links(doc):
        path_part, _, anchor = target.partition("#")
        linked = (doc.parent / path_part).resolve() if path_part else doc
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def test_docs_index_lists_every_page():
    index = (ROOT / "docs" / "README.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not link {page.name}"


# --------------------------------------------------------------------------- the set-up contract
def test_readme_keeps_the_two_setup_commands_and_ci_runs_the_second():
    """On a fresh machine two commands from the README do all the set-up; .ci/run calls ``make test``."""
    text = README.read_text()
    assert re.search(r"^ {4}make demo\b", text, re.M) and re.search(r"^ {4}make test\b", text, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
