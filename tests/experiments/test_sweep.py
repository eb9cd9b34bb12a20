from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from attnpotts.errors import ValidationError
from attnpotts.experiments import (
    ExperimentSpec,
    ResultsStore,
    RunFailedError,
    get_task,
    register_task,
    registered_tasks,
    run_experiment,
    run_runs,
)

HERE = Path(__file__).resolve().parent


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under the run folders with its modification time (ns) and content."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).parts[0].startswith(".")
    }


def test_sweep_then_resume_skips_everything(tmp_path: Path, toy: ModuleType) -> None:
    spec = ExperimentSpec(
        name="s", task="toy_stats", seed=3, params={"n": 4, "loc": 0.0, "scale": 1.0},
        sweep={"loc": [0.0, 1.0, 2.0]}, n_seeds=2,
    )
    store = ResultsStore(tmp_path)
    rep = run_experiment(spec, store)
    assert rep.ok and len(rep.computed) == 6 and rep.skipped == ()
    before = _snapshot(tmp_path)
    rep2 = run_experiment(spec, store)
    assert rep2.computed == () and sorted(rep2.skipped) == sorted(rep.computed)
    assert _snapshot(tmp_path) == before
    results = rep2.results(store)
    assert [r.run for r in results] == spec.expand()
    # a grown sweep computes only the new grid point
    bigger = ExperimentSpec(
        name="s", task="toy_stats", seed=3, params={"n": 4, "loc": 0.0, "scale": 1.0},
        sweep={"loc": [0.0, 1.0, 2.0, 3.0]}, n_seeds=2,
    )
    rep3 = run_experiment(bigger, store)
    assert len(rep3.computed) == 2 and len(rep3.skipped) == 6


def test_failed_runs_are_retried_alone(
    tmp_path: Path, toy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "calls.log"
    fail_dir = tmp_path / "fail"
    fail_dir.mkdir()
    monkeypatch.setenv(toy.LOG_ENV, str(log))
    monkeypatch.setenv(toy.FAIL_ENV, str(fail_dir))
    for v in (2, 5):
        (fail_dir / f"fail-{v}").touch()
    spec = ExperimentSpec(name="f", task="toy_flaky", params={"value": 0}, sweep={"value": list(range(7))})
    store = ResultsStore(tmp_path / "store")
    with pytest.raises(RunFailedError, match="2 of 7 runs failed") as info:
        run_experiment(spec, store)
    report = info.value.report
    assert sorted(f.run.params["value"] for f in report.failures) == [2, 5]
    assert "toy failure for value 2" in report.failures[0].traceback + report.failures[1].traceback
    assert len(store.completed()) == 5
    before = _snapshot(store.root)
    for v in (2, 5):
        (fail_dir / f"fail-{v}").unlink()
    log.write_text("")
    rep = run_experiment(spec, store)
    assert rep.ok and len(rep.computed) == 2 and len(rep.skipped) == 5
    assert sorted(log.read_text().split()) == ["2", "5"]  # only the missing runs ran again
    after = _snapshot(store.root)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing finished was touched
    assert len(store.completed()) == 7


_DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])
import toy_tasks  # registers the toy tasks
from attnpotts.experiments import ExperimentSpec, run_experiment
spec = ExperimentSpec(name="k", task="toy_slow", params={"value": 0, "sleep": float(sys.argv[3])},
                      sweep={"value": list(range(int(sys.argv[4])))})
run_experiment(spec, sys.argv[2])
"""


def test_sweep_killed_half_way_resumes(
    tmp_path: Path, toy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL the driver of a sweep mid-way; rerunning computes only the missing runs."""
    n_runs, sleep = 12, 0.5
    store_dir = tmp_path / "store"
    log = tmp_path / "calls.log"
    env = dict(os.environ, **{toy.LOG_ENV: str(log)})
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(HERE), str(store_dir), str(sleep), str(n_runs)],
        env=env,
        start_new_session=True,
    )
    store = ResultsStore(store_dir)
    deadline = time.monotonic() + 120
    try:
        while len(store.completed()) < 3:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done_first = {s.run.run_id for s in store.completed()}
    assert 3 <= len(done_first) < n_runs
    for s in store.completed():  # every folder that exists is complete
        assert s.metrics["value"] == s.run.params["value"]
    before = _snapshot(store_dir)
    first_calls = log.read_text().split()

    monkeypatch.setenv(toy.LOG_ENV, str(log))
    log.write_text("")
    spec = ExperimentSpec(name="k", task="toy_slow", params={"value": 0, "sleep": sleep},
                          sweep={"value": list(range(n_runs))})
    rep = run_experiment(spec, store)  # takes over the dead driver's lock
    assert set(rep.skipped) == done_first
    assert len(rep.computed) == n_runs - len(done_first)
    rerun = sorted(int(v) for v in log.read_text().split())
    done_values = sorted(s.metrics["value"] for s in store.completed() if s.run.run_id in done_first)
    assert rerun == sorted(set(range(n_runs)) - set(done_values))
    # the run in flight when killed was the only one started but not finished
    assert len(first_calls) in (len(done_first), len(done_first) + 1)
    after = _snapshot(store_dir)
    assert {k: v for k, v in after.items() if k in before} == before
    assert len(store.completed()) == n_runs and store.stale_temporaries() == []


def test_registry_errors(toy: ModuleType) -> None:
    with pytest.raises(ValidationError, match=r"unknown task 'nope'.*toy_stats"):
        get_task("nope")
    with pytest.raises(ValidationError, match="already registered"):
        register_task("toy_stats", lambda p, s: {})

    def local(params: Mapping[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
        return {}

    with pytest.raises(ValidationError, match="local function"):
        register_task("toy_local", local)
    assert registered_tasks()["toy_stats"] == "toy_tasks.toy_stats"


def test_duplicate_runs_rejected(tmp_path: Path, toy: ModuleType) -> None:
    runs = ExperimentSpec(name="d", task="toy_stats", params={"n": 1, "loc": 0.0, "scale": 1.0}).expand()
    with pytest.raises(ValidationError, match="appear twice"):
        run_runs(runs + runs, tmp_path)
