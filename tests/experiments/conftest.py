from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The toy task module, importable by name here and in spawned worker processes."""
    monkeypatch.syspath_prepend(str(HERE))
    if "toy_tasks" in sys.modules:
        return sys.modules["toy_tasks"]
    return importlib.import_module("toy_tasks")
