from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from attnpotts.errors import ValidationError
from attnpotts.experiments import (
    DaskExecutor,
    ExperimentSpec,
    LocalExecutor,
    ResultsStore,
    make_executor,
    run_experiment,
)


def _specs() -> list[ExperimentSpec]:
    return [
        ExperimentSpec(
            name="eq-stats", task="toy_stats", seed=11, params={"n": 50, "loc": 0.0, "scale": 1.0},
            sweep={"loc": [0.0, 1.0, -2.0]}, n_seeds=2,
        ),
        ExperimentSpec(
            name="eq-torch", task="toy_torch", seed=5, params={"n": 64, "d": 8, "steps": 30},
            n_seeds=3,
        ),
    ]


def _collect(root: Path, executor: object) -> dict[str, tuple[dict[str, object], dict[str, bytes]]]:
    store = ResultsStore(root)
    out = {}
    for spec in _specs():
        rep = run_experiment(spec, store, executor)  # type: ignore[arg-type]
        assert rep.ok
        for stored in rep.results(store):
            arrays = {k: v.tobytes() for k, v in stored.arrays().items()}
            out[stored.run.run_id] = (stored.metrics, arrays)
    return out


@pytest.mark.usefixtures("dask_distributed")
def test_local_inline_processes_and_dask_agree(tmp_path: Path, toy: ModuleType) -> None:
    """The same specs give bit-identical metrics and arrays on every executor."""
    from dask.distributed import LocalCluster

    inline = _collect(tmp_path / "inline", LocalExecutor(1))
    procs = _collect(tmp_path / "procs", LocalExecutor(2))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        ex = DaskExecutor(cluster.scheduler_address)
        try:
            assert ex.describe()["n_workers"] == 2
            assert ex.describe()["cluster"] == "external"
            dask = _collect(tmp_path / "dask", ex)
        finally:
            ex.close()
    assert len(inline) == 9
    assert procs == inline
    assert dask == inline
    # the workers really were other processes
    pids = {ResultsStore(tmp_path / "procs").load(r).timings["pid"]
            for s in _specs() for r in s.expand()}
    assert len(pids) >= 1 and __import__("os").getpid() not in pids
    losses = [m["loss"] for m, _ in inline.values() if "loss" in m]
    assert len(losses) == 3 and np.all(np.isfinite(losses))


@pytest.mark.usefixtures("dask_distributed")
def test_dask_executor_with_a_local_cluster_of_its_own() -> None:
    """Without an address, the Dask executor starts a local cluster and closes it with itself
    (its results equal the other executors': tests/experiments/test_reproduce.py, slow)."""
    own = make_executor("dask", n_workers=2)
    try:
        assert isinstance(own, DaskExecutor)
        assert own.describe()["n_workers"] == 2 and own.describe()["cluster"] == "local"
        cluster = own._cluster
    finally:
        own.close()
    assert cluster.status.name == "closed" and own._cluster is None


def test_make_executor_errors() -> None:
    assert isinstance(make_executor("local", n_workers=2), LocalExecutor)
    with pytest.raises(ValidationError, match="exactly one of address"):
        DaskExecutor()
    with pytest.raises(ValidationError, match="exactly one of address"):
        DaskExecutor("h:1", n_workers=2)
    with pytest.raises(ValidationError, match="n_workers must be an integer >= 1"):
        DaskExecutor(n_workers=0)
    with pytest.raises(ValidationError, match="only for --executor dask"):
        make_executor("local", address="h:1")
    with pytest.raises(ValidationError, match="'local' or 'dask'"):
        make_executor("mpi")
    with pytest.raises(ValidationError, match="n_workers"):
        LocalExecutor(0)


def test_without_dask_the_dask_executor_is_a_clean_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """dask is an optional extra: without it ``--executor dask`` says what to install (exit 2),
    not an internal error, and writes nothing."""
    import sys

    from attnpotts.cli.main import main
    from attnpotts.errors import MissingDependencyError

    for name in ("dask", "dask.distributed", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'attnpotts\[dask\]'"):
        make_executor("dask", n_workers=1)
    out = tmp_path / "o"
    assert main(["reproduce", "--quick", "--executor", "dask", "--workers", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "attnpotts[dask]" in err and "bug" not in err, err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.usefixtures("dask_distributed")
def test_dask_unreachable_address() -> None:
    with pytest.raises(ConnectionError, match="cannot reach a Dask scheduler"):
        DaskExecutor("127.0.0.1:9", timeout_s=1.0)


def test_worker_crash_is_a_failure_and_resume_completes(
    tmp_path: Path, toy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process that dies fails its runs cleanly; the next call computes what is missing."""
    from attnpotts.experiments import RunFailedError

    fail_dir = tmp_path / "fail"
    fail_dir.mkdir()
    (fail_dir / "fail-0").touch()
    monkeypatch.setenv(toy.FAIL_ENV, str(fail_dir))
    spec = ExperimentSpec(name="c", task="toy_crash", params={"value": 0}, sweep={"value": [0, 1, 2]})
    store = ResultsStore(tmp_path / "store")
    with pytest.raises(RunFailedError) as info:
        run_experiment(spec, store, LocalExecutor(2))
    failures = info.value.report.failures
    assert any(f.run.params["value"] == 0 for f in failures)
    assert all("worker failed" in f.message for f in failures)
    assert len(store.completed()) + len(failures) == 3
    (fail_dir / "fail-0").unlink()
    rep = run_experiment(spec, store, LocalExecutor(2))
    assert rep.ok and len(rep.computed) == len(failures)
    assert sorted(s.metrics["value"] for s in store.completed()) == [0, 1, 2]
