"""The agent instrumentation from code: decorators and context managers.

Decorators trace a function exactly as the ``AGENTWATCH_*_TARGETS`` variables
do (sync, async, generators, methods)::

    import agentwatch

    @agentwatch.intent_classifier
    def classify(message: str) -> tuple[str, float]: ...

    @agentwatch.retriever(data_source="kb")
    async def search(query: str, top_k: int = 3) -> list[Doc]: ...

    @agentwatch.planner(agent_name="support")
    async def plan(message, docs): ...

    @agentwatch.critic
    def review(draft) -> bool: ...

Context managers record results by hand, for code that is not one function::

    with agentwatch.intent_classification("rules") as step:
        step.record(("billing", 0.93))          # any shape the decorator reads
    with agentwatch.retrieval("kb", query=text, top_k=3) as step:
        step.record(rows)
    with agentwatch.planning("support"):
        with agentwatch.critique("reviewer") as step:
            step.record({"accepted": False, "score": 0.4})

Both are no-ops (the function is called directly, no span, no metric) when
telemetry is off: ``OTEL_SDK_DISABLED=true``, the instrumentor's entry point
listed in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``, or no SDK set up at all.
``record`` returns its argument, so ``return step.record(result)`` reads well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import wrapt

from agentwatch.instrumentors._agents import calls
from agentwatch.instrumentors._agents.extract import MISSING
from agentwatch.instrumentors._agents.targets import WRAPPER_TAG

__all__ = [
    "intent_classifier", "retriever", "planner", "critic",
    "intent_classification", "retrieval", "planning", "critique",
]


# The decorated function keeps its exact type (parameters, return, async-ness) for type checkers.
_F = TypeVar("_F", bound=Callable[..., Any])


def _roles():
    from agentwatch.instrumentors import intent, planner, rag

    return {"intent": intent.ROLE, "rag": rag.ROLE, "planner": planner.PLANNER, "critic": planner.CRITIC}


def _default_name(function: Any) -> str:
    module = (getattr(function, "__module__", None) or "").rsplit(".", 1)[-1]
    qualname = getattr(function, "__qualname__", None) or getattr(function, "__name__", "function")
    return f"{module}.{qualname}" if module else qualname


def _decorator(role_key: str, function: Any, name: str | None, extractor: Callable[[Any], Any] | None):
    def decorate(target: Any) -> Any:
        role = _roles()[role_key]
        wrapper = calls.make_wrapper(
            role, name or _default_name(target), calls.function_kind(target), extractor, enabled=role.enabled
        )
        wrapped = wrapt.FunctionWrapper(target, wrapper)
        setattr(wrapped, WRAPPER_TAG, role.role)  # env-var targets skip what is already decorated
        return wrapped

    return decorate(function) if function is not None else decorate


@overload
def intent_classifier(function: _F, /) -> _F: ...
@overload
def intent_classifier(*, name: str | None = None, extractor: Callable[[Any], Any] | None = None) -> Callable[[_F], _F]: ...
def intent_classifier(function: Any = None, *, name: str | None = None, extractor: Callable[[Any], Any] | None = None):
    """Trace an intent classifier (``@intent_classifier`` or ``@intent_classifier(name=..., extractor=...)``)."""
    return _decorator("intent", function, name, extractor)


@overload
def retriever(function: _F, /) -> _F: ...
@overload
def retriever(*, data_source: str | None = None, extractor: Callable[[Any], Any] | None = None) -> Callable[[_F], _F]: ...
def retriever(
    function: Any = None, *, data_source: str | None = None, extractor: Callable[[Any], Any] | None = None
):
    """Trace a retrieval function; ``data_source`` is ``gen_ai.data_source.id`` (default ``module.function``)."""
    return _decorator("rag", function, data_source, extractor)


@overload
def planner(function: _F, /) -> _F: ...
@overload
def planner(*, agent_name: str | None = None) -> Callable[[_F], _F]: ...
def planner(function: Any = None, *, agent_name: str | None = None):
    """Trace a planner; critiques inside it are its iterations."""
    return _decorator("planner", function, agent_name, None)


@overload
def critic(function: _F, /) -> _F: ...
@overload
def critic(*, name: str | None = None, extractor: Callable[[Any], Any] | None = None) -> Callable[[_F], _F]: ...
def critic(function: Any = None, *, name: str | None = None, extractor: Callable[[Any], Any] | None = None):
    """Trace a critic; its return value is read as a verdict."""
    return _decorator("critic", function, name, extractor)


class Step:
    """A context manager tracing one step by hand (sync ``with`` and ``async with``)."""

    def __init__(self, role_key: str, name: str, kwargs: dict[str, Any] | None = None, extractor: Any = None):
        self._role = _roles()[role_key]
        self._name = name
        self._kwargs = kwargs or {}
        self._extractor = extractor
        self._result: Any = MISSING
        self._call: calls.Call | None = None
        self._token: Any = None

    def record(self, result: Any) -> Any:
        """Record the step's result (read like a decorated function's return value); returns it."""
        self._result = result
        return result

    def __enter__(self) -> Step:
        if self._role.enabled():
            self._call = calls.begin(self._role, self._name, (), self._kwargs, self._extractor)
            self._token = calls.attach(self._call)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        calls.detach(self._token)
        self._token = None
        if exc is not None:
            calls.end(self._call, error=exc)
        else:
            calls.end(self._call, self._result)
        self._call = None
        return False  # never swallow the app's exception

    async def __aenter__(self) -> Step:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)


def intent_classification(name: str, *, extractor: Any = None) -> Step:
    return Step("intent", name, extractor=extractor)


def retrieval(data_source: str, *, query: str | None = None, top_k: int | None = None, extractor: Any = None) -> Step:
    kwargs: dict[str, Any] = {}
    if query is not None:
        kwargs["query"] = query
    if top_k is not None:
        kwargs["top_k"] = top_k
    return Step("rag", data_source, kwargs, extractor)


def planning(agent_name: str) -> Step:
    return Step("planner", agent_name)


def critique(name: str, *, extractor: Any = None) -> Step:
    return Step("critic", name, extractor=extractor)
