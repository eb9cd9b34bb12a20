"""Statistics of stored runs shared by the stages: selection on validation, means with standard errors.

Every rule here is stated in the results (``docs/experiments.md``): the regularisation of each
training seed is chosen on the validation set, never on the test set; errors of means over training
seeds keep the shared test-set error, errors over data sets are between-data-set errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..store import StoredRun

__all__ = [
    "combine",
    "double_centre",
    "mean_se",
    "mean_test_losses",
    "regularisation",
    "select",
    "stopped_early",
    "training_cpu_s",
]


def combine(values: Sequence[float], stderrs: Sequence[float]) -> tuple[float, float]:
    """Mean over training seeds and its standard error.

    All seeds share the test set, so the test-set error does not average out: the total error is
    ``sqrt(mean(se_test)^2 + var_seeds / n)`` (the second term only with several seeds).
    """
    v = np.asarray(values, dtype=float)
    se = float(np.mean(np.asarray(stderrs, dtype=float)))
    between = float(v.var(ddof=1) / v.size) if v.size > 1 else 0.0
    return float(v.mean()), math.sqrt(se**2 + between)


def select(runs: list[StoredRun]) -> list[StoredRun]:
    """Per training seed (replicate), the run of the regularisation with the lowest validation loss."""
    by_rep: dict[int, list[StoredRun]] = {}
    for r in runs:
        by_rep.setdefault(r.run.replicate, []).append(r)

    def val(r: StoredRun) -> float:
        t = r.metrics["training"]
        v = t.get("best_validation_loss")
        if v is None:
            v = t.get("final_validation_loss")
        return math.inf if v is None else float(v)

    return [min(group, key=val) for _, group in sorted(by_rep.items())]


def regularisation(run: StoredRun) -> dict[str, Any]:
    """The regularisation a run was trained with (its grid coordinates)."""
    p = run.run.params
    if p["model"]["kind"] == "transformer":
        return {"dropout": p["model"]["dropout"], "weight_decay": p["training"]["weight_decay"]}
    return {"coupling_l2": p["training"]["coupling_l2"]}


def stopped_early(run: StoredRun, patience: int) -> bool:
    """The run ended by early stopping, its best epoch at least ``patience`` epochs before the last."""
    t = run.metrics["training"]
    best = t.get("best_epoch")
    return bool(
        t.get("stop_reason") == "early_stopping" and best is not None
        and int(t["epochs"]) - int(best) >= patience
    )  # fmt: skip


def training_cpu_s(run: StoredRun) -> float:
    """Process CPU seconds of a run's training (older runs: the whole task's CPU time)."""
    v = run.metrics.get("training_cpu_s")
    return float(v) if v is not None else float(run.timings.get("cpu_s", math.nan))


def mean_test_losses(runs: list[StoredRun]) -> np.ndarray:
    """Per-test-sequence losses ``(M_test,)`` averaged over the runs (training seeds)."""
    return np.mean([r.arrays()["test_losses"] for r in runs], axis=0)


def mean_se(values: Sequence[float], stderrs: Sequence[float]) -> tuple[float, float]:
    """Mean over data sets and its standard error (between data sets; one data set: its own s.e.)."""
    v = np.asarray(values, dtype=float)
    if v.size > 1:
        return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))
    return float(v[0]), float(stderrs[0])


def double_centre(m: np.ndarray) -> np.ndarray:
    """``m (q, q)`` minus its row and column means (plus the grand mean): what fields cannot absorb."""
    return m - m.mean(0, keepdims=True) - m.mean(1, keepdims=True) + m.mean()
