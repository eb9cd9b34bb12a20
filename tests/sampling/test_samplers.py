"""Sampler mechanics: the kernel is the composition of the choice functions, runs continue exactly,
results do not depend on threads or loop order, energies are tracked without drift."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from attnpotts.errors import ShapeError, ValidationError
from attnpotts.potts import ConditionalPotts
from attnpotts.sampling import (
    MCMCSampler,
    ParallelTempering,
    SamplerState,
    heat_bath_choice,
    metropolis_choice,
    site_choice,
)

RULES = [(r, s) for r in ("gibbs", "metropolis") for s in ("sequential", "random")]


@pytest.mark.parametrize(("rule", "sweep"), RULES)
def test_kernel_equals_python_replay_of_choice_functions(rule, sweep, make_model) -> None:
    """Replaying the same uniforms through the choice functions with the model's own logits."""
    model = make_model(4, 3, beta=1.3, seed=3)
    sampler = MCMCSampler(model, rule=rule, sweep=sweep)
    state = sampler.init_state(3, seed=5)
    run = sampler.run(4, state)
    gen = np.random.Generator(np.random.PCG64())
    gen.bit_generator.state = state.rng_state
    k = 1 + (rule == "metropolis") + (sweep == "random")
    u = gen.random((4, 3, 4, k))
    chains = np.array(state.chains)
    for t in range(4):
        for c in range(3):
            for pos in range(4):
                i = site_choice(u[t, c, pos, -1], 4) if sweep == "random" else pos
                logits = model.conditional_logits(chains[c : c + 1])[0, i]
                if rule == "gibbs":
                    chains[c, i] = heat_bath_choice(logits, u[t, c, pos, 0])
                else:
                    chains[c, i] = metropolis_choice(logits, chains[c, i], *u[t, c, pos, :2])
        np.testing.assert_array_equal(run.samples[t], chains)
    np.testing.assert_allclose(run.energy_trace[-1], model.energy(chains), atol=1e-12)


@pytest.mark.parametrize(("rule", "sweep"), RULES)
def test_continuing_equals_one_longer_run(rule, sweep, make_model) -> None:
    model = make_model(5, 3, beta=0.9, seed=4)
    sampler = MCMCSampler(model, rule=rule, sweep=sweep)
    state = sampler.init_state(4, seed=11)
    whole = sampler.run(23, state, thin=3)
    first = sampler.run(10, state, thin=3)
    second = sampler.run(13, first.state, thin=3)
    np.testing.assert_array_equal(whole.samples, np.concatenate([first.samples, second.samples]))
    np.testing.assert_array_equal(
        whole.sample_sweeps, np.concatenate([first.sample_sweeps, second.sample_sweeps])
    )
    np.testing.assert_array_equal(
        whole.energy_trace, np.concatenate([first.energy_trace, second.energy_trace])
    )
    np.testing.assert_array_equal(whole.state.chains, second.state.chains)
    np.testing.assert_array_equal(whole.state.n_changed, second.state.n_changed)
    assert whole.state.n_sweeps == second.state.n_sweeps == 23
    assert whole.state.rng_state == second.state.rng_state
    # the input state is not modified
    assert state.n_sweeps == 0 and not state.chains.flags.writeable


def test_burn_in_and_thinning(make_model) -> None:
    model = make_model(4, 3, beta=1.0, seed=4)
    sampler = MCMCSampler(model)
    run = sampler.run(20, sampler.init_state(2, seed=0), burn_in=5, thin=4)
    np.testing.assert_array_equal(run.sample_sweeps, [8, 12, 16, 20])
    assert run.samples.shape == (4, 2, 4)
    assert run.energy_trace.shape == (20, 2)


def test_same_results_for_any_thread_count_and_loop_order(make_model) -> None:
    model = make_model(70, 4, beta=0.5, seed=6)
    results = []
    default = numba.get_num_threads()
    for threads in {1, default}:  # tests/conftest.py puts the count back
        numba.set_num_threads(threads)
        for loop in ("chain", "site"):
            for sweep in ("sequential", "random"):
                s = MCMCSampler(model, sweep=sweep, loop=loop)
                r = s.run(3, s.init_state(65, seed=2))
                results.append((sweep, r.samples, r.energy_trace))
    for sweep in ("sequential", "random"):
        same = [r for r in results if r[0] == sweep]
        for other in same[1:]:
            np.testing.assert_array_equal(same[0][1], other[1])
            np.testing.assert_array_equal(same[0][2], other[2])


@pytest.mark.parametrize("rule", ["gibbs", "metropolis"])
def test_incremental_energies_do_not_drift(rule, make_model) -> None:
    model = make_model(12, 5, beta=0.7, seed=8)
    s = MCMCSampler(model, rule=rule, sweep="random")
    run = s.run(400, s.init_state(8, seed=1), thin=100)
    exact = model.energy(run.samples.reshape(-1, 12)).reshape(run.samples.shape[:2])
    np.testing.assert_allclose(run.energy_trace[99::100], exact, rtol=0, atol=1e-10)
    np.testing.assert_allclose(run.state.energies, model.energy(run.state.chains), atol=1e-10)
    assert np.all(run.state.acceptance_rate() > 0)


def test_float32_couplings_follow_float64(make_model) -> None:
    model = make_model(10, 4, beta=0.5, seed=9)
    r64 = MCMCSampler(model).run(50, MCMCSampler(model).init_state(4, seed=3))
    s32 = MCMCSampler(model, dtype="float32")
    r32 = s32.run(50, s32.init_state(4, seed=3))
    # identical uniforms: trajectories agree except at (measure ~1e-7) float32 rounding boundaries
    assert (r64.samples == r32.samples).mean() > 0.99
    np.testing.assert_allclose(r32.state.energies, model.energy(r32.state.chains), atol=1e-3)


def test_parallel_tempering_continues_exactly_and_counts_swaps(make_model) -> None:
    model = make_model(5, 3, beta=1.0, seed=10)
    pt = ParallelTempering(model, [0.2, 0.5, 0.8, 1.2], swap_interval=2)
    state = pt.init_state(3, seed=4)
    whole = pt.run(17, state, thin=2)
    first = pt.run(7, state, thin=2)
    second = pt.run(10, first.state, thin=2)
    np.testing.assert_array_equal(whole.samples, np.concatenate([first.samples, second.samples]))
    np.testing.assert_array_equal(whole.state.permutation, second.state.permutation)
    np.testing.assert_array_equal(whole.state.swap_accepts, second.state.swap_accepts)
    assert whole.samples.shape == (8, 4, 3, 5)
    # 8 swap rounds, alternating even and odd pairs: pairs (0,1),(2,3) 4 times, (1,2) 4 times
    np.testing.assert_array_equal(whole.state.swap_attempts, [12, 12, 12])
    rates = whole.state.swap_rates()
    assert np.all((rates >= 0) & (rates <= 1))
    # chains carry their beta: the energy trace by temperature matches recomputed energies
    last = whole.samples[-1].reshape(-1, 5)
    row = whole.sample_sweeps[-1] - 1  # trace rows are sweeps 1..17
    np.testing.assert_allclose(whole.energy_trace[row].ravel(), model.energy(last), atol=1e-10)
    betas = whole.state.betas[whole.state.permutation]
    np.testing.assert_array_equal(betas, np.broadcast_to(pt.ladder, (3, 4)))


def test_state_save_load_round_trip(tmp_path, make_model) -> None:
    model = make_model(5, 3, beta=1.0, seed=10)
    pt = ParallelTempering(model, [0.5, 1.0])
    run = pt.run(5, pt.init_state(2, seed=1))
    path = run.state.save(tmp_path / "state.npz")
    loaded = SamplerState.load(path)
    a, b = pt.run(6, run.state), pt.run(6, loaded)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.state.swap_accepts, b.state.swap_accepts)


def test_bad_inputs_raise_clear_errors(make_model) -> None:
    model = make_model(4, 3, beta=1.0, seed=1)
    with pytest.raises(ValidationError, match="rule"):
        MCMCSampler(model, rule="hmc")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="sweep"):
        MCMCSampler(model, sweep="checkerboard")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="symmetric PottsModel"):
        MCMCSampler(ConditionalPotts(None, model.couplings))  # type: ignore[arg-type]
    s = MCMCSampler(model)
    with pytest.raises(ValidationError, match="n_chains"):
        s.init_state(0)
    with pytest.raises(ValidationError, match="n_sweeps"):
        s.run(-1, s.init_state(1))
    with pytest.raises(ValidationError, match="thin"):
        s.run(3, s.init_state(1), thin=0)
    with pytest.raises(ShapeError, match="initial"):
        s.init_state(2, initial=np.zeros((3, 4), dtype=int))
    with pytest.raises(ValidationError, match="strictly increasing"):
        ParallelTempering(model, [1.0, 0.5])
    with pytest.raises(ShapeError, match="sites"):
        MCMCSampler(make_model(5, 3, 1.0, 0)).run(1, s.init_state(1))
