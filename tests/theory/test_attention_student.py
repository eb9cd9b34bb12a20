"""The factored-attention student (project training loop) minimises the scenario's objective."""

from __future__ import annotations

import numpy as np
import pytest

from attnpotts.theory import (
    Scenario,
    fit_convex,
    generate_data,
    make_ucol,
    simulate,
    solve_factored,
)
from attnpotts.workflows.attention_student import fit_attention


@pytest.mark.parametrize("ucol", [np.eye(3), make_ucol("gaussian", 3, seed=4)])
def test_attention_student_equals_convex_solver(ucol: np.ndarray) -> None:
    # Same data, same convex objective: the trained attention row is the L-BFGS row.
    scn = Scenario(ucol, beta=2.0)
    data = generate_data(scn, 25, 50, n_test=200, seed=2)
    ref = fit_convex(data, 50, 0.3, {})
    got = fit_attention(data, 50, 0.3, {})
    scale = np.abs(ref["row"]).max()
    np.testing.assert_allclose(got["row"], ref["row"], atol=1e-5 * scale)
    np.testing.assert_allclose(got["test_logits"], ref["test_logits"], atol=1e-5 * scale)


def test_simulate_accepts_the_attention_student() -> None:
    scn = Scenario(np.eye(2), beta=1.0)
    att = simulate(scn, [1.0], 0.5, 20, n_seeds=2, n_test=300, seed=0, student=fit_attention)
    conv = simulate(scn, [1.0], 0.5, 20, n_seeds=2, n_test=300, seed=0)
    assert att[0].student == "fit_attention"
    for key in ("eps_g", "m", "q"):
        assert att[0].mean[key] == pytest.approx(conv[0].mean[key], rel=1e-5)


@pytest.mark.slow
def test_attention_student_matches_theory() -> None:
    # The project's factored-attention training (value matrix fixed to Ucol, L-BFGS through
    # attnpotts.training.train) against the replica theory: q = 3, Ucol = I, beta = 2,
    # lambda = 0.5, N = 150, 6 teachers (about 2.5 minutes). Tolerance: 2 s.e. + 2%.
    scn = Scenario(np.eye(3), beta=2.0)
    sims = simulate(
        scn, (1.0, 4.0), 0.5, 150, n_seeds=6, n_test=4000, seed=3, student=fit_attention
    )
    for sim in sims:
        th = solve_factored(scn, sim.alpha, 0.5)
        for key, value in (("eps_g", th.eps_g), ("m", th.order["m"]), ("q", th.order["q"])):
            assert abs(sim.mean[key] - value) < 2 * sim.stderr[key] + 0.02 * abs(value), key
