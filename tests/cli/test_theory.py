"""``attnpotts theory`` end to end on small grids."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from attnpotts.cli import main
from attnpotts.errors import ValidationError
from attnpotts.theory import Scenario, solve_factored
from attnpotts.workflows._theory import parse_alphas


def test_theory_writes_table_summary_and_plot(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    rc = main(
        ["theory", "--states", "2", "--beta", "2", "--lam", "0.1", "1", "--alpha", "0.5", "2",
         "--simulate", "40", "--seeds", "2", "--n-test", "500", "--out", str(out), "--seed", "1"]
    )  # fmt: skip
    assert rc == 0
    assert "alpha=0.5" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    pts = summary["points"]
    assert len(pts) == 4
    for rec in pts:
        for key in ("alpha", "lambda", "eps_g", "eps_opt", "m", "q", "V", "mh", "qh", "Vh"):
            assert isinstance(rec[key], float)
        assert rec["converged"] is True
        assert rec["simulation"]["n_seeds"] == 2 and rec["simulation"]["n_sites"] == 40
        assert set(rec["simulation"]["stderr"]) >= {"eps_g", "kl"}
    # The recorded theory is the library's answer at that point.
    ref = solve_factored(Scenario(np.eye(2), beta=2.0), 2.0, 1.0)
    rec = next(r for r in pts if r["alpha"] == 2.0 and r["lambda"] == 1.0)
    assert rec["eps_g"] == pytest.approx(ref.eps_g, rel=1e-6)  # same point, other start
    rows = (out / "theory.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:4] == ["alpha", "lambda", "eps_g", "eps_opt"]
    assert len(rows) == 5
    assert (out / "theory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["seed"] == 1 and cfg["lam"] == [0.1, 1.0]


def test_theory_config_file_range_and_optimal_lambda(tmp_path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('states = 2\nbeta = 1.0\nalpha = ["1:4:3"]\nlam = [0.5]\n')
    out = tmp_path / "run"
    assert main(["theory", "--config", str(cfg), "--optimal-lambda", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [p["alpha"] for p in summary["points"]] == pytest.approx([1.0, 2.0, 4.0])
    assert len(summary["optimal_lambda"]) == 3
    # Existing output folder without --overwrite: error exit status 2.
    assert main(["theory", "--config", str(cfg), "--out", str(out)]) == 2


def test_parse_alphas() -> None:
    assert parse_alphas(["0.5:8:5"]) == pytest.approx([0.5, 1.0, 2.0, 4.0, 8.0])
    assert parse_alphas(["2", "1", "2"]) == [1.0, 2.0]
    for bad in (["0:1:3"], ["1:2"], ["x"], ["-1"], ["2:1:3"], []):
        with pytest.raises(ValidationError):
            parse_alphas(bad)
    assert math.isclose(parse_alphas(["3:3:1"])[0], 3.0)


def test_theory_bad_options_exit_2(tmp_path, capsys) -> None:
    assert main(["theory", "--alpha", "1:2", "--out", str(tmp_path / "a")]) == 2
    assert "START:STOP:COUNT" in capsys.readouterr().err
    assert main(["theory", "--ucol", "nope", "--out", str(tmp_path / "b")]) == 2
    np.save(tmp_path / "u.npy", np.eye(4))
    assert main(["theory", "--ucol", str(tmp_path / "u.npy"), "--out", str(tmp_path / "c")]) == 2
    assert "expected (3, 3)" in capsys.readouterr().err
    assert main(["theory", "--student", "ising", "--out", str(tmp_path / "d")]) == 2
