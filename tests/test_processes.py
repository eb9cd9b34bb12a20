"""Worker processes die with their parent (kill -9 of reproduce leaves no workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

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

if __name__ == "__main__":
    ex = DaskExecutor(n_workers=2)
    pids = sorted(ex.client.run(os.getpid).values())
    # each worker busy in a call that holds the interpreter lock (no Python thread of the worker
    # runs until it returns): only the kernel can end the worker then
    futures = [ex.client.submit(lambda k: ctypes.PyDLL(None).sleep(60), k, pure=False) for k in range(2)]
    time.sleep(1.0)
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_dask_workers_die_when_the_parent_is_killed(tmp_path) -> None:
    """A local Dask cluster started by the executor leaves no workers after kill -9 of its parent,
    even with every worker inside a call that holds the interpreter lock."""
    script = tmp_path / "parent.py"
    script.write_text(_DASK_PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
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
