"""Worker processes die with their parent (kill -9 of reproduce leaves no workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

_PARENT = """
import multiprocessing, time
from concurrent.futures import ProcessPoolExecutor
from attnpotts.experiments.executors import _init_worker

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=_init_worker, initargs=(1,))
    fut = pool.submit(__import__("os").getpid)
    print(fut.result(), flush=True)
    pool.submit(time.sleep, 60)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_pool_workers_die_when_the_parent_is_killed(tmp_path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(_PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


_DASK_PARENT = """
import ctypes, os, sys, time
from attnpotts.experiments import DaskExecutor


def hold_the_gil(marker):
    # a call that holds the interpreter lock: no Python thread of the worker runs until it
    # returns, so only the kernel can end the worker then
    open(marker, "w").close()
    ctypes.PyDLL(None).sleep(60)


if __name__ == "__main__":
    ex = DaskExecutor(n_workers=2)
    pids = sorted(ex.client.run(os.getpid).values())
    markers = [os.path.join(sys.argv[1], f"busy-{k}") for k in range(2)]
    futures = [ex.client.submit(hold_the_gil, m, pure=False, workers=[w], allow_other_workers=False)
               for m, w in zip(markers, sorted(ex.client.scheduler_info()["workers"]))]
    while not all(os.path.exists(m) for m in markers):
        time.sleep(0.05)
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(120)
"""


@pytest.mark.usefixtures("dask_distributed")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_dask_workers_die_when_the_parent_is_killed(tmp_path) -> None:
    """A local Dask cluster started by the executor leaves no workers after kill -9 of its parent,
    even with every worker inside a call that holds the interpreter lock."""
    script = tmp_path / "parent.py"
    script.write_text(_DASK_PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, env=env)  # fmt: skip
    workers: list[int] = []
    try:
        assert parent.stdout is not None
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(w) for w in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(w) for w in workers)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        for w in workers:  # a failed check leaves no workers behind either
            if _alive(w):
                os.kill(w, signal.SIGKILL)


_CLI = "import sys; from attnpotts.cli.main import main; sys.exit(main(sys.argv[1:]))"


def _kill_when(argv: list[str], ready: Callable[[], bool], timeout_s: float = 120.0) -> None:
    """Run ``attnpotts ARGV`` in a child process and ``kill -9`` it once ``ready()`` holds."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", _CLI, *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the command ended before it could be killed"
        assert ready(), "the command never reached the point to kill it at"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporaries, old copies and locks anywhere below ``folder``."""
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob(".*")
        if ".tmp" in p.name or ".old-" in p.name or p.name.endswith(".lock") or p.name == ".lock"
    )  # fmt: skip


@pytest.mark.slow
def test_train_killed_then_resumed_leaves_no_temporaries(tmp_path: Path) -> None:
    """kill -9 of ``train`` leaves its checkpoint in a hidden folder; resuming from it finishes
    into --out and removes that folder and the lock."""
    from attnpotts.cli.main import main

    rng = np.random.default_rng(0)
    aln = tmp_path / "a.fasta"
    aln.write_text("".join(f">s{k}\n{''.join(rng.choice(list('ACDEFG'), 8))}\n" for k in range(40)))
    work = tmp_path / "w"
    work.mkdir()
    base = ["train", "--data", str(aln), "--batch-size", "20", "--no-progress"]
    _kill_when([*base, "--epochs", "100000", "--out", str(work / "o")],
               lambda: any(work.glob(".o.tmp-*/model.pt")))  # fmt: skip
    (stale,) = work.glob(".o.tmp-*")
    assert not (work / "o").exists()
    assert main([*base, "--epochs", "2", "--resume", str(stale / "model.pt"), "--out", str(work / "o")]) == 0
    assert sorted(p.name for p in work.iterdir()) == ["o"]
    assert _leftovers(work) == []


@pytest.mark.slow
def test_reproduce_killed_then_resumed_leaves_no_temporaries(tmp_path: Path) -> None:
    """kill -9 of ``reproduce`` after some runs are stored; the rerun resumes, finishes, and leaves
    no temporary folder, temporary file or lock."""
    import json

    from attnpotts.cli.main import main

    out = tmp_path / "r"
    argv = ["reproduce", "--quick", "--stages", "theory,equivalence", "--no-progress", "--out", str(out)]
    runs = out / "runs"

    def some_runs_stored() -> bool:
        return runs.is_dir() and sum(1 for p in runs.iterdir() if not p.name.startswith(".")) >= 2

    _kill_when(argv, some_runs_stored)
    assert not (out / "results.json").exists()
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert sum(s["n_skipped"] for s in results["sweeps"]) >= 2  # resumed
    assert _leftovers(tmp_path) == []


_EXIT_NOW = """
import atexit, logging, sys, threading, time
from attnpotts.processes import exit_now

out, mode = sys.argv[1], sys.argv[2]
logging.basicConfig(filename=out + ".log", level=logging.INFO)
logging.getLogger("t").info("logged before the exit")
atexit.register(lambda: open(out + ".atexit", "w").write("ran"))
sys.stdout.write("unflushed line")  # no newline: still in the buffer at the exit


class Teardown:  # its __del__ runs only when the interpreter tears down (builtins kept)
    def __init__(self, path, opener=open):
        self.path, self.opener = path, opener

    def __del__(self):
        self.opener(self.path, "w").write("ran")


kept = Teardown(out + ".teardown")
if mode == "thread":  # a running thread: exit_now must wait for it like sys.exit
    threading.Thread(target=lambda: (time.sleep(0.5), open(out + ".thread", "w").write("done"))).start()
exit_now(3)
"""


@pytest.mark.parametrize("mode", ["plain", "thread"])
def test_exit_now_runs_what_teardown_would(tmp_path: Path, mode: str) -> None:
    """exit_now keeps the status, the atexit handlers, the log and the buffered stdout; with a
    thread still running it falls back to sys.exit, which waits for that thread."""
    base = tmp_path / "x"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", _EXIT_NOW, str(base), mode], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stdout == "unflushed line"
    assert (tmp_path / "x.atexit").read_text() == "ran"
    assert "logged before the exit" in (tmp_path / "x.log").read_text()
    assert (tmp_path / "x.thread").exists() == (mode == "thread")
    # the quick path skips the teardown; the fallback (sys.exit) has one, which the sentinel sees
    assert (tmp_path / "x.teardown").exists() == (mode == "thread")


def test_console_command_exit_statuses(tmp_path: Path) -> None:
    """``python -m attnpotts`` (the quick exit) keeps the statuses and the messages: 0 with the
    output printed, 2 with the error line for a missing alignment."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    ok = subprocess.run([sys.executable, "-m", "attnpotts", "--version"], env=env,
                        capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.strip()
    bad = subprocess.run(
        [sys.executable, "-m", "attnpotts", "contacts", str(tmp_path / "none.fasta"), "--out", str(tmp_path / "o")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("does not exist")
    assert not (tmp_path / "o").exists()
