"""Shared fixtures of the DCA tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str) -> ModuleType:
    """Import ``benchmarks/NAME.py`` (scripts, not a package; they import each other by name, so
    the folder is on ``sys.path`` while one loads)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """A loader of the benchmark scripts by name, e.g. ``load_benchmark("bench_dca")``."""
    return _load


def _refuses_foreign_out(bench: ModuleType, args: list[str], tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``bench.main([*args, "--out", NAME])`` refuses (exit 2) a path or a non-JSON name, and a file
    in its results folder that it did not write, which stays as it was."""
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"mine": true}')
    for name, message in [(str(tmp_path / "x.json"), "must be a file name"), ("x.txt", "must be a file name"),
                          ("notes.json", "is not a result of this benchmark")]:
        with pytest.raises(SystemExit) as stop:
            bench.main([*args, "--out", name])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    assert foreign.read_text() == '{"mine": true}'


@pytest.fixture(scope="session")
def refuses_foreign_out() -> Callable[..., None]:
    """The check that a benchmark's ``--out`` never replaces a file it did not write."""
    return _refuses_foreign_out
