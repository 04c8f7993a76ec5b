"""Targets: the app's functions named in ``AGENTWATCH_*_TARGETS``, wrapped when their module imports.

A target is ``module:function`` or ``module:Class.method``, optionally ``=name`` to name the
classifier, data source, agent or critic. :class:`TargetSet` wraps each one when its module is
imported, whatever the import order (wrapt post-import hooks: immediately if the module is already
imported, otherwise right after it finishes loading, before ``from module import function`` binds
the name), and unwraps them symmetrically. A target whose module or attribute does not exist costs
one warning naming it: these are configuration mistakes, reported in the user's terms.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import inspect
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import Any

import wrapt

from agentwatch._records import Record
from agentwatch.distro import environment_variables as ev
from agentwatch.distro._diagnostics import warn_once
from agentwatch.distro.settings import Reader
from agentwatch.instrumentors._agents.main_targets import WATCH, is_script_module

_IDENT = r"[A-Za-z_]\w*"
_TARGET = re.compile(rf"^(?P<module>{_IDENT}(?:\.{_IDENT})*):(?P<path>{_IDENT}(?:\.{_IDENT})*)(?:=(?P<name>[\w.\-/ ]+))?$")


class Target(Record):
    """One ``module:function`` (or ``module:Class.method``) named by an ``AGENTWATCH_*_TARGETS`` variable."""

    __slots__ = ("module", "path", "name", "variable")
    module: str
    path: str  # "function" or "Class.method"
    name: str | None  # user-given name (data source, agent, ...)
    variable: str

    def __init__(self, module: str, path: str, name: str | None = None, variable: str = "") -> None:
        self._set(module=module, path=path, name=name, variable=variable)

    @property
    def spec(self) -> str:
        return f"{self.module}:{self.path}"

    @property
    def label(self) -> str:
        """Default name: the function's module and qualified name (``knowledge.search``)."""
        return self.name or f"{self.module.rsplit('.', 1)[-1]}.{self.path}"


def parse_targets(variable: str, raw: str | None = None) -> list[Target]:
    """Parse a comma-separated target list; bad items warn once and are skipped."""
    # The catalogue reads the variable as a comma list (items stripped, blanks dropped).
    items = Reader().read(variable) if raw is None else ev.Names(lower=False).parse(raw)
    targets: list[Target] = []
    for item in items:
        match = _TARGET.match(item)
        if match is None:
            warn_once(
                f"target:{variable}:{item}",
                f"{variable}: {item!r} is not module:function or module:Class.method; ignoring it "
                "(the other targets are used)",
            )
            continue
        name = (match.group("name") or "").strip() or None
        targets.append(Target(match.group("module"), match.group("path"), name, variable))
    return targets


def resolve_callable(spec: str, variable: str) -> Callable[..., Any] | None:
    """Import ``module:attr.path`` (a user extractor); None (after one warning) when it does not resolve."""
    match = _TARGET.match(spec)
    try:
        if match is None:
            raise ValueError("not module:function")
        obj: Any = importlib.import_module(match.group("module"))
        for part in match.group("path").split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError("not callable")
        return obj
    except Exception as error:  # noqa: BLE001 - configuration error, reported
        warn_once(f"extractor:{variable}:{spec}", f"{variable}={spec!r} cannot be used ({error}); using the built-in extraction instead")
        return None


def _module_findable(module: str) -> bool:
    """Whether ``module``'s top-level package exists, without importing anything.

    ``sys.path[0]`` (the script's directory) is not set yet when
    ``opentelemetry-instrument`` loads instrumentors, and uvicorn adds the
    working directory later, so both are searched too.
    """
    top = module.split(".", 1)[0]
    if top in sys.modules:
        return True
    extra = [os.getcwd()]
    if sys.argv and sys.argv[0] and os.path.exists(sys.argv[0]):
        extra.append(os.path.dirname(os.path.abspath(sys.argv[0])))
    try:
        return importlib.machinery.PathFinder.find_spec(top, list(sys.path) + extra) is not None or top in sys.builtin_module_names
    except Exception:  # noqa: BLE001
        return True  # cannot tell: do not warn


#: Set on our wrappers (env-var targets and decorators alike) so a function is never wrapped twice
#: for the same role, and unwrapping removes only what is ours.
WRAPPER_TAG = "_self_agentwatch_role"


class ModuleWatch:
    """Targets found when their module imports: the registry, start/stop and the script's lazy settling.

    What a target *is* (a function to wrap, an object to watch) and how it is applied or undone is the
    subclass's (:class:`TargetSet` here, ``instrumentors._objects.ObjectTargets``). A target whose module
    is already imported is applied at once, any other right after its module finishes loading.
    """

    # One post-import hook per module for the whole process (wrapt cannot unregister hooks); it applies
    # whatever watch is pending on that module at the time.
    _hooked: set[str] = set()
    _pending: dict[str, list[ModuleWatch]] = {}
    _lock = threading.RLock()
    #: The not-found warning's verb: "it is <done> only if that module is imported later".
    done_verb = "wrapped"

    def __init__(self) -> None:
        self.active = False

    # --- what subclasses say ------------------------------------------------------------------
    def targets(self) -> list[Target]:
        raise NotImplementedError

    def applied_targets(self) -> list[Target]:
        raise NotImplementedError

    def _apply(self, module: Any, name: str | None = None, quiet: bool = False) -> None:
        raise NotImplementedError

    def _undo(self) -> None:
        """Take back what was applied (best effort: the app goes on either way)."""
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------------
    def start(self) -> None:
        self.active = True
        targets = self.targets()
        for module in sorted({target.module for target in targets}):
            if is_script_module(module):
                # The script's functions and objects are defined after instrumentors run: settled lazily.
                WATCH.add(self, module)
                if module == "__main__":
                    continue
            if not _module_findable(module):
                for target in targets:
                    if target.module == module:
                        warn_once(
                            f"target:{target.variable}:{target.spec}",
                            f"{target.variable}: module {module!r} of target {target.spec!r} was not found; "
                            f"it is {self.done_verb} only if that module is imported later",
                        )
            with ModuleWatch._lock:
                ModuleWatch._pending.setdefault(module, []).append(self)
                first = module not in ModuleWatch._hooked
                ModuleWatch._hooked.add(module)
            if first:
                wrapt.register_post_import_hook(functools.partial(ModuleWatch._on_import, module), module)
            elif module in sys.modules:
                self._apply(sys.modules[module])

    def stop(self) -> None:
        self.active = False
        WATCH.discard(self)
        with ModuleWatch._lock:
            for watches in ModuleWatch._pending.values():
                while self in watches:
                    watches.remove(self)
        self._undo()

    @staticmethod
    def _on_import(module_name: str, module: Any) -> None:
        with ModuleWatch._lock:
            watches = list(ModuleWatch._pending.get(module_name, ()))
        for watch in watches:
            watch._apply(module)

    def settle(self, main: Any, name: str) -> bool:
        """Apply the targets of ``name`` (the script) that ``main`` defines by now; True when none is left."""
        self._apply(main, name, quiet=True)
        return not self.active or not self.unsettled(name)

    def unsettled(self, name: str) -> list[Target]:
        done = {id(target) for target in self.applied_targets()}
        return [target for target in self.targets() if target.module == name and id(target) not in done]


class TargetSet(ModuleWatch):
    """The env-var targets of one instrumentor: wrapped on import, unwrapped on uninstrument."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[Target, Callable[[Target], Any]]] = []
        self.applied: list[tuple[Any, str, Target]] = []  # (parent object, attribute name, target)

    def add(self, target: Target, wrapper_factory: Callable[[Target], Any]) -> None:
        self.entries.append((target, wrapper_factory))

    def targets(self) -> list[Target]:
        return [target for target, _ in self.entries]

    def applied_targets(self) -> list[Target]:
        return [target for _, _, target in self.applied]

    def _undo(self) -> None:
        for parent, attribute, _target in reversed(self.applied):
            try:
                current = inspect.getattr_static(parent, attribute)
                if isinstance(current, wrapt.FunctionWrapper) and getattr(current, WRAPPER_TAG, None):
                    setattr(parent, attribute, current.__wrapped__)
            except Exception:  # noqa: BLE001,S110 - best effort
                pass
        self.applied.clear()

    def _apply(self, module: Any, name: str | None = None, quiet: bool = False) -> None:
        name = name or module.__name__
        for target, factory in self.entries:
            if target.module != name or not self.active:
                continue
            if any(applied is target for _, _, applied in self.applied):
                continue
            try:
                parent: Any = module
                *owners, attribute = target.path.split(".")
                try:
                    for part in owners:
                        parent = getattr(parent, part)
                except AttributeError:
                    if quiet:
                        continue
                    raise
                try:
                    current = inspect.getattr_static(parent, attribute)
                except AttributeError:
                    if quiet:
                        continue  # the script has not defined it yet
                    warn_once(
                        f"target:{target.variable}:{target.spec}",
                        f"{target.variable}: {target.spec!r} does not exist ({module.__name__!r} has no "
                        f"{target.path!r}); not instrumented",
                    )
                    continue
                if isinstance(current, wrapt.FunctionWrapper) and getattr(current, WRAPPER_TAG, None):
                    continue  # already ours (e.g. a decorator of the same role)
                function = getattr(current, "__func__", current)
                if not callable(function):
                    warn_once(f"target:{target.variable}:{target.spec}", f"{target.variable}: {target.spec!r} is not callable; not instrumented")
                    continue
                wrapper = factory(target)
                wrapt.wrap_function_wrapper(parent, attribute, wrapper)
                setattr(inspect.getattr_static(parent, attribute), WRAPPER_TAG, wrapper.role.role)
                self.applied.append((parent, attribute, target))
            except Exception as error:  # noqa: BLE001 - never break the import
                warn_once(
                    f"target:{target.variable}:{target.spec}",
                    f"{target.variable}: could not instrument {target.spec!r} ({error!r}); skipped",
                )
