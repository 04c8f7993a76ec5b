"""The wrappers of the public model methods: one call span per call, the app's result untouched.

Each wrapper first asks :mod:`.handoff` whether the official instrumentation records this method (then it
records nothing), starts the operation's :class:`~.call.Call`, makes its span current around the SDK call,
and ends it -- or, for streams, hands back the shared stream proxy of :mod:`.streams`, which ends it. A
failure to start telemetry lets the call run as if uninstrumented.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentwatch.distro import guard
from agentwatch.instrumentors.gemini import handoff
from agentwatch.instrumentors.gemini.call import Call, attach, detach
from agentwatch.instrumentors.gemini.streams import AsyncStream, SyncStream
from agentwatch.instrumentors.gemini.telemetry import SKIPPED, WHERE, Telemetry


def _steps_aside(tel: Telemetry, owner: Any, name: str) -> bool:
    return bool(guard.run(f"{WHERE}: step-aside check", handoff.step_aside, tel, owner, name, default=True, outcome=SKIPPED))


def _start(tel: Telemetry, call_class: type[Call], instance: Any, kwargs: dict[str, Any], stream: bool) -> Call | None:
    return guard.run(f"{WHERE}: span start", call_class, tel, instance, kwargs, stream, outcome=SKIPPED)


def wrapper(
    tel: Telemetry, call_class: type[Call], owner: Any, name: str, stream: bool, is_async: bool
) -> Callable[..., Any]:
    """The wrapt wrapper of ``owner.name``, a public method of ``call_class``'s operation."""

    def sync_wrapper(wrapped, instance, args, kwargs):
        if _steps_aside(tel, owner, name):
            return wrapped(*args, **kwargs)
        call = _start(tel, call_class, instance, kwargs, stream)
        if call is None:
            return wrapped(*args, **kwargs)
        tokens = attach(call)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            call.finish(error=error)
            raise
        finally:
            detach(tokens)
        if stream:
            return SyncStream(result, call)  # type: ignore[arg-type]
        call.finish(result)
        return result

    async def async_wrapper(wrapped, instance, args, kwargs):
        if _steps_aside(tel, owner, name):
            return await wrapped(*args, **kwargs)
        call = _start(tel, call_class, instance, kwargs, stream)
        if call is None:
            return await wrapped(*args, **kwargs)
        tokens = attach(call)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            call.finish(error=error)
            raise
        finally:
            detach(tokens)
        if stream:
            return AsyncStream(result, call)  # type: ignore[arg-type]
        call.finish(result)
        return result

    return async_wrapper if is_async else sync_wrapper
