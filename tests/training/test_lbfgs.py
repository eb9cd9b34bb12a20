"""The training loop's L-BFGS: exact minima, strong Wolfe steps, stop reasons, exact resume."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch

from attnpotts.errors import ValidationError
from attnpotts.training import LBFGS, LBFGS_STOP_REASONS
from attnpotts.training.lbfgs import _C1, _C2, ROW_ALIGN_BYTES, _cubic_minimum

F64 = torch.float64


def _rosenbrock_closure(x: torch.Tensor, opt: LBFGS):
    def closure() -> torch.Tensor:
        opt.zero_grad()
        f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        f.backward()
        return f

    return closure


def test_rosenbrock_minimum_is_found() -> None:
    x = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)
    opt = LBFGS([x], max_iter=200, max_eval=1000, history_size=10, tolerance_grad=1e-10)
    opt.step(_rosenbrock_closure(x, opt))
    rep = opt.last_report
    assert rep is not None and rep.stop_reason in ("gradient_tolerance", "objective_tolerance", "step_tolerance")
    np.testing.assert_allclose(x.detach().numpy(), [1.0, 1.0], atol=1e-7)
    assert rep.objective < 1e-14 and rep.iterations < 60


def test_convex_quadratic_reaches_the_linear_solve() -> None:
    rng = np.random.default_rng(0)
    n = 12
    a = rng.normal(size=(n, n))
    hess = torch.tensor(a @ a.T + n * np.eye(n), dtype=F64)
    b = torch.tensor(rng.normal(size=n), dtype=F64)
    # two parameter tensors, to check the flat layout
    x1 = torch.zeros(5, dtype=F64, requires_grad=True)
    x2 = torch.zeros(n - 5, dtype=F64, requires_grad=True)
    opt = LBFGS([x1, x2], max_iter=100, history_size=n, tolerance_grad=1e-7, tolerance_change=0.0)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        x = torch.cat([x1, x2])
        f = 0.5 * x @ hess @ x - b @ x
        f.backward()
        return f

    opt.step(closure)
    exact = torch.linalg.solve(hess, b)
    assert opt.last_report is not None and opt.last_report.stop_reason == "gradient_tolerance"
    # |x - x*| <= |g| / lambda_min(H), and max|g| <= 1e-7 in n = 12 dimensions
    bound = math.sqrt(n) * 1e-7 / float(torch.linalg.eigvalsh(hess)[0])
    assert float(torch.linalg.vector_norm(torch.cat([x1, x2]).detach() - exact)) <= bound


def test_every_accepted_step_satisfies_the_strong_wolfe_conditions() -> None:
    x = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)
    opt = LBFGS([x], max_iter=1, max_eval=50)
    closure = _rosenbrock_closure(x, opt)
    for _ in range(25):
        x0 = x.detach().clone()
        f0 = float(closure().detach())
        g0 = x.grad.detach().clone()  # type: ignore[union-attr]
        opt.step(closure)
        rep = opt.last_report
        assert rep is not None
        if rep.iterations == 0:
            break
        step = x.detach() - x0
        closure()
        g1 = x.grad.detach().clone()  # type: ignore[union-attr]
        # step = t d with t > 0: Wolfe conditions along d are scale-free along step
        assert rep.objective <= f0 + _C1 * float(g0 @ step) + 1e-15
        assert abs(float(g1 @ step)) <= -_C2 * float(g0 @ step) + 1e-15


def test_cubic_interpolation_is_exact_on_a_cubic() -> None:
    def f(t: float) -> float:
        return (t - 0.3) ** 2 * (t + 2.0)

    def df(t: float) -> float:
        return 2 * (t - 0.3) * (t + 2.0) + (t - 0.3) ** 2

    t = _cubic_minimum(0.0, f(0.0), df(0.0), 1.0, f(1.0), df(1.0), 0.0, 1.0)
    assert t == pytest.approx(0.3, abs=1e-12)
    # clipped to the interval, and a midpoint when there is no minimum
    assert _cubic_minimum(0.0, f(0.0), df(0.0), 1.0, f(1.0), df(1.0), 0.5, 1.0) == 0.5
    # f = t^3 + t is monotone: no minimum, the middle of the interval
    assert _cubic_minimum(0.0, 0.0, 1.0, 1.0, 2.0, 4.0, 0.0, 1.0) == 0.5


def test_split_steps_and_a_restored_state_equal_one_long_run_bitwise() -> None:
    def run(splits: list[int], reload: bool) -> torch.Tensor:
        x = torch.tensor([-1.2, 1.0, 0.5], dtype=F64, requires_grad=True)
        opt = LBFGS([x], max_iter=splits[0], max_eval=10_000, history_size=4)
        for k in splits:
            opt.max_iter = k
            if reload:
                state = opt.state_dict()
                opt = LBFGS([x], max_iter=k, max_eval=10_000, history_size=4)
                opt.load_state_dict(state)

            def closure(opt: LBFGS = opt) -> torch.Tensor:
                opt.zero_grad()
                f = ((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2 + 10 * (x[2] - x[1]) ** 2)
                f.backward()
                return f

            opt.step(closure)
        return x.detach().clone()

    whole = run([12], reload=False)
    assert torch.equal(run([5, 7], reload=False), whole)
    assert torch.equal(run([5, 7], reload=True), whole)


def test_stop_reasons() -> None:
    # already at the minimum
    x = torch.ones(2, dtype=F64, requires_grad=True)
    opt = LBFGS([x])
    opt.step(_rosenbrock_closure(x, opt))
    assert opt.last_report is not None and opt.last_report.stop_reason == "gradient_tolerance"
    assert opt.last_report.iterations == 0 and opt.last_report.evaluations == 1

    # iteration budget
    x = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)
    opt = LBFGS([x], max_iter=3, max_eval=100)
    start = opt.step(_rosenbrock_closure(x, opt))
    rep = opt.last_report
    assert rep is not None and rep.stop_reason == "max_iterations" and rep.iterations == 3
    assert start == pytest.approx(24.2) and rep.objective < start
    assert rep.stop_reason in LBFGS_STOP_REASONS

    # a gradient of the wrong sign: no step lowers the objective; the start is kept
    y = torch.tensor([2.0, -1.0], dtype=F64, requires_grad=True)
    opt = LBFGS([y], max_iter=5)

    def wrong() -> torch.Tensor:
        opt.zero_grad()
        f = (y**2).sum()
        (-f).backward()
        return f

    opt.step(wrong)
    assert opt.last_report is not None and opt.last_report.stop_reason == "line_search_failed"
    assert torch.equal(y.detach(), torch.tensor([2.0, -1.0], dtype=F64))

    # a non-finite objective at the start
    z = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = LBFGS([z])

    def nan() -> torch.Tensor:
        opt.zero_grad()
        f = (z * math.nan).sum()
        f.backward()
        return f

    opt.step(nan)
    assert opt.last_report is not None and opt.last_report.stop_reason == "not_finite"


def test_a_non_finite_region_is_backed_out_of() -> None:
    # f = -log(1 - x) - 2 x is +inf from x = 1 on; the first trial step (x = 30) overshoots it
    x = torch.tensor([0.0], dtype=F64, requires_grad=True)
    opt = LBFGS([x], lr=30.0, max_iter=30, tolerance_grad=1e-10)
    seen: list[float] = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        seen.append(float(x.detach()))
        f = (-torch.log1p(-x) - 2 * x).sum() if float(x.detach()) < 1 else (x * math.inf).sum()
        f.backward()
        return f

    opt.step(closure)
    assert seen[1] == 30.0  # the overshoot happened
    assert float(x.detach()) == pytest.approx(0.5, abs=1e-9)  # minimum: 1 / (1 - x) = 2


def test_agrees_with_torch_lbfgs_on_logistic_regression() -> None:
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.normal(size=(200, 6)), dtype=F64)
    yv = torch.tensor(rng.integers(0, 2, 200), dtype=F64)

    def fit(kind: str) -> torch.Tensor:
        w = torch.zeros(6, dtype=F64, requires_grad=True)
        opt: LBFGS | torch.optim.LBFGS
        if kind == "ours":
            opt = LBFGS([w], max_iter=200, max_eval=1000, tolerance_grad=1e-10, tolerance_change=0.0)
        else:
            opt = torch.optim.LBFGS([w], max_iter=200, max_eval=1000, tolerance_grad=1e-10,
                                    tolerance_change=0.0, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            f = torch.nn.functional.binary_cross_entropy_with_logits(X @ w, yv) + 1e-2 * (w**2).sum()
            f.backward()
            return f

        opt.step(closure)  # type: ignore[arg-type]
        return w.detach()

    # both run to the float64 floor of this problem (|g| ~ 1e-9, curvature >= 2e-2)
    torch.testing.assert_close(fit("ours"), fit("torch"), rtol=0, atol=1e-7)


def test_bad_arguments_are_refused() -> None:
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValidationError, match="no parameters"):
        LBFGS([])
    with pytest.raises(ValidationError, match="one dtype"):
        LBFGS([x, torch.zeros(2, dtype=F64, requires_grad=True)])
    with pytest.raises(ValidationError, match="requires_grad"):
        LBFGS([torch.zeros(2)])
    with pytest.raises(ValidationError, match="lr"):
        LBFGS([x], lr=0.0)
    with pytest.raises(ValidationError, match=">= 1"):
        LBFGS([x], history_size=0)
    opt = LBFGS([x])
    with pytest.raises(ValidationError, match="not an attnpotts LBFGS state"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValidationError, match="does not match"):
        opt.load_state_dict({"n_iter": 1, "func_evals": 2, "s": [torch.zeros(3)], "y": [torch.zeros(3)], "rho": [1.0]})


def test_on_iteration_sees_every_accepted_iteration_and_the_final_objective() -> None:
    x = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)
    opt = LBFGS([x], max_iter=15, history_size=10)
    seen: list[tuple[int, float]] = []
    opt.on_iteration = lambda k, f: seen.append((k, f))
    opt.step(_rosenbrock_closure(x, opt))
    rep = opt.last_report
    assert rep is not None
    assert [k for k, _ in seen] == list(range(1, rep.iterations + 1))
    assert seen[-1][1] == rep.objective
    assert all(b <= a for (_, a), (_, b) in itertools.pairwise(seen))  # Wolfe: descent


def test_buffers_are_reused_across_evaluations() -> None:
    """Every parameter-sized vector comes from a bounded set of buffers, however many evaluations
    run (no fresh flat gradient per evaluation), and the result is that of the recursion."""
    gen = torch.Generator().manual_seed(5)
    A = torch.randn(30, 30, generator=gen, dtype=F64)
    H = A @ A.T / 30 + torch.eye(30, dtype=F64)
    b = torch.randn(30, generator=gen, dtype=F64)
    x = torch.zeros(30, dtype=F64, requires_grad=True)
    opt = LBFGS([x], max_iter=40, history_size=3, tolerance_grad=0.0, tolerance_change=0.0)
    handed_out: list[torch.Tensor] = []  # kept alive, so a fresh tensor could not reuse an address
    flat_grad = opt._flat_grad

    def recording_flat_grad() -> torch.Tensor:
        g = flat_grad()
        handed_out.append(g)
        return g

    opt._flat_grad = recording_flat_grad  # type: ignore[method-assign]

    def closure() -> torch.Tensor:
        opt.zero_grad()
        f = 0.5 * x @ H @ x - b @ x
        f.backward()
        return f

    opt.step(closure)
    rep = opt.last_report
    assert rep is not None and rep.evaluations == len(handed_out) >= 20
    distinct = {g.data_ptr() for g in handed_out}
    assert len(distinct) <= 2 * opt.history_size + 5  # all but x0
    torch.testing.assert_close(x.detach(), torch.linalg.solve(H, b), rtol=0, atol=1e-8)


def test_cpu_buffers_are_rows_of_one_block_with_room_for_the_history() -> None:
    """On the CPU the history and working vectors are rows of one block of 2 m + 8 vectors,
    allocated at the first step (module docstring: no interleaving with the evaluations'
    temporaries on the heap), each starting on a 64-byte boundary as a fresh tensor does."""
    gen = torch.Generator().manual_seed(6)
    A = torch.randn(25, 25, generator=gen, dtype=F64)
    H = A @ A.T / 25 + torch.eye(25, dtype=F64)
    x = torch.zeros(25, dtype=F64, requires_grad=True)
    opt = LBFGS([x], max_iter=30, history_size=4, tolerance_grad=0.0, tolerance_change=0.0)
    assert opt._block is None  # nothing before the first step

    def closure() -> torch.Tensor:
        opt.zero_grad()
        f = 0.5 * x @ H @ x - x.sum()
        f.backward()
        return f

    opt.step(closure)
    block = opt._block
    # 25 float64 values padded to 32 (256 bytes) per row
    assert block is not None and block.shape == (LBFGS.block_vectors(4), 32) == (16, 32)
    lo, hi = block.data_ptr(), block.data_ptr() + block.numel() * block.element_size()
    vectors = [*opt._s, *opt._y, *opt._free]
    assert len(opt._s) == 4 and all(lo <= v.data_ptr() < hi for v in vectors)
    assert all(v.shape == (25,) and v.data_ptr() % ROW_ALIGN_BYTES == 0 for v in vectors)
    torch.testing.assert_close(x.detach(), torch.linalg.solve(H, torch.ones(25, dtype=F64)), rtol=0, atol=1e-6)


def test_max_abs_is_the_infinity_norm_including_nan_and_inf() -> None:
    gen = torch.Generator().manual_seed(0)
    cases = [torch.randn(1000, generator=gen), -torch.rand(5, generator=gen), torch.zeros(3),
             torch.tensor([1.0, float("nan"), -3.0]), torch.tensor([-2.0, float("-inf")]),
             torch.tensor([float("nan"), float("inf")]), torch.tensor([float("inf"), -1.0])]
    for v in cases:
        want = float(torch.linalg.vector_norm(v, math.inf))
        got = LBFGS._max_abs(v)
        assert got == want or (math.isnan(got) and math.isnan(want)), (v, got, want)


def test_reused_start_gives_the_same_steps_with_one_evaluation_fewer_per_step() -> None:
    def run(reuse: bool, poke: bool = False) -> tuple[torch.Tensor, list[int], list[bool]]:
        x = torch.tensor([-1.2, 1.0, 0.5], dtype=F64, requires_grad=True)
        opt = LBFGS([x], max_iter=4, max_eval=10_000, history_size=4, reuse_start=reuse)
        calls = [0]

        def closure() -> torch.Tensor:
            calls[0] += 1
            opt.zero_grad()
            f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2 + 10 * (x[2] - x[1]) ** 2
            f.backward()
            return f

        evals, reused = [], []
        for k in range(4):
            if poke and k == 2:
                with torch.no_grad():
                    x.add_(0.0)  # an in-place write: the carried evaluation is stale
            opt.step(closure)
            rep = opt.last_report
            assert rep is not None and rep.evaluations == calls[0] - sum(evals)
            evals.append(rep.evaluations)
            reused.append(rep.start_reused)
            assert -1 <= rep.final_evaluation < rep.evaluations
        return x.detach().clone(), evals, reused

    plain, plain_evals, plain_reused = run(False)
    fast, fast_evals, fast_reused = run(True)
    assert torch.equal(fast, plain)
    assert plain_reused == [False] * 4 and fast_reused == [False, True, True, True]
    assert [p - f for p, f in zip(plain_evals, fast_evals, strict=True)] == [0, 1, 1, 1]
    poked, _, poked_reused = run(True, poke=True)
    assert poked_reused == [False, True, False, True]
    assert torch.equal(poked, plain)


def test_training_loop_reuses_the_epoch_start_with_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    from attnpotts.models import FullPotts
    from attnpotts.training import TrainingConfig, train
    from attnpotts.training import loop as loop_module

    rng = np.random.default_rng(0)
    states = rng.integers(0, 4, size=(40, 6))
    cfg = TrainingConfig(optimizer="lbfgs", max_epochs=4, lbfgs_max_iter=3, batch_size=None,
                         masking="all", coupling_l2=1e-2, field_l2=1e-2, lbfgs_history=3)

    def fit() -> tuple[torch.Tensor, list[dict]]:
        model = FullPotts(6, 4, symmetric=True, dtype=torch.float64)
        result = train(model, states, config=cfg)
        return model.couplings.detach().clone(), result.history

    fast, fast_hist = fit()
    class NoReuse(LBFGS):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "reuse_start": False})

    monkeypatch.setattr(loop_module, "LBFGS", NoReuse)
    plain, plain_hist = fit()
    assert torch.equal(fast, plain)
    assert [h["train_loss"] for h in fast_hist] == [h["train_loss"] for h in plain_hist]
    assert [h["objective"] for h in fast_hist] == [h["objective"] for h in plain_hist]
    assert [p["evaluations"] - f["evaluations"] for p, f in zip(plain_hist, fast_hist, strict=True)] == [0, 1, 1, 1]


def _quadratic(n: int, seed: int, dtype: torch.dtype = F64) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    diag = torch.tensor(rng.uniform(1.0, 10.0, size=n), dtype=dtype)
    b = torch.tensor(rng.normal(size=n), dtype=dtype)
    return diag, b


@pytest.mark.parametrize("numel", [1000, 2**19 + 1])
def test_small_problems_run_their_algebra_on_one_thread_and_the_closure_on_all(numel: int) -> None:
    """Below SERIAL_ALGEBRA_NUMEL the optimiser's own vector algebra runs with one torch thread;
    the closure always sees the caller's thread count, which is restored after every step,
    also when the closure raises."""
    from attnpotts.training.lbfgs import SERIAL_ALGEBRA_NUMEL

    diag, b = _quadratic(numel, 1, torch.float32)
    x = torch.zeros(numel, requires_grad=True)
    opt = LBFGS([x], max_iter=5, history_size=3)
    seen: list[int] = []

    def closure() -> torch.Tensor:
        seen.append(torch.get_num_threads())
        opt.zero_grad()
        f = 0.5 * (diag * x * x).sum() - b @ x
        f.backward()
        return f

    torch.set_num_threads(2)  # tests/conftest.py puts the count back
    assert opt._serial == (numel < SERIAL_ALGEBRA_NUMEL)
    inside: list[int] = []
    direction = opt._direction

    def spy(g: torch.Tensor) -> torch.Tensor:
        inside.append(torch.get_num_threads())
        return direction(g)

    opt._direction = spy  # type: ignore[method-assign]
    opt.step(closure)
    assert seen and set(seen) == {2}
    assert inside and set(inside) == {1 if numel < SERIAL_ALGEBRA_NUMEL else 2}
    assert torch.get_num_threads() == 2

    def failing() -> torch.Tensor:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        opt.step(failing)
    assert torch.get_num_threads() == 2


def test_one_thread_algebra_gives_the_same_minimum_as_threaded_algebra() -> None:
    """The thread count changes only the rounding of the reductions: both runs reach the
    minimiser of a convex quadratic to the gradient tolerance."""
    n = 100_000  # above torch's grain size, so that the threaded reductions split the vectors
    diag, b = _quadratic(n, 2)
    results = []
    torch.set_num_threads(2)  # tests/conftest.py puts the count back
    for serial in (True, False):
        x = torch.zeros(n, dtype=F64, requires_grad=True)
        opt = LBFGS([x], max_iter=200, history_size=10, tolerance_grad=1e-6, tolerance_change=0.0)
        opt._serial = serial

        def closure(x: torch.Tensor = x, opt: LBFGS = opt) -> torch.Tensor:
            opt.zero_grad()
            f = 0.5 * (diag * x * x).sum() - b @ x
            f.backward()
            return f

        opt.step(closure)
        assert opt.last_report is not None and opt.last_report.stop_reason == "gradient_tolerance"
        results.append(x.detach().clone())
    exact = b / diag
    for r in results:  # |x - x*| <= max|g| / min(diag), max|g| <= 1e-6, min(diag) >= 1
        assert float((r - exact).abs().max()) <= 1e-6
