"""Progress of the pipeline: rough run costs and the time left (never used for results).

:func:`estimated_cost` orders the submission (longest first keeps workers busy) and feeds
:class:`Eta`, which rescales the estimates by the speed observed so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..spec import RunSpec

__all__ = ["Eta", "estimated_cost"]

#: Rough CPU seconds per unit of work of the built-in tasks (measured on a 2-core machine; only
#: their ratios matter for the ETA, which is rescaled by the observed speed as runs finish).
_COST = {
    "factored_per_seq_epoch": 1.2e-4,  # L-BFGS, per sequence and epoch at L = q = 20 (~8 epochs)
    "factored_epochs": 10,
    "transformer_per_token_layer": 2.1e-4,  # per masked copy and layer at L = 20, width 64
    "transformer_per_token": 0.4e-4,  # embedding, read-out, optimizer
    "transformer_epochs": 50,  # default run: early stops after 31-64 epochs
    "run_overhead": 3.0,  # test evaluation, coupling recovery, figures
    "theory_curve": 5.0,
    "theory_simulation": 1.0,
    "equivalence_check": 0.1,
}


def estimated_cost(run: RunSpec) -> float:
    """Rough CPU seconds of a run (for the order of submission and the ETA; never for results)."""
    p = run.params
    if run.task != "depth_study_run":
        return _COST.get(run.task, 1.0)
    data, training, model = p["data"], p["training"], p["model"]
    M = int(p.get("train_size", data["n_train"]))
    L, q = int(data["n_sites"]), int(data["n_states"])
    if model["kind"] == "transformer":
        epochs = min(int(training["max_epochs"]), _COST["transformer_epochs"])
        masking = training.get("masking", "one")
        per_seq = {"all": L, "copies": int(training.get("n_mask_copies", L)), "one": 1}.get(masking, 0.15 * L)
        # measured: width 32 costs about half of width 64 per token (small matrices: overheads)
        width = int(model.get("width", 64)) / 64.0
        per_token = _COST["transformer_per_token"] + _COST["transformer_per_token_layer"] * width * int(
            model.get("n_layers", 1)
        )
        return _COST["run_overhead"] + per_token * (L / 20.0) * M * per_seq * epochs
    epochs = min(int(training["max_epochs"]), _COST["factored_epochs"])
    return _COST["run_overhead"] + _COST["factored_per_seq_epoch"] * (L / 20.0) ** 2 * (q / 20.0) * M * epochs




@dataclass
class Eta:
    """Progress of the whole pipeline: runs done, and the time left from the runs' cost estimates.

    The estimates (:func:`estimated_cost`, CPU seconds) are converted to wall time by the speed
    observed so far (elapsed wall seconds per estimated second of the runs computed), so a loaded
    machine, several workers or a wrong constant all correct themselves as runs finish.
    """

    costs: dict[str, float]
    n_workers: int
    report: Callable[[dict[str, Any]], None]
    t0: float = field(default_factory=time.perf_counter)
    done: set[str] = field(default_factory=set)
    computed_cost: float = 0.0
    stage: str = ""

    def update(self, run: RunSpec, outcome: Any) -> None:
        """Record a finished (``outcome``) or already stored (``None``) run and report."""
        if run.run_id in self.done:
            return
        self.done.add(run.run_id)
        cost = self.costs.setdefault(run.run_id, estimated_cost(run))
        if outcome is not None:
            self.computed_cost += cost
        elapsed = time.perf_counter() - self.t0
        remaining = sum(c for rid, c in self.costs.items() if rid not in self.done)
        rate = elapsed / self.computed_cost if self.computed_cost > 0 else 1.0 / max(self.n_workers, 1)
        self.report({
            "stage": self.stage, "done": len(self.done), "total": len(self.costs),
            "elapsed_s": elapsed, "eta_s": remaining * rate,
        })  # fmt: skip


