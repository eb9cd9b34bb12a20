from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import attnpotts.storage as storage
from attnpotts.errors import DataFormatError, ValidationError
from attnpotts.experiments import (
    ExperimentSpec,
    ResultsStore,
    RunSpec,
    StoreLockedError,
    TaskResult,
    run,
)
from attnpotts.storage import environment_info


def _png() -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _runs() -> list[RunSpec]:
    return ExperimentSpec(
        name="s", task="toy_stats", seed=1, params={"n": 5, "loc": 0.0, "scale": 2.0},
        sweep={"loc": [0.0, 1.0]},
    ).expand()


def test_run_is_pure_and_seeded(toy: ModuleType) -> None:
    r = _runs()[1]
    a, b = run(r), run(r)
    assert a.output.metrics == b.output.metrics
    np.testing.assert_array_equal(a.output.arrays["x"], b.output.arrays["x"])
    expected = 1.0 + 2.0 * np.random.default_rng(r.seed_sequence).standard_normal(5)
    np.testing.assert_array_equal(a.output.arrays["x"], expected)
    other = run(r, seed=123)
    assert other.output.metrics != a.output.metrics
    assert other.run.seed_entropy == 123 and other.run.params == r.params
    assert other.run.run_id != r.run_id
    assert a.timings["wall_s"] >= 0 and a.timings["cpu_s"] >= 0
    assert a.environment == environment_info()


def test_write_and_load_round_trip(tmp_path: Path, toy: ModuleType) -> None:
    store = ResultsStore(tmp_path / "store")
    r = _runs()[0]
    res = run(r)
    png = _png()
    res = type(res)(
        run=res.run,
        output=TaskResult(metrics=res.output.metrics, arrays=res.output.arrays, figures={"f": png}),
        timings=res.timings,
        environment=res.environment,
    )
    path = store.write(res)
    assert path == tmp_path / "store" / r.run_id
    names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert names == [
        ".attnpotts-output", "arrays.npz", "config.json", "environment.json", "figures/f.png", "metrics.json",
        "timings.json",
    ]
    config = json.loads((path / "config.json").read_text())
    assert config["seed"] == {"entropy": 1, "spawn_key": [0]}
    assert config["config_hash"] == r.config_hash
    loaded = store.load(r)
    assert loaded.metrics == res.output.metrics
    assert loaded.run == r
    np.testing.assert_array_equal(loaded.arrays()["x"], res.output.arrays["x"])
    assert loaded.figure_paths()["f"].read_bytes() == png
    assert loaded.environment["numpy"] == np.__version__
    assert [s.run for s in store.completed()] == [r]
    with pytest.raises(FileExistsError):
        store.write(res)
    with pytest.raises(FileNotFoundError, match="not in"):
        store.load(_runs()[1])


def test_load_detects_tampering(tmp_path: Path, toy: ModuleType) -> None:
    store = ResultsStore(tmp_path)
    r = _runs()[0]
    path = store.write(run(r))
    cfg = json.loads((path / "config.json").read_text())
    cfg["params"]["n"] = 6
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataFormatError, match="does not match"):
        store.load(r)


def test_write_is_atomic(tmp_path: Path, toy: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that dies after some files leaves neither the run folder nor a temporary."""
    store = ResultsStore(tmp_path)
    r = _runs()[0]
    res = run(r)
    real = storage.atomic_write_json

    def failing(path: str | os.PathLike[str], obj: object) -> Path:
        if Path(path).name == "metrics.json":
            raise OSError("disk full (simulated)")
        return real(path, obj)

    monkeypatch.setattr("attnpotts.experiments.store.atomic_write_json", failing)
    with pytest.raises(OSError, match="disk full"):
        store.write(res)
    assert list(tmp_path.iterdir()) == []
    assert not store.is_complete(r)


def test_killed_writer_leaves_only_a_hidden_temporary(tmp_path: Path) -> None:
    """SIGKILL inside atomic_output_dir: the run folder never appears; remove_stale cleans up."""
    script = (
        "import os, signal, sys\n"
        "from attnpotts.storage import atomic_output_dir, atomic_write_text\n"
        "with atomic_output_dir(sys.argv[1]) as tmp:\n"
        "    atomic_write_text(tmp / 'config.json', '{}')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    target = tmp_path / "toy_stats-000000000000"
    proc = subprocess.run([sys.executable, "-c", script, str(target)], check=False)
    assert proc.returncode == -9
    assert not target.exists()
    store = ResultsStore(tmp_path)
    stale = store.stale_temporaries()
    assert len(stale) == 1 and stale[0].name.startswith(f".{target.name}.tmp-")
    assert store.completed() == []
    with store.lock():
        assert store.remove_stale() == stale
    assert list(tmp_path.iterdir()) == []


def test_lock(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    with store.lock(), pytest.raises(StoreLockedError, match="in use by pid"), store.lock():
        pass
    assert not (tmp_path / ".lock").exists()
    # a lock left by a dead process is taken over
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    import socket

    (tmp_path / ".lock").write_text(json.dumps({"host": socket.gethostname(),
                                                "pid": int(proc.stdout)}))
    with store.lock():
        pass


def test_task_result_validation() -> None:
    with pytest.raises(ValidationError, match="PNG"):
        TaskResult(metrics={}, figures={"f": b"GIF89a"})
    with pytest.raises(ValidationError, match="artifact name"):
        TaskResult(metrics={}, arrays={"a/b": np.zeros(1)})
