"""``benchmarks/bench_dca.py --out`` never replaces a file the benchmark did not write (no runs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def bench(load_benchmark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_benchmark("bench_dca")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


def test_out_refuses_foreign_files_and_paths(bench: Any, tmp_path: Path) -> None:
    ap = argparse.ArgumentParser(prog="bench_dca.py")
    (tmp_path / "mine.json").write_text(json.dumps({"argv": [], "cpu_count": 2, "tools": []}))
    assert bench._check_out(ap, "mine.json") == tmp_path / "mine.json"  # its own: continued or replaced
    assert bench._check_out(ap, "new.json") == tmp_path / "new.json"  # not there yet
    (tmp_path / "other.json").write_text(json.dumps({"runs": []}))
    (tmp_path / "notes.json").write_text("not json")
    # bench_plm_subsampled.py's file has the same layout but not this benchmark's keys
    subsampled = json.dumps({"argv": [], "plm_options": [], "seed": 0, "tools": []})
    (tmp_path / "subsampled.json").write_text(subsampled)
    for name in ("other.json", "notes.json", "subsampled.json", "../escape.json", "sub/x.json", "table.md"):
        with pytest.raises(SystemExit):
            bench._check_out(ap, name)
    assert (tmp_path / "other.json").read_text() == json.dumps({"runs": []})
    assert (tmp_path / "notes.json").read_text() == "not json"
    assert (tmp_path / "subsampled.json").read_text() == subsampled
    # and the other way round: the small-alignment benchmark refuses this one's file
    with pytest.raises(SystemExit):
        bench._check_out(ap, "mine.json", "tools", ("argv", "plm_options"))
    assert bench._check_out(ap, "subsampled.json", "tools", ("argv", "plm_options")) == tmp_path / "subsampled.json"


def test_plmc_runs_with_the_documented_penalty(bench: Any, tmp_path: Path) -> None:
    """The side-by-side and the agreement sections give plmc one command: attnpotts' penalty."""
    cmd = bench._plmc_command(Path("plmc"), tmp_path / "x.ec", tmp_path / "x.fasta", 81, 21, 300, 2)
    options = dict(zip(cmd[1:-1:2], cmd[2:-1:2], strict=True))
    assert options == {"-c": str(tmp_path / "x.ec"), "-le": "16", "-lh": "0.01", "-m": "300",
                       "-t": "0.2", "-n": "2"}  # 0.01 (L-1)(q-1) = 16 at L = 81 (the README's -le)
    assert cmd[-1] == str(tmp_path / "x.fasta")


def test_agreement_refuses_zero_iterations_and_skips_without_plmc(bench: Any, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "proteins"
    data.mkdir()
    with pytest.raises(SystemExit):
        bench.main(["--agreement", "0", "--data", str(data), "--out", "a.json"])
    assert not (tmp_path / "a.json").exists()  # refused before anything ran
    assert bench.main(["--agreement", "5", "--skip-tools", "--skip-eval", "--skip-memory", "--data", str(data),
                       "--plmc", str(tmp_path / "no-plmc"), "--out", "b.json"]) == 0
    record = json.loads((tmp_path / "b.json").read_text())
    rows = record["agreement"]
    assert len(rows) == len(bench.FAMILIES) and all("no plmc binary" in r["skipped"] for r in rows)
    assert "skipped" in capsys.readouterr().out
