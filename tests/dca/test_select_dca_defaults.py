"""``benchmarks/select_dca_defaults.py select`` on synthetic fits (no fitting): ``--lambdas``
restricts the candidates to the fits of the given coupling L2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture()
def select(load_benchmark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_benchmark("select_dca_defaults")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


def _fit(family: str, lam: float, precision: float) -> dict[str, Any]:
    """A fit stopped every 5 iterations whose objective stops falling after 10, with the same
    top-L precision under every score."""
    objective = {5: 2.0, 10: 1.0, 15: 1.0, 20: 1.0}
    return {"family": family, "lambda_j": lam, "every": 5, "stops": [
        {"iterations": k, "objective": obj,
         "precision": {s: {"L": precision, "L/5": precision} for s in ("fn_apc_gap", "fn_apc_nogap")}}
        for k, obj in objective.items()]}


def _write(tmp_path: Path) -> Path:
    fits = [_fit(f, 0.01, 0.80) for f in ("PF1", "PF2", "PF3")]
    fits += [_fit(f, 0.02, 0.90) for f in ("PF1", "PF2", "PF3")]
    (tmp_path / "dca_defaults_fits_a.json").write_text(json.dumps({"fits": fits[:3]}))
    (tmp_path / "dca_defaults_fits_b.json").write_text(json.dumps({"fits": fits[3:]}))
    baseline = tmp_path / "plmc.json"
    baseline.write_text(json.dumps({"tools": [
        {"tool": "plmc", "family": f, "precision": {"L": 0.85}} for f in ("PF1", "PF2", "PF3")]}))
    return baseline


def _final(tmp_path: Path, name: str) -> tuple[float, float]:
    record = json.loads((tmp_path / name).read_text())
    return float(record["final"]["setting"][3]), float(record["held_out_mean_precision_L"])


def test_every_lambda_found_by_default_and_the_given_ones_with_lambdas(select: Any, tmp_path: Path) -> None:
    baseline = str(_write(tmp_path))
    assert select.main(["select", "--baseline", baseline, "--out", "all.json"]) == 0
    assert _final(tmp_path, "all.json") == (0.02, pytest.approx(0.90))
    assert select.main(["select", "--baseline", baseline, "--lambdas", "0.01", "--out", "one.json"]) == 0
    assert _final(tmp_path, "one.json") == (0.01, pytest.approx(0.80))


def test_lambdas_without_fits_name_the_problem(select: Any, tmp_path: Path) -> None:
    baseline = str(_write(tmp_path))
    with pytest.raises(SystemExit, match=r"no fits with lambda_J in \[0\.5\]"):
        select.main(["select", "--baseline", baseline, "--lambdas", "0.5", "--out", "x.json"])
    assert not (tmp_path / "x.json").exists()


def test_out_is_a_result_file_of_this_script_never_another(
    select: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out`` names a file in the results folder; a path elsewhere or a file the script did not
    write (another benchmark's, or anything else) is refused before anything runs, untouched."""
    baseline = str(_write(tmp_path))
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}')
    foreign, not_a_name = "not a result of this benchmark", "--out must be a file name ending in .json"
    for step, out, why in (("select", "notes.json", foreign), ("select", str(tmp_path / "x.json"), not_a_name),
                           ("select", "dca_defaults_fits_a.json", foreign), ("fit", "notes.json", foreign),
                           ("fit", "plmc.json", foreign), ("select", "x.txt", not_a_name)):
        argv = [step, "--out", out] + (["--baseline", baseline] if step == "select" else [])
        with pytest.raises(SystemExit) as exc:
            select.main(argv)
        assert exc.value.code == 2 and why in capsys.readouterr().err, (step, out)
    assert mine.read_text() == '{"my": "notes"}' and not (tmp_path / "x.json").exists()
    assert select.main(["select", "--baseline", baseline, "--out", "sel.json"]) == 0
    assert select.main(["select", "--baseline", baseline, "--out", "sel.json"]) == 0  # its own: replaced
