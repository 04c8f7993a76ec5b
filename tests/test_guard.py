"""The one guard primitive: warn once and step aside in production, re-raise under tests."""

from __future__ import annotations

import pytest

from agentwatch.distro import _diagnostics
from agentwatch.distro.guard import STRICT_ENV, guard, guarded, run, strict


def _boom(*_args: object, **_kwargs: object) -> int:
    raise ValueError("boom")


def test_strict_is_on_under_the_suite() -> None:
    assert strict()


def test_strict_reraises_in_all_three_forms() -> None:
    with pytest.raises(ValueError):
        run("step", _boom)
    with pytest.raises(ValueError):
        guarded("step")(_boom)()
    with pytest.raises(ValueError), guard("step"):
        _boom()
    assert _diagnostics.messages() == []


def test_lenient_returns_default_and_says_once(lenient: None) -> None:
    assert run("resource", _boom, 1, default=7) == 7
    assert run("resource", _boom, 2, default=8) == 8
    assert _diagnostics.messages() == [
        "resource failed (ValueError('boom')); continuing without it. The app is not affected (said once)"
    ]


def test_lenient_decorator_keeps_signature_and_outcome(lenient: None) -> None:
    @guarded("ids", default="none", outcome="the request passes untouched")
    def add(a: int, b: int = 1) -> int:
        """Doc."""
        if a < 0:
            raise KeyError(a)
        return a + b

    assert add(1, b=2) == 3
    assert add(-1) == "none"
    assert add.__name__ == "add" and add.__doc__ == "Doc."
    assert _diagnostics.messages() == [
        "ids failed (KeyError(-1)); the request passes untouched. The app is not affected (said once)"
    ]


def test_lenient_context_manager_records_error(lenient: None) -> None:
    with guard("span end") as step:
        _boom()
    assert isinstance(step.error, ValueError)
    with guard("span end") as clean:
        pass
    assert clean.error is None
    assert len(_diagnostics.messages()) == 1


def test_base_exceptions_always_pass(lenient: None) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run("step", interrupt)
    with pytest.raises(SystemExit), guard("step"):
        raise SystemExit(3)


def test_strict_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [("1", True), ("true", True), (" ON ", True), ("0", False), ("", False), ("no", False)]:
        monkeypatch.setenv(STRICT_ENV, value)
        assert strict() is expected


def test_type_only_keeps_the_error_text_out(lenient: None) -> None:
    """A scrubbing step's error text may hold the very value it could not scrub: only its type is said."""
    with guard("scrubbing spans", "dropped", type_only=True):
        raise ValueError("card 4111 1111 1111 1111")
    assert _diagnostics.messages() == ["scrubbing spans failed (ValueError); dropped. The app is not affected (said once)"]
