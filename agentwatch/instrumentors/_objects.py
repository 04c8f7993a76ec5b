"""Object targets: the app's module attributes named in a ``*_TARGETS`` variable, found when their module imports.

The caches and queues instrumentors watch *objects* (an ``lru_cache``-wrapped function, a cachetools
cache, an ``asyncio.Queue``) rather than wrap functions; they share the function targets' syntax and
parser (``module:attribute`` or ``module:Class.attribute``, optionally ``=name``) and its import-order
independence: a target whose module is already imported is found at once, any other one right after its
module finishes loading (a wrapt post-import hook), so ``from module import thing`` elsewhere sees the
same object (:class:`agentwatch.instrumentors._agents.targets.ModuleWatch` does the watching). A
target that does not exist costs one warning naming it.

Nothing here imports the app or any library: what is found is handed to ``found(target, obj)``, which
says whether it was taken; :meth:`ObjectTargets.stop` hands each taken object to ``lost`` (undo).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.guard import strict
from agentwatch.instrumentors._agents.targets import ModuleWatch, Target


class ObjectTargets(ModuleWatch):
    """The targets of one variable: ``found`` is called with each object once its module is imported."""

    done_verb = "watched"

    def __init__(self, targets: list[Target], found: Callable[[Target, Any], bool], lost: Callable[[Target, Any], None]):
        super().__init__()
        self._targets = targets
        self.found = found
        self.lost = lost
        self.taken: list[tuple[Target, Any]] = []

    def targets(self) -> list[Target]:
        return self._targets

    def applied_targets(self) -> list[Target]:
        return [target for target, _ in self.taken]

    def _undo(self) -> None:
        for target, obj in reversed(self.taken):
            try:
                self.lost(target, obj)
            except Exception:  # noqa: BLE001,S110 - best effort: the app goes on either way
                pass
        self.taken.clear()

    def _apply(self, module: Any, name: str | None = None, quiet: bool = False) -> None:
        name = name or module.__name__
        for target in self._targets:
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


def release_all(telemetry: Any) -> None:
    """Release each object ``telemetry`` watches (its ``watched`` list, under its ``lock``) and forget them."""
    with telemetry.lock:
        for watched in telemetry.watched:
            watched.release()
        telemetry.watched.clear()
