"""Cheap tasks for the experiment-machinery tests (imported by worker processes by module name).

The tests put this folder on ``sys.path`` (see ``conftest.py``); spawned local workers and Dask
workers inherit ``sys.path`` and import this module to find the tasks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from attnpotts.experiments import TaskResult, register_task

#: Each invocation of a logging task appends a line here (when the variable is set).
LOG_ENV = "ATTNPOTTS_TOY_LOG"
#: A task fails while a file ``fail-<value>`` exists in this folder (when the variable is set).
FAIL_ENV = "ATTNPOTTS_TOY_FAIL_DIR"


def _log(params: Mapping[str, Any]) -> None:
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{params['value']}\n")


@register_task("toy_stats")
def toy_stats(params: Mapping[str, Any], seed: np.random.SeedSequence) -> TaskResult:
    """Seeded Gaussian sample: its moments as metrics and the sample itself as an array."""
    rng = np.random.default_rng(seed)
    x = params["loc"] + params["scale"] * rng.standard_normal(int(params["n"]))
    return TaskResult(
        metrics={"mean": float(x.mean()), "var": float(x.var()), "first": float(x[0])},
        arrays={"x": x},
    )


@register_task("toy_torch")
def toy_torch(params: Mapping[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """A few steps of seeded least squares in torch (checks that torch is deterministic too)."""
    import torch

    from attnpotts.random import torch_generator

    gen = torch_generator(seed)
    n, d = int(params["n"]), int(params["d"])
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = X @ torch.randn(d, generator=gen, dtype=torch.float64) + 0.1 * torch.randn(
        n, generator=gen, dtype=torch.float64
    )
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    for _ in range(int(params["steps"])):
        opt.zero_grad()
        loss = ((X @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
    return {"loss": float(loss.detach()), "w": w.detach().tolist()}


@register_task("toy_slow")
def toy_slow(params: Mapping[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Log the invocation, sleep, return a seeded number (for kill-and-resume tests)."""
    _log(params)
    time.sleep(float(params["sleep"]))
    return {"value": params["value"], "u": float(np.random.default_rng(seed).random())}


@register_task("toy_flaky")
def toy_flaky(params: Mapping[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Log the invocation; raise while the failure marker of this value exists."""
    _log(params)
    fail_dir = os.environ.get(FAIL_ENV)
    if fail_dir and (Path(fail_dir) / f"fail-{params['value']}").exists():
        raise RuntimeError(f"toy failure for value {params['value']}")
    return {"value": params["value"], "u": float(np.random.default_rng(seed).random())}


@register_task("toy_crash")
def toy_crash(params: Mapping[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Kill the worker process outright while the crash marker of this value exists."""
    fail_dir = os.environ.get(FAIL_ENV)
    if fail_dir and (Path(fail_dir) / f"fail-{params['value']}").exists():
        os._exit(3)
    return {"value": params["value"]}
