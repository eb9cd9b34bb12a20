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


def test_a_peer_built_without_openmp_is_named(bench: Any, tmp_path: Path) -> None:
    """A binary that links the OpenMP runtime but opens no parallel region runs on one thread."""
    threaded, single = tmp_path / "threaded", tmp_path / "single"
    threaded.write_bytes(b"\x7fELF\x00omp_get_num_threads\x00GOMP_parallel\x00")
    single.write_bytes(b"\x7fELF\x00omp_get_num_threads\x00GOMP_critical_start\x00")
    (tmp_path / "llvm").write_bytes(b"\x7fELF\x00__kmpc_fork_call\x00")
    assert bench.openmp_regions(threaded) is True
    assert bench.openmp_regions(tmp_path / "llvm") is True
    assert bench.openmp_regions(single) is False
    assert bench.openmp_regions(tmp_path / "absent") is None
    assert bench.check_peer_threads(threaded, "ccmpred", 2) is None
    assert bench.check_peer_threads(single, "ccmpred", 1) is None  # one thread asked: nothing lost
    message = bench.check_peer_threads(single, "ccmpred", 2)
    assert message is not None and "one thread" in message and "-fopenmp" in message
    assert bench.check_peer_threads(tmp_path / "absent", "ccmpred", 2) is None  # skipped later
    # both DCA benchmarks print and record it for the peers they run, and only for those
    args = argparse.Namespace(tools=["plm", "ccmpred"], threads=2, plmc=single, ccmpred=single)
    record: dict[str, Any] = {}
    bench.warn_single_threaded_peers(args, record)
    assert len(record["warnings"]) == 1 and record["warnings"][0].startswith("ccmpred at ")
    args.ccmpred = threaded
    record = {}
    bench.warn_single_threaded_peers(args, record)
    assert "warnings" not in record
