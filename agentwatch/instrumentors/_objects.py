"""Object targets: the app's module attributes named in a ``*_TARGETS`` variable, found when their module imports.

The caches and queues instrumentors watch *objects* (an ``lru_cache``-wrapped function, a cachetools
cache, an ``asyncio.Queue``) rather than wrap functions, so they cannot use
:class:`agentwatch.instrumentors._agents.targets.TargetSet` as it is; they share its syntax and its
parser (``module:attribute`` or ``module:Class.attribute``, optionally ``=name``) and its import-order
independence: a target whose module is already imported is found at once, any other one right after its
module finishes loading (a wrapt post-import hook), so ``from module import thing`` elsewhere sees the
same object. A target that does not exist costs one warning naming it.

Nothing here imports the app or any library: what is found is handed to ``found(target, obj)``, which
says whether it was taken; :meth:`ObjectTargets.stop` hands each taken object to ``lost`` (undo).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

import wrapt

from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.guard import strict
from agentwatch.instrumentors._agents.main_targets import WATCH, is_script_module
from agentwatch.instrumentors._agents.targets import Target, _module_findable


class ObjectTargets:
    """The targets of one variable: ``found`` is called with each object once its module is imported."""

    # One post-import hook per module for the whole process (wrapt cannot unregister hooks).
    _hooked: set[str] = set()
    _pending: dict[str, list[ObjectTargets]] = {}
    _lock = threading.RLock()

    def __init__(self, targets: list[Target], found: Callable[[Target, Any], bool], lost: Callable[[Target, Any], None]):
        self.targets = targets
        self.found = found
        self.lost = lost
        self.taken: list[tuple[Target, Any]] = []
        self.active = False

    def start(self) -> None:
        self.active = True
        for module in sorted({target.module for target in self.targets}):
            if is_script_module(module):
                # The script's objects are created after instrumentors run: found lazily.
                WATCH.add(self, module)
                if module == "__main__":
                    continue
            if not _module_findable(module):
                for target in self.targets:
                    if target.module == module:
                        warn_once(
                            f"target:{target.variable}:{target.spec}",
                            f"{target.variable}: module {module!r} of target {target.spec!r} was not found; "
                            "it is watched only if that module is imported later",
                        )
            with ObjectTargets._lock:
                ObjectTargets._pending.setdefault(module, []).append(self)
                first = module not in ObjectTargets._hooked
                ObjectTargets._hooked.add(module)
            if first:
                wrapt.register_post_import_hook(functools.partial(ObjectTargets._on_import, module), module)
            elif module in sys.modules:
                self._apply(sys.modules[module])

    def stop(self) -> None:
        self.active = False
        WATCH.discard(self)
        with ObjectTargets._lock:
            for sets in ObjectTargets._pending.values():
                while self in sets:
                    sets.remove(self)
        for target, obj in reversed(self.taken):
            try:
                self.lost(target, obj)
            except Exception:  # noqa: BLE001,S110 - best effort: the app goes on either way
                pass
        self.taken.clear()

    @staticmethod
    def _on_import(module_name: str, module: Any) -> None:
        with ObjectTargets._lock:
            sets = list(ObjectTargets._pending.get(module_name, ()))
        for target_set in sets:
            target_set._apply(module)

    def settle(self, main: Any, name: str) -> bool:
        """Take the targets of ``name`` (the script) that ``main`` defines by now; True when none is left."""
        self._apply(main, name, quiet=True)
        return not self.active or not self.unsettled(name)

    def unsettled(self, name: str) -> list[Target]:
        done = {id(target) for target, _ in self.taken}
        return [target for target in self.targets if target.module == name and id(target) not in done]

    def _apply(self, module: Any, name: str | None = None, quiet: bool = False) -> None:
        name = name or module.__name__
        for target in self.targets:
            if target.module != name or not self.active:
                continue
            if any(taken is target for taken, _ in self.taken):
                continue
            obj: Any = module
            try:
                for part in target.path.split("."):
                    obj = getattr(obj, part)
            except AttributeError:
                if quiet:
                    continue  # the script has not defined it yet
                warn_once(
                    f"target:{target.variable}:{target.spec}",
                    f"{target.variable}: {target.spec!r} does not exist ({module.__name__!r} has no {target.path!r}); "
                    "not watched",
                )
                continue
            try:
                if self.found(target, obj):
                    self.taken.append((target, obj))
            except Exception as error:
                if strict():
                    raise
                warn_once(f"target:{target.variable}:{target.spec}",
                          f"{target.variable}: could not watch {target.spec!r} ({error!r}); skipped")
