"""The shape of the agentwatch package: no import circles, no module over ~800 lines.

Both read the source with ``ast`` (nothing is imported), so they hold for every module,
including the ones a test run never loads.

Import graph: one node per module of ``agentwatch/``, one edge per import of another
agentwatch module, wherever it stands (at the top, or inside a function: a circle closed by a
function-level import is still a circle, only deferred), except under ``if TYPE_CHECKING:``.
``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "agentwatch"

MAX_LINES = 800
#: Modules allowed over MAX_LINES for now, with the reason. Keep it empty where possible: a module
#: back under the limit must leave the list (test_the_size_allow_list_is_current).
OVER_MAX_LINES: dict[str, str] = {}


def modules(package: Path = PACKAGE) -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (path, is a package's __init__)}`` for every module under ``package``."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
        or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree``, at any depth, outside ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif _type_checking(node):
            stack.extend(getattr(node, "orelse", []))  # the else branch runs
        else:
            stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: the agentwatch modules it imports}``."""
    known = modules(package)
    root = package.name
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in known.items():
        here = name if is_package else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:  # relative: from the package ``level - 1`` above this one
                    base = here.split(".")[: len(here.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target for alias in node.names]
            for target in targets:
                while target and target not in known:  # ``import a.b.c`` of a non-module: its package
                    target = target.rpartition(".")[0]
                if target and target.split(".")[0] == root and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One circle through ``component``, for the failure message: ``a -> b -> a``."""
    members = set(component)
    start = component[0]
    trail, node, seen = [start], start, {start}
    while True:
        node = next(n for n in sorted(graph[node]) if n in members and (n == start or n not in seen))
        trail.append(node)
        if node == start:
            return " -> ".join(trail)
        seen.add(node)


def test_no_import_circles():
    graph = import_graph()
    assert "agentwatch.distro.settings" in graph and graph["agentwatch.distro.settings"]  # the walk sees imports
    found = cycles(graph)
    assert not found, "import circles:\n" + "\n".join(_path(graph, component) for component in found)


def test_the_circle_finder_sees_deferred_and_relative_imports(tmp_path: Path):
    """The checker on a made-up package: a circle closed inside a function, one through
    ``from . import x``, and an import under ``if TYPE_CHECKING:`` that is no circle."""
    package = tmp_path / "agentwatch"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from agentwatch import b\n",
        "b.py": "import agentwatch.a\n",
        "sub/__init__.py": "from . import c\n",
        "sub/c.py": "from agentwatch.sub import d\n",
        "sub/d.py": "from .. import sub\n",
        "e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from agentwatch import f\n",
        "f.py": "from agentwatch import e\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph = import_graph(package)
    assert graph["agentwatch.sub"] == {"agentwatch.sub.c"} and graph["agentwatch.e"] == set()
    assert cycles(graph) == [["agentwatch.a", "agentwatch.b"], ["agentwatch.sub", "agentwatch.sub.c", "agentwatch.sub.d"]]


def _sizes() -> dict[str, int]:
    return {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path, _ in modules().values()
    }


def test_no_module_over_the_size_limit():
    over = {name: lines for name, lines in _sizes().items() if lines > MAX_LINES and name not in OVER_MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them, or allow-list with a reason): {over}"


def test_the_size_allow_list_is_current():
    sizes = _sizes()
    for name in OVER_MAX_LINES:
        assert name in sizes, f"{name} is gone: remove it from OVER_MAX_LINES"
        assert sizes[name] > MAX_LINES, f"{name} has {sizes[name]} lines now: remove it from OVER_MAX_LINES"
