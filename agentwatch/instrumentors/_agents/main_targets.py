"""Targets in the script itself: ``__main__:classify`` (or ``app:classify`` for ``python app.py``).

Under ``opentelemetry-instrument python app.py`` the instrumentors run from ``sitecustomize``, before
the script's first line: ``__main__`` exists but is empty, and its functions are defined later while
the script runs, so there is no import to hook (the script is never imported) and looking the name up
at start finds nothing.

The choice, after weighing the alternatives:

* ``sys.settrace`` / ``sys.setprofile`` see every definition but slow every Python call for as long as
  they stay on, and a target that is never defined would keep them on for the life of the server;
  audit hooks cannot be removed. Too costly for instrumentation that must never slow the app.
* ``__main__.__dict__`` is a plain dict that cannot be replaced, so stores cannot be intercepted.
* Chosen: a finder at the head of ``sys.meta_path`` that never finds anything but, on each import of a
  module not yet loaded, looks the pending names up in ``__main__`` and wraps those now defined. A
  script defines its functions and then starts something (``uvicorn.run(app)``, ``asyncio.run(main())``,
  an SDK client) that imports modules before any request is served, so each function is wrapped after
  its ``def`` and before its first call, and ``def``-time globals lookups (``classify(...)`` inside a
  route) see the wrapper. The finder is removed as soon as nothing is pending. Cost: a few dict
  lookups per *new* import while something is pending, nothing afterwards (measured in the report of
  the change that added this module). The same check also runs when the first traced agent call
  starts, as a last chance for a script that imports nothing after its definitions.

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


def _defined(main: Any, path: str) -> bool:
    obj = main
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return False
    return True


WATCH = MainWatch()
