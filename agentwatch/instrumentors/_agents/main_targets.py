"""Targets in the script itself: ``__main__:classify`` (or ``app:classify`` for ``python app.py``).

Under ``opentelemetry-instrument python app.py`` the instrumentors run from ``sitecustomize``, before
the script's first line: ``__main__`` exists but is empty, and its functions are defined later while
the script runs, so there is no import to hook (the script is never imported) and looking the name up
at start finds nothing.

The choice, after weighing the alternatives:

* ``__main__.__dict__`` is a plain dict that cannot be replaced, so its stores cannot be intercepted;
  audit hooks cannot be removed; ``sys.setprofile`` or a Python ``sys.settrace`` function left on
  slow every call (about 5x on CPython 3.11) for as long as they stay.
* Chosen, in two parts that each stop as soon as nothing is pending:

  1. The script's own top-level statements. From ``sitecustomize`` a Python trace function waits for
     the script's ``<module>`` frame (it runs only for the few calls left before the script starts);
     (armed by opentelemetry-instrument's post-instrument hook, once every instrumentor is loaded);
     on it, line events of *that frame only* settle the pending targets before each top-level statement,
     and every other frame is answered by ``getattr`` (a C function that returns None for a new frame,
     so no Python code runs for them: about 3x the cost of a bare call, for the script's top level
     only). Tracing stops when everything is found, or once the script passes the last line of the
     last pending ``def``/``class`` found in its code, whichever comes first; it is never started when
     a debugger or coverage already traces, nor for names the script binds without ``def``/``class``.
  2. A finder at the head of ``sys.meta_path`` that never finds anything but settles on each import of
     a new module (``uvicorn.run`` imports its loop and protocol modules before serving), and the first
     traced agent call: these cover names bound by assignment or import.

The limit: a reference to the function taken at module level before that import (a tool registry
``TOOLS = {"f": f}`` at the top of the script) keeps the plain function; references taken later, and
every call by name, see the wrapper. A target still pending at exit is said once then: never defined, or defined but never found in time
(a script that imports nothing new after its definitions and calls no traced function first).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any, Protocol


class Owner(Protocol):
    """A target set with targets in the script: ``settle`` applies what is defined, says whether all are."""

    def settle(self, main: Any, name: str) -> bool: ...

    def unsettled(self, name: str) -> list[Any]: ...


def script_module_names() -> set[str]:
    """The names the script's module answers to: ``__main__`` and the script's stem (``app`` for
    ``python app.py``) or the ``-m`` module name (``python -m shop.app``)."""
    names = {"__main__"}
    argv = list(getattr(sys, "orig_argv", None) or [])
    if "-m" in argv[1:]:
        index = argv.index("-m", 1)
        if index + 1 < len(argv):
            names.add(argv[index + 1])
        return names
    script = sys.argv[0] if sys.argv else ""
    if script and script not in ("-c", "-m", "-") and script.endswith(".py"):
        names.add(os.path.splitext(os.path.basename(script))[0])
    return names


def is_script_module(module: str) -> bool:
    return module in script_module_names()


class _Finder:
    """Finds nothing; each import of a new module settles the pending script targets."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        WATCH.check()

    def __repr__(self) -> str:
        return "<agentwatch script-targets watcher>"


class MainWatch:
    """The pending script targets of the whole process and the finder that settles them."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Owner, str]] = []
        self._lock = threading.RLock()
        self._busy = threading.local()
        self._finder = _Finder()
        self._exit_hooked = False
        self.pending = False  # read without the lock on the hot path
        self.looked_for_frame = False
        # True until opentelemetry-instrument has loaded every instrumentor (its post-instrument hook,
        # :func:`post_instrument`); only read when no script frame is running yet.
        self.instrumenting = True
        self._frame: Any = None
        self._last_line = 0

    def add(self, owner: Owner, name: str) -> None:
        with self._lock:
            if (owner, name) not in self.waiting:
                self.waiting.append((owner, name))
            self.pending = True
            if self._finder not in sys.meta_path:
                sys.meta_path.insert(0, self._finder)
            if not self._exit_hooked:
                self._exit_hooked = True
                atexit.register(self._report_missing)
        self.check()
        if self.pending and not self.looked_for_frame:
            self._arm()

    def discard(self, owner: Owner) -> None:
        with self._lock:
            self.waiting = [(o, n) for o, n in self.waiting if o is not owner]
            self._update()

    def check(self) -> None:
        """Wrap whatever pending target the script has defined by now (re-entry safe, never raises)."""
        if not self.pending or getattr(self._busy, "on", False):
            return
        main = sys.modules.get("__main__")
        if main is None:
            return
        self._busy.on = True
        try:
            with self._lock:
                for owner, name in list(self.waiting):
                    try:
                        done = owner.settle(main, name)
                    except Exception:  # noqa: BLE001 - never break an import; settle warns itself
                        done = True
                    if done:
                        self.waiting.remove((owner, name))
                self._update()
        finally:
            self._busy.on = False

    # ------------------------------------------------------------------ the script's own frame
    def _arm(self) -> None:
        """Settle at each top-level statement of the script until its last pending definition is made."""
        self.looked_for_frame = True
        if sys.gettrace() is not None:
            return  # a debugger or coverage traces: never take its place (imports still settle)
        main = sys.modules.get("__main__")
        frame: Any = sys._getframe(1)
        while frame is not None and not _is_script_frame(frame, main):
            frame = frame.f_back
        if frame is not None:  # instrumented from the script's own code: it is running already
            if self._trace_frame(frame) is not None:
                frame.f_trace = self._line
        elif self.instrumenting:  # from sitecustomize, other instrumentors still to load: wait for the end
            self.looked_for_frame = False
        else:  # sitecustomize is done: the script's frame is the next one to start, or nearly
            sys.settrace(self._find_script)

    def _find_script(self, frame: Any, event: str, arg: Any) -> Any:
        if event != "call" or not _is_script_frame(frame, sys.modules.get("__main__")):
            return None
        return self._trace_frame(frame)

    def _trace_frame(self, frame: Any) -> Any:
        names = {target.path.split(".", 1)[0] for owner, name in self.waiting for target in owner.unsettled(name)}
        last = 0
        for const in frame.f_code.co_consts:
            if getattr(const, "co_name", None) in names and hasattr(const, "co_lines"):
                last = max([last, *(line for _, _, line in const.co_lines() if line)])
        if not last:  # defined by assignment or import, if at all: the next import settles it
            self._stop_tracing()
            return None
        self._frame, self._last_line = frame, last
        frame.f_trace_lines = True
        sys.settrace(getattr)  # C-level, answers None for every new frame: only the script's frame is traced
        return self._line

    def _line(self, frame: Any, event: str, arg: Any) -> Any:
        if event != "line":
            return self._line if event != "return" else self._stop_tracing()
        self.check()
        if not self.pending or frame.f_lineno > self._last_line:
            return self._stop_tracing()
        return self._line

    def _stop_tracing(self) -> None:
        if sys.gettrace() in (getattr, self._find_script):
            sys.settrace(None)
        if self._frame is not None:
            self._frame.f_trace = None
            self._frame = None

    def _update(self) -> None:
        self.pending = bool(self.waiting)
        if not self.pending:
            try:
                sys.meta_path.remove(self._finder)
            except ValueError:
                pass

    def _report_missing(self) -> None:
        from agentwatch.distro._diagnostics import warn_once

        main = sys.modules.get("__main__")
        for owner, name in list(self.waiting):
            for target in owner.unsettled(name):
                defined = main is not None and _defined(main, target.path)
                warn_once(
                    f"target:{target.variable}:{target.spec}",
                    f"{target.variable}: {target.spec!r} was defined by the script but not found in time (no "
                    "new module was imported after its definition before it ran); move the function into a "
                    "module of its own and name that module"
                    if defined else
                    f"{target.variable}: {target.spec!r} was never defined by the script ({name!r} is the "
                    "script being run); not instrumented",
                )


def post_instrument(**kwargs: Any) -> None:
    """``opentelemetry_post_instrument`` entry point: every instrumentor is loaded, the script is next.

    The trace function that waits for the script's frame is armed only now, so the other instrumentors'
    start-up does not run under it.
    """
    WATCH.instrumenting = False
    if WATCH.pending and not WATCH.looked_for_frame:
        WATCH._arm()


def _is_script_frame(frame: Any, main: Any) -> bool:
    return frame.f_code.co_name == "<module>" and frame.f_globals is getattr(main, "__dict__", None)


def _defined(main: Any, path: str) -> bool:
    obj = main
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return False
    return True


WATCH = MainWatch()
