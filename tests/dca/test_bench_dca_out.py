"""``benchmarks/bench_dca.py --out`` never replaces a file the benchmark did not write (no runs)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location("bench_dca", ROOT / "benchmarks" / "bench_dca.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


def test_out_refuses_foreign_files_and_paths(bench: Any, tmp_path: Path) -> None:
    ap = argparse.ArgumentParser(prog="bench_dca.py")
    (tmp_path / "mine.json").write_text(json.dumps({"argv": [], "tools": []}))
    bench._check_out(ap, "mine.json")  # its own result: continued or replaced, as asked
    bench._check_out(ap, "new.json")  # not there yet
    (tmp_path / "other.json").write_text(json.dumps({"runs": []}))
    (tmp_path / "notes.json").write_text("not json")
    for name in ("other.json", "notes.json", "../escape.json", "sub/x.json", "table.md"):
        with pytest.raises(SystemExit):
            bench._check_out(ap, name)
    assert (tmp_path / "other.json").read_text() == json.dumps({"runs": []})
    assert (tmp_path / "notes.json").read_text() == "not json"
