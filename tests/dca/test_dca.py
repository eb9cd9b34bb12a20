"""DCA estimators: objective vs the plmc form, gradients, conventions, memory refusal, recovery."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest
import torch

from attnpotts.dca import (
    CONVENTIONS,
    FactoredDCA,
    MemoryEstimate,
    PlmDCA,
    Regularization,
    check_memory,
    estimate_memory,
    merge_neighbours,
    prepare_data,
)
from attnpotts.errors import ResourceLimitError, ShapeError, ValidationError
from attnpotts.inference.objectives import (
    all_positions_cross_entropy,
    coupling_penalty,
    field_penalty,
    masked_cross_entropy,
)
from attnpotts.models import FactoredAttention, FullPotts
from attnpotts.potts import ConditionalPotts, ExactPotts, PottsModel
from attnpotts.training import LBFGS_STOP_REASONS


def _loop_objective(model, tokens, weights, cl2, fl2):
    """The training loop's objective (objectives of attnpotts.inference), as the loop builds it."""
    logits = model.logits(tokens)
    loss = masked_cross_entropy(logits, tokens, None, weights, reduction="mean")
    return loss + 0.5 * cl2 * coupling_penalty(model) + 0.5 * fl2 * field_penalty(model)


def _random_potts_model(L: int, q: int, seed: int) -> FullPotts:
    model = FullPotts(L, q, symmetric=True, init_std=0.3, seed=seed, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model.fields.copy_(torch.randn(L, q, generator=gen, dtype=torch.float64))  # type: ignore[union-attr]
    return model


@pytest.mark.parametrize("convention", ["plmc", "evcouplings", "ccmpred", "plmdca-jl", "attnpotts"])
def test_loop_objective_equals_canonical_plmc_form(convention: str) -> None:
    L, q, M = 5, 3, 40
    rng = np.random.default_rng(0)
    states = rng.integers(0, q, (M, L))
    w = rng.uniform(0.2, 1.0, M)
    W = w.sum()
    model = _random_potts_model(L, q, seed=1)
    reg = Regularization(convention, 0.37, 0.11)  # type: ignore[arg-type]
    cl2, fl2 = reg.per_token(L, q, W)
    tokens = torch.as_tensor(states)
    loss = float(_loop_objective(model, tokens, torch.as_tensor(w), cl2, fl2).detach())
    # canonical plmc form, computed independently with numpy
    J = model.coupling_tensor().detach().numpy()
    h = model.field_tensor().detach().numpy()
    pll = float(ConditionalPotts(h, J).pseudo_log_likelihood(states, w))
    lam_pair, lam_h = reg.canonical(L, q, W)
    pairs = sum(float((J[i, j] ** 2).sum()) for i in range(L) for j in range(i + 1, L))
    F = -pll + lam_pair * pairs + lam_h * float((h**2).sum())
    assert loss * W * L == pytest.approx(F, rel=1e-12)


def test_convention_formulas_and_round_trip() -> None:
    L, q, W = 53, 21, 4363.9
    ev = Regularization("evcouplings", 0.01, 0.01)
    assert ev.canonical(L, q) == pytest.approx((0.01 * 52 * 20, 0.01))
    cc = Regularization("ccmpred", 0.2, 0.01)
    assert cc.canonical(L, q) == pytest.approx((0.2 * 52, 0.01))
    jl = Regularization("plmdca-jl", 0.01, 0.01)
    assert jl.canonical(L, q, W) == pytest.approx((2 * W * 0.01, W * 0.01))
    for target in CONVENTIONS:
        back = ev.convert(target, L, q, W).convert("evcouplings", L, q, W)
        assert back.lambda_j == pytest.approx(0.01, rel=1e-12)
        assert back.lambda_h == pytest.approx(0.01, rel=1e-12)
    assert ev.convert("plmc", L, q).lambda_j == pytest.approx(10.4)
    with pytest.raises(ValidationError, match="n_eff"):
        jl.canonical(L, q, None)
    with pytest.raises(ValidationError, match="unknown"):
        Regularization("magic", 1.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="no default; give lambda_j and lambda_h"):
        Regularization.default("attnpotts")
    assert Regularization.default("ccmpred") == cc
    assert Regularization.default("plmc") == Regularization("plmc", 100.0, 0.01)  # plmc's source


def test_objective_gradient_matches_finite_differences() -> None:
    L, q, M = 4, 3, 25
    rng = np.random.default_rng(2)
    tokens = torch.as_tensor(rng.integers(0, q, (M, L)))
    w = torch.as_tensor(rng.uniform(0.1, 1.0, M))
    model = _random_potts_model(L, q, seed=3)
    cl2, fl2 = Regularization("evcouplings", 0.05, 0.02).per_token(L, q, float(w.sum()))
    params = list(model.parameters())

    def f(*values: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for p, v in zip(params, values, strict=True):
                p.copy_(v)
        return _loop_objective(model, tokens, w, cl2, fl2).detach()

    model.zero_grad()
    _loop_objective(model, tokens, w, cl2, fl2).backward()
    grads = [p.grad.clone() for p in params]  # type: ignore[union-attr]
    base = [p.detach().clone() for p in params]
    eps = 1e-6
    gen = torch.Generator().manual_seed(4)
    for k, (p0, g) in enumerate(zip(base, grads, strict=True)):
        for _ in range(6):
            idx = tuple(int(torch.randint(0, n, (1,), generator=gen)) for n in p0.shape)
            plus = [b.clone() for b in base]
            minus = [b.clone() for b in base]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            fd = (float(f(*plus)) - float(f(*minus))) / (2 * eps)
            assert fd == pytest.approx(float(g[idx]), abs=1e-8, rel=1e-6)


def test_factored_attention_logit_paths_agree() -> None:
    """Blocked kernel ("auto"), J with the dense kernel (>= q sequences) and the einsum (fewer): same logits."""
    L, q, H = 6, 4, 3
    a = FactoredAttention(L, q, H, variant="softmax", key_dim=5, init_std=0.5, seed=5, dtype=torch.float64)
    with torch.no_grad():
        a.fields.normal_(generator=torch.Generator().manual_seed(6))  # type: ignore[union-attr]
    tokens = torch.randint(0, q + 1, (30, L), generator=torch.Generator().manual_seed(7))  # with [MASK]
    blocked = a.logits(tokens).detach().numpy()
    a.kernel = "dense"
    batched = a.logits(tokens).detach().numpy()
    single = np.concatenate([a.logits(tokens[k : k + 1]).detach().numpy() for k in range(30)])
    np.testing.assert_allclose(batched, single, atol=1e-12)
    np.testing.assert_allclose(blocked, single, atol=1e-12)


@pytest.mark.parametrize("kind", ["plm", "factored"])
def test_fused_objective_hook_equals_the_generic_objective(kind: str) -> None:
    """all_positions_cross_entropy (the fused pass the loop uses) = masked CE of the logits, with gradients."""
    L, q, M = 7, 4, 50
    gen = torch.Generator().manual_seed(11)
    model: FullPotts | FactoredAttention
    if kind == "plm":
        model = _random_potts_model(L, q, 3)
    else:
        model = FactoredAttention(L, q, 2, variant="softmax", key_dim=3, init_std=0.5, seed=4,
                                  dtype=torch.float64)
    tokens = torch.randint(0, q, (M, L), generator=gen)
    w = torch.rand(M, generator=gen, dtype=torch.float64)
    fused = model.cross_entropy_sum(tokens, w)
    assert fused is not None
    params = list(model.parameters())
    g_fused = torch.autograd.grad(all_positions_cross_entropy(model, tokens, w), params)
    generic = masked_cross_entropy(model.logits(tokens), tokens, None, w, reduction="sum")
    g_generic = torch.autograd.grad(generic, params)
    assert float(fused.detach()) == pytest.approx(float(generic.detach()), rel=1e-12)
    for a, b in zip(g_fused, g_generic, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    # no fused path for [MASK] tokens or a dense kernel: the hook falls back to the logits
    masked = tokens.clone()
    masked[0, 0] = q
    assert model.cross_entropy_sum(masked, w) is None
    model.kernel = "dense"
    assert model.cross_entropy_sum(tokens, w) is None
    fallback = all_positions_cross_entropy(model, tokens, w).detach()
    assert float(fallback) == pytest.approx(float(generic.detach()), rel=1e-12)


def test_prepare_data_collapses_duplicates_and_sorts() -> None:
    states = np.array([[2, 1, 0], [0, 1, 2], [2, 1, 0], [0, 0, 0]])
    d = prepare_data(states, np.array([1.0, 2.0, 3.0, 0.5]), n_states=3)
    assert d.states.tolist() == [[0, 0, 0], [0, 1, 2], [2, 1, 0]]
    assert d.weights.tolist() == [0.5, 2.0, 4.0]
    assert d.n_sequences == 4 and d.n_eff == pytest.approx(6.5)
    with pytest.raises(ShapeError, match="weights"):
        prepare_data(states, np.ones(3), n_states=3)
    with pytest.raises(ValidationError, match=r"0\.\.1"):
        prepare_data(states, n_states=2)


def test_merge_neighbours_keeps_the_weight_and_the_order() -> None:
    """Each group of neighbours becomes its leader carrying the group's weight: N_eff unchanged."""
    rng = np.random.default_rng(5)
    ancestors = rng.integers(0, 4, size=(3, 10))
    states = ancestors[rng.integers(0, 3, size=40)]
    flip = rng.random(states.shape) < 0.1  # about one site in ten: mostly within 80 % of the ancestor
    states = np.where(flip, rng.integers(0, 4, size=states.shape), states)
    data = prepare_data(states, rng.uniform(0.5, 2.0, size=40), n_states=4)
    merged = merge_neighbours(data, 0.8)
    assert merged.n_eff == data.n_eff and merged.weights.sum() == pytest.approx(data.weights.sum(), rel=1e-14)
    assert merged.n_unique == data.states.shape[0] and merged.merged_at == 0.8
    assert 3 <= merged.states.shape[0] < data.states.shape[0]
    # the leaders are rows of the data in the same (lexicographic) order, each member within 80 %
    rows = [int(np.flatnonzero((data.states == r).all(axis=1))[0]) for r in merged.states]
    assert rows == sorted(rows)
    from attnpotts.alignment import neighbour_leaders

    leader = neighbour_leaders(data.states, threshold=0.8)
    assert sorted(set(leader.tolist())) == rows
    for k, row in enumerate(rows):
        assert merged.weights[k] == pytest.approx(data.weights[leader == row].sum())
    # a threshold of 1 merges nothing more than the duplicates already merged
    same = merge_neighbours(data, 1.0)
    np.testing.assert_array_equal(same.states, data.states)
    np.testing.assert_array_equal(same.weights, data.weights)
    with pytest.raises(ValidationError, match=r"identity threshold must lie in \(0, 1\]"):
        merge_neighbours(data, 0.0)


def test_collapse_option_of_the_estimators() -> None:
    """Both estimators fit every distinct sequence by default; ``collapse="neighbours"`` fits the
    groups of neighbours; a merged fit is not merged again; the counts say which rows were fitted."""
    from attnpotts.dca import FACTORED_COLLAPSE, PLM_COLLAPSE
    from attnpotts.dca.pipeline import ContactsConfig

    assert PlmDCA().collapse == PLM_COLLAPSE == "duplicates"
    assert FactoredDCA().collapse == FACTORED_COLLAPSE == "duplicates"
    assert ContactsConfig().collapse == ContactsConfig(model="factored").collapse == "duplicates"
    assert ContactsConfig(model="factored", collapse="neighbours").estimator().collapse == "neighbours"
    rng = np.random.default_rng(8)
    states = np.repeat(rng.integers(0, 3, size=(6, 12)), 5, axis=0)
    states[::2, 0] = (states[::2, 0] + 1) % 3  # neighbours at 11/12 identity
    exact = PlmDCA(max_iter=2, tolerance=None).fit(states)
    merged = PlmDCA(max_iter=2, tolerance=None, collapse="neighbours").fit(states)
    assert exact.n_fitted_ == exact.n_unique_ == 12
    assert merged.n_unique_ == 12 and merged.n_fitted_ == 6
    assert merged.n_eff_ == pytest.approx(exact.n_eff_)
    pre = merge_neighbours(prepare_data(states), 0.8)
    again = FactoredDCA(n_heads=2, key_dim=2, max_iter=2).fit(pre)
    assert again.n_fitted_ == 6 and again.n_unique_ == 12
    with pytest.raises(ValidationError, match="collapse"):
        PlmDCA(collapse="clusters").fit(states)


def test_memory_estimate_refuses_with_the_options_that_fit() -> None:
    est = estimate_memory(20000, 600, 21, model="plm", lbfgs_history=5)
    assert est.total_gib > 2
    two_gib = 2 * 1024**3
    with pytest.raises(ResourceLimitError, match="--model factored") as info:
        check_memory(est, two_gib)
    assert "GiB" in str(info.value)
    small = estimate_memory(20000, 600, 21, model="factored", chunk=512, n_heads=8)
    check_memory(small, 8 * 1024**3)  # the factored model of the same family fits 8 GiB
    est64 = estimate_memory(1000, 300, 21, model="plm", dtype="float64")
    with pytest.raises(ResourceLimitError, match="float32"):
        check_memory(est64, two_gib)
    # the estimator refuses before fitting
    states = np.random.default_rng(0).integers(0, 21, (10, 200))
    with pytest.raises(ResourceLimitError, match="factored"):
        PlmDCA(memory_limit_gb=0.01).fit(states, np.ones(10))


@pytest.mark.parametrize("estimator", [PlmDCA, FactoredDCA])
def test_fit_on_a_cuda_device_is_refused_above_its_free_memory(
    estimator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before anything reaches the device: the estimate's device share against its free memory."""
    import attnpotts.dca.memory as memory

    assert memory.device_free_bytes(None) is None and memory.device_free_bytes("cpu") is None
    asked: list[str | None] = []

    def free(device: str | None) -> int | None:
        asked.append(device)
        return 1024**2 if device == "cuda:0" else None

    monkeypatch.setattr(memory, "device_free_bytes", free)
    states = np.random.default_rng(0).integers(0, 21, (50, 30))
    with pytest.raises(ResourceLimitError, match=r"GiB on cuda:0 \(largest part: .*\), which has 0\.00 GiB free") as info:
        estimator(device="cuda:0").fit(states, np.ones(50))
    assert "--device cpu" in str(info.value) and "fewer columns" in str(info.value)
    assert asked == ["cuda:0"]
    est = estimate_memory(50, 30, 21, model="plm")
    check_memory(est, device="cpu")  # no device check off CUDA
    assert asked == ["cuda:0", "cpu"]
    # the interpreter and the mean-field start stay in host memory: not counted on the device
    host = {"runtime": 2**30, "start": 2**30, "lbfgs_state": 2**20}  # = the free MiB
    check_memory(MemoryEstimate(sum(host.values()), host, "factored", "float32", 1), device="cuda:0")
    host["lbfgs_state"] += 1
    with pytest.raises(ResourceLimitError, match="largest part: lbfgs_state"):
        check_memory(MemoryEstimate(sum(host.values()), host, "factored", "float32", 1),
                     device="cuda:0")


@pytest.mark.parametrize("model", ["plm", "factored"])
def test_memory_estimate_counts_the_curvature_pairs_a_fit_can_store(model: str) -> None:
    """A fit of k < m iterations stores at most k L-BFGS pairs of P parameters each."""
    kw: dict[str, Any] = {"model": model, "lbfgs_history": 20, "n_threads": 2}
    full = estimate_memory(500, 60, 21, **kw)
    assert estimate_memory(500, 60, 21, max_iter=600, **kw) == full  # history full
    short = estimate_memory(500, 60, 21, max_iter=3, **kw)
    L, q = 60, 21
    P = L * (L - 1) // 2 * q * q if model == "plm" else 32 * (2 * L * 32 + q * q) + L * q
    assert full.parts["lbfgs_state"] - short.parts["lbfgs_state"] == 2 * (20 - 3) * P * 4
    with pytest.raises(ValidationError, match="max_iter"):
        estimate_memory(500, 60, 21, max_iter=0, **kw)
    # the estimators pass their own max_iter
    data = prepare_data(np.random.default_rng(0).integers(0, 21, (30, 12)), np.ones(30), n_states=21)
    cls = PlmDCA if model == "plm" else FactoredDCA
    one, many = cls(max_iter=1, lbfgs_history=20), cls(max_iter=100, lbfgs_history=20)
    assert one._estimate(data).parts["lbfgs_state"] < many._estimate(data).parts["lbfgs_state"]


def test_plm_estimate_counts_per_thread_accumulators_only_where_the_pass_has_them() -> None:
    """Below ``L q = 2000`` the fused pass keeps one gradient accumulator per thread; from there
    on it runs by blocks of sites with one in all, so the estimate grows with the machine's
    cores only by the slices of the blocks that run at once (at L = 150, 16 accumulators had
    overstated the measured peak 1.8-fold)."""
    from attnpotts.models.kernels import PairWorkspace

    def kernel(L: int, threads: int) -> int:
        return estimate_memory(1000, L, 21, model="plm", n_threads=threads).parts[
            "coupling_tensor_and_kernel"]

    F = 150 * 150 * 21 * 21 * 4
    slices = 2 * 150 * 21 * 8 * 21 * 4  # a running block's two contiguous slices
    assert kernel(150, 2) == 5 * F + 2 * slices  # L q = 3150: blocked
    assert kernel(150, 64) == kernel(150, 19) == 5 * F + 19 * slices  # 19 blocks run at most
    F = 60 * 60 * 21 * 21 * 4
    assert kernel(60, 64) - kernel(60, 2) == 62 * F  # L q = 1260: one per thread
    assert PairWorkspace(150, 21, torch.float32).grad_buf.shape[0] == 1  # what the kernel does
    assert PairWorkspace(60, 21, torch.float32).grad_buf.shape[0] == numba.get_num_threads()


def _planted_model(L: int, q: int, edges: list[tuple[int, int]], seed: int) -> PottsModel:
    rng = np.random.default_rng(seed)
    J = np.zeros((L, L, q, q))
    for i, j in edges:
        block = rng.normal(0.0, 1.2, (q, q))
        J[i, j] = block
        J[j, i] = block.T
    h = rng.normal(0.0, 0.3, (L, q))
    return PottsModel(h, J)


@pytest.mark.parametrize("estimator", ["plm", "factored", "factored-merged"])
def test_planted_contacts_are_recovered(estimator: str) -> None:
    L, q, M = 7, 3, 4000
    edges = [(0, 4), (1, 6), (2, 5), (3, 6)]
    exact = ExactPotts(_planted_model(L, q, edges, seed=11))
    rng = np.random.default_rng(12)
    idx = rng.choice(exact.probabilities.size, size=M, p=exact.probabilities)
    states = exact.states[idx]
    if estimator == "plm":
        est = PlmDCA(regularization=Regularization("plmc", 0.01, 0.01), max_iter=60).fit(
            states, np.ones(M)
        )
    else:
        # "factored" fits every distinct sequence (the default), "merged" the groups of neighbours
        collapse = "neighbours" if estimator == "factored-merged" else "duplicates"
        est = FactoredDCA(n_heads=4, key_dim=4, max_iter=60, seed=1, collapse=collapse,
                          regularization=Regularization("plmc", 0.01, 0.01)).fit(states, np.ones(M))
    S = est.scores_
    iu = np.triu_indices(L, k=1)
    top = np.argsort(-S[iu])[: len(edges)]
    found = {(int(iu[0][k]), int(iu[1][k])) for k in top}
    assert found == set(edges)
    conv = est.convergence_
    assert conv.iterations >= 1 and math.isfinite(conv.final_gradient_norm)
    assert conv.stop_reason in (*LBFGS_STOP_REASONS, "converged")
    # the report is the optimizer's last evaluation: recomputing it at the final parameters agrees
    from attnpotts.dca.fit import _objective_and_gradient_norm

    cl2, fl2 = est.regularization.per_token(L, q, float(M))
    fitted = prepare_data(states, np.ones(M), n_states=q)  # the rows and weights the fit saw
    if est.collapse == "neighbours":
        fitted = merge_neighbours(fitted, est.identity_threshold)
        assert est.n_fitted_ == fitted.states.shape[0] < est.n_unique_
    wt = torch.as_tensor(fitted.weights, dtype=torch.float32)
    obj, gnorm = _objective_and_gradient_norm(
        est.model_, torch.as_tensor(fitted.states, dtype=torch.long), wt, cl2, fl2,
        est.weight_decay_,
    )
    assert conv.final_objective == pytest.approx(obj, rel=1e-5)
    assert conv.final_gradient_norm == pytest.approx(gnorm, rel=1e-3)
    assert est.couplings_.shape == (L, L, q, q) and est.fields_.shape == (L, q)


def test_plm_recovers_exact_couplings_from_exact_marginals() -> None:
    """Trained on the exact distribution, symmetric PL recovers the true couplings (zero-sum)."""
    from attnpotts.potts import zero_sum_gauge

    L, q = 4, 3
    model = _planted_model(L, q, [(0, 2), (1, 3), (0, 1)], seed=21)
    exact = ExactPotts(model)
    est = PlmDCA(regularization=Regularization("plmc", 0.0, 0.0), max_iter=200, tolerance=None,
                 dtype="float64", lbfgs_history=20).fit(exact.states, exact.probabilities * 1000.0)
    J0, _ = zero_sum_gauge(model.couplings, model.fields)
    Jfit, _ = zero_sum_gauge(est.couplings_, est.fields_)
    np.testing.assert_allclose(Jfit, J0, atol=1e-4)


def test_convergence_rule_stops_when_the_objective_stalls() -> None:
    """The rule stops at a window boundary once the objective fell by < tolerance over it."""
    L, q, M = 6, 3, 2000
    exact = ExactPotts(_planted_model(L, q, [(0, 3), (1, 5)], seed=41))
    rng = np.random.default_rng(42)
    states = exact.states[rng.choice(exact.probabilities.size, size=M, p=exact.probabilities)]
    ruled = PlmDCA(max_iter=200, tolerance=1e-3, check_every=5, dtype="float64").fit(states, np.ones(M))
    conv = ruled.convergence_
    assert conv.stop_reason == "converged" and conv.iterations % 5 == 0 and conv.iterations < 200
    assert 0 <= conv.window_relative_decrease < 1e-3 and conv.tolerance == 1e-3 and conv.check_every == 5
    # the same fit without the rule runs exactly its iterations in one L-BFGS call; the windows
    # start where the previous one ended (no re-evaluation): the same evaluations and iterates
    fixed = PlmDCA(max_iter=conv.iterations, tolerance=None, dtype="float64").fit(states, np.ones(M))
    fc = fixed.convergence_
    assert fc.iterations == conv.iterations and fc.tolerance is None and fc.check_every == 0
    assert fc.stop_reason == "max_iterations" and fc.evaluations == conv.evaluations
    np.testing.assert_array_equal(ruled.couplings_, fixed.couplings_)


def test_contacts_config_resolves_lambda_per_model() -> None:
    from attnpotts.dca import FACTORED_REGULARIZATION, PLM_REGULARIZATION, FactoredDCA
    from attnpotts.dca.pipeline import ContactsConfig

    assert ContactsConfig().lambda_j == PLM_REGULARIZATION.lambda_j == 0.02
    assert ContactsConfig(model="factored").lambda_j == FACTORED_REGULARIZATION.lambda_j == 0.003
    assert FactoredDCA().regularization == FACTORED_REGULARIZATION
    assert ContactsConfig(model="factored").estimator().regularization == FACTORED_REGULARIZATION
    assert ContactsConfig(regularization="gremlin").lambda_j == 0.02  # evcouplings by another name
    assert ContactsConfig(lambda_j=0.03, regularization="gremlin").lambda_j == 0.03
    # another tool's convention without --lambda-j: that tool's own default, for either model
    assert ContactsConfig(regularization="ccmpred").lambda_j == 0.2
    assert ContactsConfig(model="factored", regularization="plmc").lambda_j == 100.0
    assert ContactsConfig(regularization="plmdca-jl").lambda_j == 0.01
    assert ContactsConfig(regularization="ccmpred", lambda_j=0.05).lambda_j == 0.05
    with pytest.raises(ValidationError, match="--lambda-j"):
        ContactsConfig(regularization="attnpotts")  # per-token coefficients: no default
    assert ContactsConfig(regularization="attnpotts", lambda_j=1e-4).lambda_j == 1e-4
    assert ContactsConfig(lambda_j=0.2).lambda_j == 0.2


def test_contacts_config_resolves_without_loading_torch(tmp_path: Path) -> None:
    """Options, and a missing input's error (the pipeline reads every input first), come before
    torch loads (a fresh interpreter)."""
    import subprocess
    import sys

    code = ("import sys; from attnpotts.workflows import ContactsOptions as O; "
            "o = O(model='factored'); p = O(); "
            "assert (o.score_gap, o.lbfgs_history, o.max_iter) == ('exclude', 60, None), o; "
            "assert (p.score_gap, p.lbfgs_history, p.max_iter) == ('include', 5, 100), p; "
            "from attnpotts.workflows import contacts\n"
            "for kw, message in (({}, 'an alignment file no-such.fasta'),\n"
            "                    ({'distances': 'no.tsv'}, 'a distances TSV file no.tsv')):\n"
            "    aln = 'aln.fasta' if kw else 'no-such.fasta'\n"
            "    try: contacts(O(alignment=aln, **kw), 'never-made')\n"
            "    except FileNotFoundError as e: assert message in str(e), e\n"
            "    else: raise AssertionError('no error')\n"
            "assert 'torch' not in sys.modules")
    (tmp_path / "aln.fasta").write_text(">a\nACDE\n>b\nACDF\n>c\nGCDE\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    assert not (tmp_path / "never-made").exists()


def test_bad_options() -> None:
    states = np.zeros((3, 4), dtype=int)
    with pytest.raises(ValidationError, match="tolerance"):
        PlmDCA(tolerance=-1.0).fit(states, np.ones(3))
    with pytest.raises(ValidationError, match="check_every"):
        PlmDCA(check_every=0).fit(states, np.ones(3))
    with pytest.raises(ValidationError, match="max_iter"):
        PlmDCA(max_iter=0).fit(states, np.ones(3))
    with pytest.raises(ValidationError, match="kernel"):
        PlmDCA(kernel="fast").fit(states, np.ones(3))
    with pytest.raises(ValidationError, match="dtype"):
        PlmDCA(dtype="float16").fit(states, np.ones(3))


def test_fit_stopped_far_from_convergence_warns(caplog: pytest.LogCaptureFixture) -> None:
    """One iteration leaves the objective still falling: the report says so; a converged fit does not."""
    import logging

    from attnpotts.dca import FAR_FROM_CONVERGENCE

    L, q, M = 6, 3, 2000
    exact = ExactPotts(_planted_model(L, q, [(0, 3), (1, 5)], seed=31))
    rng = np.random.default_rng(32)
    states = exact.states[rng.choice(exact.probabilities.size, size=M, p=exact.probabilities)]
    with caplog.at_level(logging.WARNING, logger="attnpotts.dca.fit"):
        short = PlmDCA(max_iter=1).fit(states, np.ones(M))
    conv = short.convergence_
    assert conv.stop_reason == "max_iterations" and conv.last_relative_decrease > FAR_FROM_CONVERGENCE
    assert conv.far_from_convergence and "far from convergence" in conv.warning and "--max-iter" in conv.warning
    assert any("far from convergence" in r.getMessage() for r in caplog.records)
    long = PlmDCA(max_iter=300, dtype="float64").fit(states, np.ones(M))
    assert not long.convergence_.far_from_convergence and long.convergence_.warning == ""
    assert long.convergence_.last_relative_decrease < FAR_FROM_CONVERGENCE


@pytest.mark.parametrize("estimator", [PlmDCA, FactoredDCA])
def test_fewer_than_three_columns_are_refused_before_the_fit(estimator: Any) -> None:
    """The scores' APC needs three columns; the fit says so up front instead of after fitting."""
    states = np.array([[0, 1], [1, 2], [2, 0]])
    est = estimator(max_iter=2)
    with pytest.raises(ValidationError, match=r"2 column\(s\) left to fit.*at least 3"):
        est.fit(states)
    assert not hasattr(est, "convergence_")  # nothing was fitted
