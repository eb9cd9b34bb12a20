"""Degenerate training data are reported, never silently used or fixed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attnpotts.alignment import MIN_NEFF_PER_SITE, data_warnings, read_alignment
from attnpotts.alignment.examples import example_files
from attnpotts.cli.main import main


def test_a_real_family_has_no_warning() -> None:
    msa = read_alignment(example_files("PF00014").alignment)
    w = msa.weights(0.8)
    assert data_warnings(msa.states, gap_index=msa.alphabet.gap_index, weights=w.weights) == []


def test_each_degenerate_case_is_named() -> None:
    assert "only one sequence" in data_warnings(np.array([[1, 2, 3]]))[0]
    rng = np.random.default_rng(0)
    x = rng.integers(1, 5, size=(50, 8))
    assert data_warnings(x, gap_index=0) == []
    few = data_warnings(x[:5], gap_index=0)
    assert any("N_eff = 5.0 is below" in m for m in few)
    assert MIN_NEFF_PER_SITE == 1.0
    weighted = data_warnings(x, gap_index=0, weights=np.full(50, 0.1))
    assert any("N_eff = 5.0" in m for m in weighted)
    known = data_warnings(x, gap_index=0, weights=np.full(50, 0.1), n_eff=7.0)  # n_eff wins
    assert any("N_eff = 7.0" in m for m in known)
    x[:, 3] = 2
    assert any("1 constant column(s)" in m and "4" in m for m in data_warnings(x, gap_index=0))
    x[7] = 0
    assert any("1 sequence(s) without any residue" in m for m in data_warnings(x, gap_index=0))


def test_train_writes_the_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    aln = tmp_path / "few.fasta"
    aln.write_text(">a\nACDEFG\n>b\nACDEFH\n>c\n------\n>d\nXXXXXX\n>e\nACDEFG\n")
    argv = ["train", "--data", str(aln), "--epochs", "1", "--no-progress",
            "--validation-fraction", "0", "--test-fraction", "0", "--out", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "warning: few effective sequences" in err and "without any residue" in err
    # no validation set: the report says so instead of 'nan' and 'best epoch None'
    assert "validation n/a (no validation set)" in captured.out and "None" not in captured.out
    # and with neither test sequences nor a true model, evaluate refuses instead of an empty result
    ev = tmp_path / "ev"
    assert main(["evaluate", "--run", str(tmp_path / "o"), "--out", str(ev)]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err and not ev.exists()
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert len(summary["warnings"]) == 2
