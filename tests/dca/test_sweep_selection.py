"""The leave-one-family-out selection of ``benchmarks/sweep_factored.py --options`` (no fits)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def sweep(load_benchmark: Any) -> Any:
    return load_benchmark("sweep_factored")


def _runs(means: dict[str, dict[int, float]], memory: dict[str, int], families: int = 4) -> list[dict[str, Any]]:
    """Runs whose trace gives every family the same precision per (config, evaluation)."""
    return [
        {"config": c, "family": f"F{k}", "resolved": {"lbfgs_history": memory[c]},
         "top_L_gap_excluded": trace[max(trace)], "evaluations": max(trace) + 3,
         "trace": [{"evaluation": e, "gap_excluded": p} for e, p in sorted(trace.items())]}
        for c, trace in means.items() for k in range(families)
    ]


def test_cap_and_tolerance_choose_the_cheaper_memory(sweep: Any) -> None:
    means = {"small": {5: 0.5, 90: 0.880, 100: 0.880}, "large": {5: 0.5, 90: 0.884, 100: 0.95}}
    runs = _runs(means, {"small": 20, "large": 120})
    best = sweep._options_select(runs)  # no cap: the best mean anywhere
    assert best["chosen_on_all"] == {"config": "large", "evaluations": 100}
    capped = sweep._options_select(runs, max_evaluations=90)  # 100 evaluations exceed the cap
    assert capped["chosen_on_all"] == {"config": "large", "evaluations": 90}
    assert "large@100" not in capped["mean_by_candidate"] and capped["mean_at_end"] == {}
    tol = sweep._options_select(runs, max_evaluations=90, tolerance=0.005)  # 0.880 is within 0.005
    assert tol["chosen_on_all"] == {"config": "small", "evaluations": 90}
    assert all(r["config"] == "small" for r in tol["held_out"])
    strict = sweep._options_select(runs, max_evaluations=90, tolerance=0.003)  # 0.880 is not
    assert strict["chosen_on_all"] == {"config": "large", "evaluations": 90}
