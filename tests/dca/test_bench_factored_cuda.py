"""``benchmarks/bench_factored_cuda.py``: refuses cleanly without CUDA, and runs end to end at a
tiny size with the CUDA calls stood in (the numbers are measured on a GPU, not here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from attnpotts.models import factored_kernels


@pytest.fixture(scope="module")
def bench(load_benchmark: Any) -> Any:
    return load_benchmark("bench_factored_cuda")


def test_without_cuda_it_says_so_and_exits_2(
    bench: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--no-write"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_it_times_every_block_budget_and_writes_its_rows(
    bench: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[int] = []
    real = factored_kernels.default_block

    def spy(*args: Any, **kwargs: Any) -> int:
        seen.append(factored_kernels.DEVICE_BLOCK_BYTES)
        return int(real(*args, **kwargs))

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name in ("synchronize", "reset_peak_memory_stats", "empty_cache"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 0)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 2**20)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "stand-in")
    monkeypatch.setattr(factored_kernels, "default_block", spy)
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    default = factored_kernels.DEVICE_BLOCK_BYTES
    out = tmp_path / "cuda.json"
    argv = ["--time", "12", "--block-mib", "1", "3", "--memory", "12", "-n", "40", "--heads", "2",
            "--max-iter", "1", "--repeats", "1", "--device", "cpu", "--out", out.name]
    assert bench.main(argv) == 0
    assert default == factored_kernels.DEVICE_BLOCK_BYTES  # restored after the sweep
    assert {1024**2, 3 * 1024**2} <= set(seen)  # each budget was in force for an evaluation
    rows = json.loads(out.read_text())
    (t,) = rows["time"]
    assert set(t["ratio_to_full"]) == {"1", "3"} and t["full_wall_s"] > 0
    (m,) = rows["memory"]
    assert m["L"] == 12 and m["device_peak_bytes"] == 2**20 and m["device_estimate_bytes"] > 0


def test_out_is_a_name_in_the_results_folder_and_never_a_foreign_file(
    bench: Any, refuses_foreign_out: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refuses_foreign_out(bench, [], tmp_path, monkeypatch, capsys)
