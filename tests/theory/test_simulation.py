"""Finite-N simulations of the replica scenario, and (slow) theory against simulation."""

from __future__ import annotations

import numpy as np
import pytest

from attnpotts.errors import ValidationError
from attnpotts.theory import (
    Scenario,
    SolverOptions,
    generate_data,
    make_ucol,
    simulate,
    simulate_seed,
    solve_factored,
    solve_full,
)


def test_simulation_is_deterministic_given_the_seed() -> None:
    scn = Scenario(np.eye(3), beta=2.0)
    a = simulate_seed(scn, [0.5, 1.0], 0.1, 60, n_test=500, seed=3)
    b = simulate_seed(scn, [1.0, 0.5], 0.1, 60, n_test=500, seed=3)
    assert a == b
    c = simulate_seed(scn, [0.5, 1.0], 0.1, 60, n_test=500, seed=4)
    assert a != c


def test_test_set_entropy_matches_theory_optimal_loss() -> None:
    # The data generator and the theory's Gaussian integrals describe the same teacher: the
    # mean conditional entropy on test inputs estimates eps_opt (spherical teacher, N = 400).
    for ucol in (np.eye(3), make_ucol("gaussian", 3, seed=2)):
        scn = Scenario(ucol, beta=2.0)
        sims = simulate(scn, [0.25], 1.0, 400, n_seeds=6, n_test=4000, seed=1)
        opts = SolverOptions(teacher_mean_nodes=5, gh_nodes=12, error_estimate=False)
        theory = solve_factored(scn, 0.25, 1.0, options=opts)
        sim = sims[0]
        # Tolerance: 3 standard errors plus the O(1/N) finite-size bias.
        tol = 3 * sim.stderr["eps_opt"] + 0.01 * theory.eps_opt
        assert abs(sim.mean["eps_opt"] - theory.eps_opt) < tol


def test_students_fit_and_full_student_is_worse() -> None:
    scn = Scenario(np.eye(3), beta=3.0)
    conv = simulate(scn, [2.0], 0.1, 80, n_seeds=2, n_test=2000, seed=0)[0]
    full = simulate(scn, [2.0], 0.1, 80, n_seeds=2, n_test=2000, seed=0, student="full")[0]
    assert conv.mean["kl"] > 0 and full.mean["kl"] > 0
    assert full.mean["eps_g"] > conv.mean["eps_g"]
    assert np.isnan(full.mean["m"])
    assert conv.to_dict()["n_seeds"] == 2


def test_simulation_bad_inputs() -> None:
    scn = Scenario(np.eye(3), beta=1.0)
    with pytest.raises(ValidationError, match="student"):
        simulate(scn, [1.0], 0.1, 50, student="attention")
    with pytest.raises(ValidationError, match="alphas"):
        simulate(scn, [], 0.1, 50)
    with pytest.raises(ValidationError, match="n_seeds"):
        simulate(scn, [1.0], 0.1, 50, n_seeds=0)


# Slow: theory against simulation at N = 500, 8 teachers per point, alphas 0.5, 2, 8, for
# q = 2, 3, 5, beta = 1, 3 and lambda = 0.1, 1 (Ucol = I): eps_g, q_ and m. Tolerance: 2 standard errors plus 2% of the theory value. With 4 teachers the standard error is
# itself too uncertain (3 degrees of freedom) and about one comparison in a hundred failed; 8
# teachers make the check reliable. About 8 minutes on a busy 2-core machine.
SLOW_N = 500
SLOW_SEEDS = 8
SLOW_ALPHAS = (0.5, 2.0, 8.0)


@pytest.mark.slow
@pytest.mark.parametrize("q", [2, 3, 5])
@pytest.mark.parametrize("beta", [1.0, 3.0])
@pytest.mark.parametrize("lam", [0.1, 1.0])
def test_theory_matches_simulation(q: int, beta: float, lam: float) -> None:
    scn = Scenario(np.eye(q), beta=beta)
    sims = simulate(scn, SLOW_ALPHAS, lam, SLOW_N, n_seeds=SLOW_SEEDS, n_test=10000, seed=11)
    prev = None
    for sim in sims:
        th = solve_factored(scn, sim.alpha, lam, init=prev)
        prev = th
        assert th.report.converged
        for key, value in (("eps_g", th.eps_g), ("q", th.order["q"]), ("m", th.order["m"])):
            tol = 2 * sim.stderr[key] + 0.02 * abs(value)
            assert abs(sim.mean[key] - value) < tol, (key, sim.alpha, sim.mean[key], value)


@pytest.mark.slow
def test_reference_point_at_n1000() -> None:
    # docs/theory.md: q = 3, Ucol = I, beta = 3, lambda = 0.1, rho = 1 agrees to about 1% at N = 1000.
    scn = Scenario(np.eye(3), beta=3.0)
    sims = simulate(scn, (0.5, 8.0), 0.1, 1000, n_seeds=3, n_test=10000, seed=5)
    for sim in sims:
        th = solve_factored(scn, sim.alpha, 0.1)
        assert abs(sim.mean["eps_g"] - th.eps_g) < 2 * sim.stderr["eps_g"] + 0.01 * th.eps_g


@pytest.mark.slow
def test_full_student_theory_matches_simulation() -> None:
    scn = Scenario(np.eye(3), beta=2.0)
    sims = simulate(scn, (1.0, 4.0), 1.0, 300, n_seeds=4, n_test=10000, seed=2, student="full")
    for sim in sims:
        th = solve_full(scn, sim.alpha, 1.0)
        assert th.report.converged
        tol = 2 * sim.stderr["eps_g"] + 0.02 * th.eps_g
        assert abs(sim.mean["eps_g"] - th.eps_g) < tol


@pytest.mark.slow
def test_unequal_row_sums_fixed_teacher_mean_matches_simulation() -> None:
    # Gaussian Ucol (unequal row sums): the mean order parameter S is solved for and the teacher's
    # S* is fixed in both theory and simulation (which removes its teacher-to-teacher spread).
    scn = Scenario(make_ucol("gaussian", 3, seed=5), beta=1.5)
    assert scn.has_mean
    s_star = 0.8
    th = solve_factored(scn, 2.0, 0.5, teacher_mean=s_star)
    sim = simulate(scn, (2.0,), 0.5, 400, n_seeds=6, n_test=4000, seed=7, teacher_mean=s_star)[0]
    for key, value in (("eps_g", th.eps_g), ("m", th.order["m"]), ("q", th.order["q"])):
        assert abs(sim.mean[key] - value) < 2 * sim.stderr[key] + 0.02 * abs(value), key
    thf = solve_full(scn, 2.0, 0.5, teacher_mean=s_star)
    simf = simulate(
        scn, (2.0,), 0.5, 200, n_seeds=6, n_test=4000, seed=7, teacher_mean=s_star, student="full"
    )[0]
    assert abs(simf.mean["eps_g"] - thf.eps_g) < 2 * simf.stderr["eps_g"] + 0.02 * thf.eps_g


def test_generate_data_fixes_the_teacher_mean() -> None:
    scn = Scenario(np.eye(3), beta=1.0, rho=2.0)
    d = generate_data(scn, 64, 10, n_test=5, seed=0, teacher_mean=-1.3)
    assert d.wstar.sum() / 8 == pytest.approx(-1.3)
    assert d.wstar @ d.wstar / 64 == pytest.approx(2.0)
    assert d.labels.shape == (10,) and d.pstar_test.shape == (5, 3)
    np.testing.assert_allclose(d.pstar_test.sum(axis=1), 1.0)
