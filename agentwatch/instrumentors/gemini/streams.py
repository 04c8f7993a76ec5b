"""The stream the app gets back from ``generate_content_stream``: the SDK's own, observed.

Sync and async proxies that hand every chunk through unchanged, let the call observe it, and end the
call span exactly once -- when the stream is exhausted (``completed``), fails (``error``), is closed or
left early (``closed_early``), or is garbage collected unfinished (``abandoned``). Anything else is
delegated to the SDK's iterator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from agentwatch.distro import guard
from agentwatch.instrumentors.gemini.call import attach, detach
from agentwatch.instrumentors.gemini.telemetry import SKIPPED, WHERE


class StreamingCall(Protocol):
    """What a stream proxy needs of its call (:class:`~.generate_content.GenerateContentCall`)."""

    ended: bool
    stream_outcome: str

    def attach(self) -> tuple[Any, Any]: ...
    def observe_chunk(self, chunk: Any) -> None: ...
    def finish(self, response: Any = None, error: BaseException | None = None) -> None: ...


def _observe(call: StreamingCall, chunk: Any) -> None:
    guard.run(f"{WHERE}: stream chunk", call.observe_chunk, chunk, outcome=SKIPPED)


def _end(call: StreamingCall, outcome: str) -> None:
    if not call.ended:
        call.stream_outcome = outcome
        call.finish()


class SyncStream:
    """Iterator over the SDK's stream that ends the call span exactly once."""

    def __init__(self, inner: Iterator[Any], call: StreamingCall):
        self._inner = inner
        self._call = call

    def __iter__(self) -> SyncStream:
        return self

    def __next__(self) -> Any:
        call = self._call
        tokens = attach(call)  # type: ignore[arg-type]
        try:
            chunk = next(self._inner)
        except StopIteration:
            call.finish()
            raise
        except BaseException as error:
            call.stream_outcome = "error"
            call.finish(error=error)
            raise
        finally:
            detach(tokens)
        _observe(call, chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            _end(self._call, "closed_early")

    def __enter__(self) -> SyncStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        call = getattr(self, "_call", None)
        if call is not None:
            _end(call, "abandoned")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class AsyncStream:
    """Async iterator over the SDK's stream that ends the call span exactly once."""

    def __init__(self, inner: AsyncIterator[Any], call: StreamingCall):
        self._inner = inner
        self._call = call

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> Any:
        call = self._call
        tokens = attach(call)  # type: ignore[arg-type]
        try:
            chunk = await self._inner.__anext__()
        except StopAsyncIteration:
            call.finish()
            raise
        except BaseException as error:
            call.stream_outcome = "error"
            call.finish(error=error)
            raise
        finally:
            detach(tokens)
        _observe(call, chunk)
        return chunk

    async def aclose(self) -> None:
        try:
            close = getattr(self._inner, "aclose", None)
            if close is not None:
                await close()
        finally:
            _end(self._call, "closed_early")

    def __del__(self) -> None:
        call = getattr(self, "_call", None)
        if call is not None:
            _end(call, "abandoned")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
