"""Task registry: a task name -> a pure function ``fn(params, seed) -> TaskResult``.

Runs refer to tasks by name so that specs stay plain data. A worker process (a local process or a
Dask worker) finds a task by importing the module that registered it: each job carries that module's
name, and :func:`get_task` also imports the built-in task modules on first use.

A task must be *pure*: its result depends only on ``params`` and ``seed`` (no global random state, no
reading of files the spec does not name), so that any executor gives the same result.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

from ..errors import ValidationError

__all__ = [
    "TaskFunction",
    "TaskResult",
    "get_task",
    "register_task",
    "registered_tasks",
    "task_module",
]

logger = logging.getLogger(__name__)

#: Modules that register the built-in tasks; imported lazily by :func:`get_task`.
BUILTIN_TASK_MODULES: tuple[str, ...] = ("attnpotts.experiments.tasks",)


@dataclass(frozen=True)
class TaskResult:
    """What a task returns.

    Attributes:
        metrics: JSON-serialisable numbers, strings and lists (written as ``metrics.json``).
        arrays: named numpy arrays (written together as ``arrays.npz``).
        figures: named PNG images as bytes (written as ``figures/<name>.png``).
    """

    metrics: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    figures: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.metrics, Mapping):
            raise ValidationError(f"TaskResult.metrics must be a mapping, got {type(self.metrics)}")
        for name in (*self.arrays, *self.figures):
            if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
                raise ValidationError(
                    f"artifact name {name!r} must be a non-empty file name without '/' or a "
                    "leading '.'"
                )
        for name, png in self.figures.items():
            if not isinstance(png, bytes) or not png.startswith(b"\x89PNG"):
                raise ValidationError(f"figure {name!r} must be PNG bytes")


TaskFunction: TypeAlias = Callable[[Mapping[str, Any], np.random.SeedSequence], "TaskResult | Mapping[str, Any]"]

_REGISTRY: dict[str, TaskFunction] = {}
_builtins_loaded = False


def register_task(
    name: str, fn: TaskFunction | None = None, *, replace: bool = False
) -> Any:
    """Register ``fn`` under ``name`` (usable as ``@register_task("name")``).

    ``fn(params, seed)`` receives the run's read-only parameters and its ``SeedSequence`` and
    returns a :class:`TaskResult` (or a plain mapping of metrics). The function must live at the top
    level of an importable module, so that worker processes can import it.

    Raises:
        ValidationError: ``name`` is taken by another function and ``replace`` is false.
    """

    def decorator(func: TaskFunction) -> TaskFunction:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not func and not replace:
            same = (
                getattr(existing, "__module__", None) == getattr(func, "__module__", None)
                and getattr(existing, "__qualname__", None) == getattr(func, "__qualname__", None)
            )
            if not same:  # re-importing the same module is not a conflict
                raise ValidationError(
                    f"task {name!r} is already registered by {task_module(existing)}; choose "
                    "another name or pass replace=True"
                )
        if "<locals>" in getattr(func, "__qualname__", ""):
            raise ValidationError(
                f"task {name!r}: {func.__qualname__} is a local function; define it at module "
                "level so that worker processes can import it"
            )
        _REGISTRY[name] = func
        return func

    if fn is not None:
        return decorator(fn)
    return decorator


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    for module in BUILTIN_TASK_MODULES:
        importlib.import_module(module)
    _builtins_loaded = True


def get_task(name: str, *, modules: tuple[str, ...] = ()) -> TaskFunction:
    """Return the function registered as ``name``, importing ``modules`` and the built-ins first.

    Raises:
        ValidationError: no such task; the message lists the registered ones.
    """
    for module in modules:
        importlib.import_module(module)
    if name not in _REGISTRY:
        _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValidationError(
            f"unknown task {name!r}; registered: {', '.join(sorted(_REGISTRY)) or '(none)'}. "
            "Import the module that registers it, or register it with register_task()"
        ) from None


def registered_tasks() -> dict[str, str]:
    """``{name: "module.qualname"}`` of every registered task (built-ins included)."""
    _load_builtins()
    return {
        name: f"{task_module(fn)}.{getattr(fn, '__qualname__', repr(fn))}"
        for name, fn in sorted(_REGISTRY.items())
    }


def task_module(fn: TaskFunction) -> str:
    """Name of the module that defines ``fn`` (imported by workers to register it)."""
    return str(getattr(fn, "__module__", "") or "")
