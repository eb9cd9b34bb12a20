"""``benchmarks/bench_pair_kernels.py`` runs end to end at a tiny size (its numbers are not checked
here, only that it times both trees' kernels on the same inputs and writes its file)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench(load_benchmark: Any) -> Any:
    return load_benchmark("bench_pair_kernels")


def test_the_benchmark_times_this_tree_and_a_baseline_and_writes_its_table(
    bench: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        pytest.skip("the benchmark's --baseline needs git")
    if head.returncode != 0:  # a copy of the files without their history (an sdist, a tarball)
        pytest.skip("the benchmark's --baseline needs a git checkout of the repository")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    out = tmp_path / "pairs.json"
    # it sets this process's thread counts; tests/conftest.py puts them back afterwards
    assert bench.main(["--lengths", "2", "5", "--accumulators", "1", "2", "--repeats", "2",
                       "--threads", "1", "--baseline", head.stdout.strip(), "--out", out.name]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["L"], r["accumulators"]) for r in rows] == [(2, 1), (2, 2), (5, 1), (5, 2)]
    for r in rows:
        assert set(r["median_s"]) == {"expand", "reduce", "copy", "expand_baseline", "reduce_baseline"}
        assert all(len(v) == 2 for v in r["all_s"].values())


def test_a_revision_git_does_not_know_is_refused(bench: Any) -> None:
    with pytest.raises(SystemExit, match="--baseline no-such-revision"):
        bench.baseline_kernels("no-such-revision")


def test_out_is_a_name_in_the_results_folder_and_never_a_foreign_file(
    bench: Any, refuses_foreign_out: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refuses_foreign_out(bench, ["--lengths", "2", "--repeats", "1"], tmp_path, monkeypatch, capsys)
