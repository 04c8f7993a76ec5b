"""agentwatch is typed for its users (issue 17, item 6): py.typed ships, and the decorators keep the
decorated functions' signatures, checked with a real type checker (basedpyright, a dev dependency)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from _service import BIN

HERE = Path(__file__).parent / "typing"


def _check(path: Path) -> list[dict]:
    done = subprocess.run([str(BIN / "basedpyright"), "--outputjson", "--level", "error", str(path)],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)
    report = json.loads(done.stdout)
    return [d for d in report["generalDiagnostics"] if d["severity"] == "error"]


def test_decorated_functions_keep_their_signatures():
    assert _check(HERE / "decorated.py") == []


def test_a_wrong_argument_to_a_decorated_function_is_caught():
    errors = _check(HERE / "misuse.py")
    assert len(errors) == 1 and errors[0]["range"]["start"]["line"] == 10, errors
