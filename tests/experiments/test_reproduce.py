from __future__ import annotations

import copy
import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attnpotts.cli.main import main
from attnpotts.errors import ValidationError
from attnpotts.experiments import ResultsStore
from attnpotts.experiments.reproduce import (
    STAGES,
    ReproduceConfig,
    equivalence_spec,
    factored_spec,
    reproduce,
    transformer_spec,
)
from attnpotts.experiments.reproduce.statistics import combine
from attnpotts.reports import SchemaError, extract_numbers, get_path
from attnpotts.reports.reproduce import validate_results


def check_report_numbers(report: str, results: dict[str, Any]) -> int:
    """Every keyed number of the report is the document's value at that key, formatted as shown."""
    nums = [n for n in extract_numbers(report) if n["key"]]
    for n in nums:
        value = get_path(results, str(n["key"]))
        if value is None:  # not available (JSON null): shown as n/a
            assert n["value"] is None and n["text"] == "n/a", n
            continue
        assert n["value"] is not None
        assert float(n["value"]) == pytest.approx(float(value), rel=0, abs=0), n
        assert n["text"] == format(value, str(n["fmt"])), n
    return len(nums)


def check_artifacts(out: Path, stages: tuple[str, ...]) -> dict[str, Any]:
    for name in ("config.json", "results.json", "summary.json", "report.html"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    validate_results(results)
    assert sorted(results["stages"]) == sorted(stages)
    for stage in results["stages"].values():
        for fig in stage["figures"]:
            assert (out / fig).read_bytes().startswith(b"\x89PNG")
        store = ResultsStore(out / "runs")
        for run_id in stage["runs"]:
            files = {p.name for p in (store.root / run_id).iterdir()}
            assert {"config.json", "environment.json", "timings.json", "metrics.json"} <= files
    report = (out / "report.html").read_text()
    n = check_report_numbers(report, results)
    assert n >= 5
    assert report.count("data:image/png;base64,") == sum(
        len(s["figures"]) for s in results["stages"].values()
    )
    return results


def test_config_validation_and_round_trip() -> None:
    for mode in ("quick", "default", "full"):
        cfg = ReproduceConfig.preset(mode)
        assert ReproduceConfig.from_dict(cfg.to_dict()) == cfg
    assert ReproduceConfig.preset("default").n_sites == 20
    assert ReproduceConfig.preset("default").n_train == 3000
    assert ReproduceConfig.preset("full").n_train == 3000  # the paper's setting
    with pytest.raises(ValidationError, match="mode"):
        ReproduceConfig.preset("huge")
    with pytest.raises(ValidationError, match="stages"):
        ReproduceConfig(stages=("depth", "plots"))
    with pytest.raises(ValidationError, match="unknown reproduce option"):
        ReproduceConfig.from_dict({"n_site": 3})
    with pytest.raises(ValidationError, match="divisible"):
        ReproduceConfig(width=10, transformer_heads=4)
    with pytest.raises(ValidationError, match="twice"):
        ReproduceConfig(depths=(1, 1))
    with pytest.raises(ValidationError, match="n_train"):
        ReproduceConfig(n_train=0)
    with pytest.raises(ValidationError, match="target_distance"):
        ReproduceConfig(target_distance=1.5)

    # one value of a list option is a list of one (``factored_coupling_l2 = 0`` in TOML), checked
    # as written: a bad one is named with the value the user gave
    assert ReproduceConfig.from_dict({"factored_coupling_l2": 0}).factored_coupling_l2 == (0,)
    assert ReproduceConfig(depths=2).depths == (2,)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"got -1 \(int"):
        ReproduceConfig.from_dict({"factored_coupling_l2": -1})


def test_specs() -> None:
    cfg = ReproduceConfig.preset("full")
    tr = transformer_spec(cfg).expand()
    assert len(tr) == len(cfg.depths) * len(cfg.transformer_dropout) * cfg.n_seeds
    assert {r.params["model"]["n_layers"] for r in tr} == set(cfg.depths)
    fac = factored_spec(cfg).expand()
    # all models of the depth study see the same data; every run has its own seed
    assert len({json.dumps(dict(r.params["data"]), sort_keys=True) for r in tr + fac}) == 1
    assert len({(r.seed_entropy, r.spawn_key) for r in tr + fac}) == len(tr) + len(fac)
    # the data seed depends on the top-level seed
    other = ReproduceConfig.preset("full", seed=1)
    assert factored_spec(other).params["data"]["seed"] != factored_spec(cfg).params["data"]["seed"]
    assert len(equivalence_spec(cfg).expand()) == 4 * cfg.equivalence_draws


def testcombine() -> None:
    mean, se = combine([1.0], [0.1])
    assert (mean, se) == (1.0, 0.1)
    mean, se = combine([1.0, 2.0, 3.0], [0.1, 0.2, 0.3])
    assert mean == 2.0
    assert se == pytest.approx(math.sqrt(0.2**2 + 1.0 / 3))


def test_equivalence_stage_end_to_end(tmp_path: Path) -> None:
    """The cheapest stage through the whole pipeline: artifacts, schema, report numbers, the
    umask's permissions, resume (which removes what a killed run left)."""
    out = tmp_path / "out"
    cfg = ReproduceConfig.preset("quick", stages=("equivalence",))
    mask = 0o027
    old = os.umask(mask)
    try:
        res = reproduce(cfg, out)
    finally:
        os.umask(old)
    for p in [out, *out.rglob("*")]:
        want = 0o777 & ~mask if p.is_dir() else 0o666 & ~mask
        assert stat.S_IMODE(p.stat().st_mode) == want, p
    results = check_artifacts(out, ("equivalence",))
    s = results["stages"]["equivalence"]["summary"]
    assert len(s["checks"]) == 4 * cfg.equivalence_draws
    assert s["agree"] and s["max_rel_difference"] < 1e-12
    assert results["not_run"] == [x for x in STAGES if x != "equivalence"]
    assert res.results == results
    # what a run killed while writing leaves: a run's temporary folder (and one being replaced),
    # temporary files of the outputs and of a figure; and files of the user's, kept
    run_id = results["stages"]["equivalence"]["runs"][0]
    killed = [
        out / "runs" / f".{run_id}.tmp-k1lled", out / "runs" / f".{run_id}.old-4242",
        out / ".results.json.a1b2c3.tmp", out / ".report.html.x_y.tmp",
        out / "figures" / ".equivalence.png.qq9.tmp",
    ]  # fmt: skip
    for p in killed[:2]:
        p.mkdir()
        (p / "metrics.json").write_text("{")
    for p in killed[2:]:
        p.write_text("half")
    mine = [out / "notes.tmp", out / ".draft.tmp", out / "figures" / "sketch.png.tmp"]
    for p in mine:
        p.write_text("keep")
    # same configuration again: resumes, computes nothing, same numbers, cleans up
    again = reproduce(cfg, out)
    assert again.results["sweeps"][0]["n_computed"] == 0
    assert again.results["stages"] == results["stages"]
    assert not any(p.exists() for p in killed)
    assert all(p.read_text() == "keep" for p in mine)
    # another configuration refuses the folder unless --overwrite
    other = ReproduceConfig.preset("quick", stages=("equivalence",), seed=3)
    with pytest.raises(FileExistsError, match="another configuration"):
        reproduce(other, out)
    reproduce(other, out, overwrite=True)
    assert json.loads((out / "config.json").read_text())["config"]["seed"] == 3


def test_bad_device_fails_early(tmp_path: Path) -> None:
    import torch

    with pytest.raises(ValidationError, match="not a torch device"):
        reproduce(ReproduceConfig.preset("quick", device="gpu0"), tmp_path / "o")
    if not torch.cuda.is_available():
        with pytest.raises(ValidationError, match="no CUDA device"):
            reproduce(ReproduceConfig.preset("quick", device="cuda"), tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_overwrite_refuses_foreign_folders(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("x")
    cfg = ReproduceConfig.preset("quick", stages=("equivalence",))
    with pytest.raises(FileExistsError, match="refusing to delete"):
        reproduce(cfg, tmp_path, overwrite=True)
    assert (tmp_path / "precious.txt").exists()


def test_cli_equivalence_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = main(["reproduce", "--quick", "--stages", "equivalence", "--out", str(out), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"report:  {out / 'report.html'}" in printed
    results = check_artifacts(out, ("equivalence",))
    assert f"{results['stages']['equivalence']['summary']['max_rel_difference']:.2e}" in printed
    assert main(["reproduce", "--executor", "dask", "--address", "127.0.0.1:9", "--workers", "2",
                 "--out", str(tmp_path / "d")]) == 2  # fmt: skip
    assert "a Dask cluster at --address has its own" in capsys.readouterr().err


def test_config_file_overrides(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("equivalence_draws = 2\nequivalence_sites = 4\n")
    out = tmp_path / "o"
    rc = main(["reproduce", "--quick", "--stages", "equivalence", "--config", str(toml),
               "--out", str(out), "--no-progress", "--seed", "5"])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["equivalence_draws"] == 2 and cfg["equivalence_sites"] == 4 and cfg["seed"] == 5
    toml.write_text("equivalence_drawz = 2\n")
    assert main(["reproduce", "--quick", "--config", str(toml), "--out", str(out)]) == 2


def test_results_schema_rejects_broken_documents(tmp_path: Path) -> None:
    cfg = ReproduceConfig.preset("quick", stages=("equivalence",))
    doc = reproduce(cfg, tmp_path / "o").results
    validate_results(doc)
    broken: list[dict[str, Any]] = []
    d = copy.deepcopy(doc)
    del d["stages"]["equivalence"]["summary"]["max_rel_difference"]
    broken.append(d)
    d = copy.deepcopy(doc)
    d["stages"]["equivalence"]["summary"]["checks"][0]["mlm_loss"] = "1.0"
    broken.append(d)
    d = copy.deepcopy(doc)
    d["stages"]["plots"] = d["stages"]["equivalence"]
    broken.append(d)
    d = copy.deepcopy(doc)
    d["schema"] = "attnpotts.reproduce/0"
    broken.append(d)
    d = copy.deepcopy(doc)
    d["stages"]["equivalence"]["figures"] = ["/etc/passwd"]
    broken.append(d)
    for b in broken:
        with pytest.raises(SchemaError):
            validate_results(b)


#: A tiny system: every stage's aggregation and report text in a few seconds of CPU.
TINY: dict[str, Any] = {
    "n_sites": 4, "n_states": 3, "n_train": 60, "n_validation": 20, "n_test": 40,
    "n_chains": 10, "pilot_sweeps": 16, "depths": (1,), "width": 8, "transformer_heads": 2,
    "transformer_epochs": 1, "factored_epochs": 3, "theory_lambdas": (0.1,),
    "theory_alphas": (1.0, 4.0), "theory_curve_points": 3, "simulation_sites": 10,
    "simulation_test": 100, "stages": ("depth", "scaling", "couplings", "theory"),
    "scaling_sizes": (20, 40, 60), "scaling_data_seeds": 2, "scaling_depths": (1,),
}


def test_tiny_pipeline_every_stage(tmp_path: Path) -> None:
    cfg = ReproduceConfig.preset("quick", **TINY)
    progress: list[dict[str, Any]] = []
    results = reproduce(cfg, tmp_path / "tiny", on_progress=progress.append).results
    check_artifacts(tmp_path / "tiny", ("depth", "scaling", "couplings", "theory"))
    # progress: one report per run of the whole pipeline, the time left ending at 0
    assert [p["done"] for p in progress] == list(range(1, len(progress) + 1))
    assert progress[-1]["done"] == progress[-1]["total"] and progress[-1]["eta_s"] == 0
    assert all(p["eta_s"] >= 0 for p in progress)
    # the claims are the pure function of the rest of the document
    from attnpotts.experiments.claims import evaluate_claims

    rest = {k: v for k, v in results.items() if k != "claims"}
    assert results["claims"] == json.loads(json.dumps([c.as_dict() for c in evaluate_claims(rest)]))
    assert [c["verdict"] for c in results["claims"]][1] == "not run"  # equivalence not selected
    report = (tmp_path / "tiny" / "report.html").read_text()
    assert report.index('id="claims"') < report.index('id="overview"')
    # the depth table says how every run stopped and at which epoch it was best
    for m in results["stages"]["depth"]["summary"]["models"]:
        for reason, best, last in zip(m["stop_reasons"], m["best_epochs"], m["epochs"], strict=True):
            assert reason.replace("_", " ") in report
            assert best is None or best <= last
    scaling = results["stages"]["scaling"]["summary"]
    assert [m["label"] for m in scaling["models"]] == ["factored attention (1 layer)", "transformer, 1 layer"]
    for m in scaling["models"]:
        assert [p["train_size"] for p in m["points"]] == [20, 40, 60]
        assert all(p["n_data_sets"] == 2 for p in m["points"])
    store = ResultsStore(tmp_path / "tiny" / "runs")
    sizes = {
        int(r.metrics["data_sizes"]["train"]) for r in store.completed()
        if r.run.task == "depth_study_run" and "train_size" in r.run.params
    }  # fmt: skip
    assert sizes == {20, 40, 60}
    depth = results["stages"]["depth"]["summary"]
    assert [m["label"] for m in depth["models"]] == ["factored attention (1 layer)", "transformer, 1 layer"]
    assert depth["models"][0]["relative_gap_to_factored"] == 0.0
    assert depth["models"][0]["relative_gap_stderr"] == 0.0
    assert results["stages"]["couplings"]["summary"]["run_id"] in results["stages"]["depth"]["runs"]
    store = ResultsStore(tmp_path / "tiny" / "runs")
    for stored in store.completed():
        if stored.run.task == "depth_study_run":
            assert stored.figure_paths()["training"].read_bytes().startswith(b"\x89PNG")
            assert stored.arrays()["test_losses"].shape == (40,)
    curves = results["stages"]["theory"]["summary"]["curves"]
    assert curves[0]["simulation"]["alpha"] == [1.0, 4.0]
    # the theory line passes through the simulated alphas exactly
    assert {1.0, 4.0} <= set(curves[0]["alpha"])


@pytest.mark.slow
def test_reproduce_quick_end_to_end(tmp_path: Path) -> None:
    """``attnpotts reproduce --quick``: every artifact, the schema, the report's numbers."""
    import time

    out = tmp_path / "quick"
    cpu0 = time.process_time()  # --quick runs inline: this process does all the work
    assert main(["reproduce", "--quick", "--out", str(out), "--no-progress"]) == 0
    cpu = time.process_time() - cpu0
    results = check_artifacts(out, STAGES)
    depth = results["stages"]["depth"]["summary"]
    cfg = ReproduceConfig.preset("quick")
    assert [m["n_layers"] for m in depth["models"]] == [None, *cfg.depths]
    fac = depth["models"][0]
    for m in depth["models"]:
        assert m["test_loss"] > 0 and m["test_loss_stderr"] > 0
        assert m["within_tolerance"] == (m["test_loss"] <= (1 + cfg.match_tolerance) * fac["test_loss"])
    matching = [m["n_layers"] for m in depth["models"][1:] if m["within_tolerance"]]
    assert depth["layers_to_match"] == (min(matching) if matching else None)
    report = (out / "report.html").read_text()
    if depth["layers_to_match"] is None:
        assert "No transformer with up to" in report
    else:
        assert "A vanilla transformer needs" in report
    theory = results["stages"]["theory"]["summary"]
    assert theory["n_agree"] == sum(sum(c["simulation"]["agree"]) for c in theory["curves"])
    coup = results["stages"]["couplings"]["summary"]
    assert -1 <= coup["attention_correlation"] <= 1
    assert results["stages"]["equivalence"]["summary"]["agree"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["depth"]["optimal_loss"] == depth["optimal_loss"]
    # CPU time, not wall time: a loaded machine must not fail the test (about 15 s when measured)
    assert cpu < 60, f"--quick took {cpu:.0f} CPU s (budget 1 minute)"
    assert np.isfinite(results["timings"]["total_s"])


def _without_timings(obj: Any) -> Any:
    """The results minus wall-clock measurements (the only thing allowed to differ)."""
    if isinstance(obj, dict):
        return {
            k: _without_timings(v) for k, v in obj.items() if k not in {"train_time_s", "wall_s", "train_cpu_s"}
        }
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


@pytest.mark.usefixtures("dask_distributed")
@pytest.mark.slow
def test_reproduce_identical_on_every_executor(tmp_path: Path) -> None:
    """--quick inline, on 2 local processes and on Dask clusters (one running, one the executor's
    own): the same numbers."""
    from dask.distributed import LocalCluster

    from attnpotts.experiments import DaskExecutor, LocalExecutor

    cfg = ReproduceConfig.preset("quick")
    inline = reproduce(cfg, tmp_path / "inline", executor=LocalExecutor(1)).results
    procs = reproduce(cfg, tmp_path / "procs", executor=LocalExecutor(2)).results
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        ex = DaskExecutor(cluster.scheduler_address)
        try:
            dask = reproduce(cfg, tmp_path / "dask", executor=ex).results
        finally:
            ex.close()
    own = DaskExecutor(n_workers=2)  # a local cluster of the executor's own
    try:
        dask_own = reproduce(cfg, tmp_path / "dask-own", executor=own).results
    finally:
        own.close()
    assert _without_timings(procs["stages"]) == _without_timings(inline["stages"])
    assert _without_timings(dask["stages"]) == _without_timings(inline["stages"])
    assert _without_timings(dask_own["stages"]) == _without_timings(inline["stages"])
    assert dask["executor"]["kind"] == "dask" and procs["executor"]["n_workers"] == 2


def test_theory_stage_handles_unconverged_points(tmp_path: Path) -> None:
    """A theory point that did not converge is null in the JSON, off the line, never 'agreeing'."""
    from attnpotts.experiments import StoredRun
    from attnpotts.experiments.reproduce import (
        StageContext,
        theory_curve_spec,
        theory_simulation_spec,
    )
    from attnpotts.experiments.reproduce.stages import stage_theory
    from attnpotts.experiments.store import ResultsStore as Store
    from attnpotts.storage import to_jsonable

    cfg = ReproduceConfig.preset("quick", theory_lambdas=(0.1,), theory_alphas=(1.0, 2.0),
                                 theory_curve_points=2, simulation_seeds=2)
    curve_runs = theory_curve_spec(cfg).expand()
    sim_runs = theory_simulation_spec(cfg).expand()
    curve = StoredRun(tmp_path, curve_runs[0], {
        "alpha": [1.0, 2.0], "eps_g": [1.0, 0.9], "eps_opt": [0.5, 0.5],
        "converged": [True, False],
    }, {}, {})
    sims = [
        StoredRun(tmp_path, r, {"alpha": [1.0, 2.0], "eps_g": [1.0 + d, 0.9 + d]}, {}, {})
        for r, d in zip(sim_runs, (0.001, -0.001), strict=True)
    ]

    class FakeContext(StageContext):
        def run(self, *specs: Any, first: Any = None) -> None:
            pass

        def results(self, spec: Any) -> list[StoredRun]:
            return [curve] if spec.name == "theory-curves" else sims

    ctx = FakeContext(config=cfg, store=Store(tmp_path), executor=None, progress=False)  # type: ignore[arg-type]
    out = stage_theory(ctx)
    summary = to_jsonable(out.summary)
    c = summary["curves"][0]
    assert c["eps_g"] == [1.0, None]
    assert c["simulation"]["agree"] == [True, False]
    assert summary["n_agree"] == 1 and summary["n_points"] == 2
    assert summary["all_converged"] is False
    assert summary["max_relative_deviation"] == pytest.approx(0.0, abs=1e-12)
    assert out.figures["learning_curves"].startswith(b"\x89PNG")


@pytest.mark.usefixtures("dask_distributed")
def test_memory_limit_counts_the_dask_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--memory-limit-gb holds for Dask workers as for local ones: the per-worker estimate times
    the workers (a local cluster's before it starts, a running cluster's as it reports them)."""
    import re

    from dask.distributed import LocalCluster

    from attnpotts.cli.common import EXIT_CODES

    def refused(argv: list[str]) -> float:
        """The estimate (GiB) of a refused command, after checking the refusal."""
        out = tmp_path / "o"
        assert main([*argv, "--out", str(out)]) == EXIT_CODES["bad_input"]
        err = capsys.readouterr().err
        assert "--memory-limit-gb" in err and not out.exists(), err
        return float(re.findall(r"would need about ([0-9.e+]+) GiB", err)[0])

    base = ["reproduce", "--quick", "--executor", "dask"]
    one = refused([*base, "--workers", "1", "--memory-limit-gb", "0.001"])
    two = refused([*base, "--workers", "2", "--memory-limit-gb", "0.001"])
    assert two > one  # the workers count
    limit = ["--memory-limit-gb", f"{(one + two) / 2:.6f}"]  # one worker fits, two do not
    assert refused([*base, "--workers", "2", *limit]) == two
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        assert refused([*base, "--address", cluster.scheduler_address, *limit]) == two
