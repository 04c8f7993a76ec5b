"""The HTTP round trips inside one ``generate_content`` call.

The SDK's private ``Models._generate_content`` (and its stream) sends one request; the public method calls
it once, or several times for automatic function calling and continuation. These wrappers tell the call
that owns them (:data:`~agentwatch.instrumentors.gemini.call.CURRENT`, set around the public call) when
each one starts and ends; any other caller passes straight through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentwatch.distro import guard
from agentwatch.instrumentors.gemini.call import CURRENT
from agentwatch.instrumentors.gemini.extract import Usage
from agentwatch.instrumentors.gemini.telemetry import SKIPPED, WHERE

if TYPE_CHECKING:
    from agentwatch.instrumentors.gemini.generate_content import GenerateContentCall

# The private methods of google.genai.models: ("Class.method", returns a stream).
METHODS = (
    ("Models._generate_content", False),
    ("Models._generate_content_stream", True),
    ("AsyncModels._generate_content", False),
    ("AsyncModels._generate_content_stream", True),
)


@dataclass
class Hop:
    """One round trip: its times, usage and response attributes (and its span when recorded live)."""

    start_ns: int
    end_ns: int = 0
    usage: Usage | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    span: Any = None
    token: Any = None


def _owning_call(instance: Any) -> GenerateContentCall | None:
    call = CURRENT.get()
    return call if call is not None and call.instance is instance and not call.ended else None  # type: ignore[return-value]


def _start(call: GenerateContentCall) -> Hop | None:
    return guard.run(f"{WHERE}: round-trip start", call.hop_start, outcome=SKIPPED)


def _end(call: GenerateContentCall, hop: Hop, response: Any, error: BaseException | None) -> None:
    guard.run(f"{WHERE}: round-trip end", call.hop_end, hop, response, error, outcome=SKIPPED)


def _chunk(call: GenerateContentCall, hop: Hop, chunk: Any) -> None:
    guard.run(f"{WHERE}: round-trip chunk", call.observe_hop_chunk, hop, chunk, outcome=SKIPPED)


def _stream_sync(inner: Iterator[Any], call: GenerateContentCall, hop: Hop) -> Iterator[Any]:
    error = None
    try:
        for chunk in inner:
            _chunk(call, hop, chunk)
            yield chunk
    except BaseException as failure:
        error = failure
        raise
    finally:
        _end(call, hop, None, error)


async def _stream_async(inner: AsyncIterator[Any], call: GenerateContentCall, hop: Hop) -> AsyncIterator[Any]:
    error = None
    try:
        async for chunk in inner:
            _chunk(call, hop, chunk)
            yield chunk
    except BaseException as failure:
        error = failure
        raise
    finally:
        _end(call, hop, None, error)


def wrapper(stream: bool, is_async: bool) -> Callable[..., Any]:
    """The wrapt wrapper of one private round-trip method."""

    def sync_wrapper(wrapped, instance, args, kwargs):
        call = _owning_call(instance)
        if call is None:
            return wrapped(*args, **kwargs)
        hop = _start(call)
        if hop is None:
            return wrapped(*args, **kwargs)
        if stream:
            return _stream_sync(wrapped(*args, **kwargs), call, hop)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            _end(call, hop, None, error)
            raise
        _end(call, hop, result, None)
        return result

    async def async_wrapper(wrapped, instance, args, kwargs):
        call = _owning_call(instance)
        if call is None:
            return await wrapped(*args, **kwargs)
        hop = _start(call)
        if hop is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            _end(call, hop, None, error)
            raise
        if stream:
            return _stream_async(result, call, hop)
        _end(call, hop, result, None)
        return result

    return async_wrapper if is_async else sync_wrapper
