"""Long proteins (L = 1000): the full model is refused with its estimate, factored attention runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attnpotts.cli.main import main

L_LONG = 1000


def _long_alignment(tmp: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY-"))
    rows = letters[rng.integers(0, 21, size=(n, L_LONG))]
    path = tmp / "long.fasta"
    path.write_text("".join(f">s{k}\n{''.join(r)}\n" for k, r in enumerate(rows)))
    return path


def test_plm_refuses_a_long_protein_and_names_the_factored_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aln = _long_alignment(tmp_path)
    rc = main(["contacts", str(aln), "--out", str(tmp_path / "out"), "--model", "plm"])
    err = capsys.readouterr().err
    assert rc == 2
    from attnpotts.cli.common import DEFAULT_MEMORY_LIMIT_GB

    limit = f"above the limit of {DEFAULT_MEMORY_LIMIT_GB:.2f} GiB"
    assert "--model factored" in err and limit in err and "--memory-limit-gb" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_factored_model_runs_a_long_protein_within_the_default_memory_limit(tmp_path: Path) -> None:
    aln = _long_alignment(tmp_path)
    out = tmp_path / "out"
    assert main(["contacts", str(aln), "--out", str(out), "--model", "factored", "--max-iter", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_sites"] == L_LONG
    assert summary["memory_estimate_gib"] <= 2.0
    assert summary["couplings_file"] == "factors.npz"
    factors = np.load(out / "factors.npz")
    assert factors["attention"].shape == (32, L_LONG, L_LONG)
    assert factors["values"].shape == (32, 21, 21)
    assert not bool(factors["symmetric"])  # the default: J = sum_h A_h V_h as it is
    assert (out / "scores.mat").exists() and not (out / "couplings.npz").exists()
