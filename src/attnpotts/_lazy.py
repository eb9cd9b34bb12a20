"""Attributes of a package imported from its submodules on first use (PEP 562).

Why: ``attnpotts --help``, ``attnpotts COMMAND --help`` and every check of a bad flag build their
parsers from option classes that live next to code needing torch or numba (1.5 s and 0.4 s to
load). A package whose ``__init__`` imports those submodules only when one of their names is
first read keeps the option classes cheap to import; the names and ``from package import name``
work as before.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, where: Mapping[str, str], eager: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``where[name]`` is the submodule (relative,
    without the dot) that defines ``name``; ``eager`` are the names imported as usual."""
    where = dict(where)
    names = sorted(set(where) | set(eager))

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
