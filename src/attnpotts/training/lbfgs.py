"""Full-batch L-BFGS with a strong-Wolfe line search, the training loop's ``"lbfgs"`` optimizer.

attnpotts has its own rather than ``torch.optim.LBFGS`` for two reasons, both measured:

* constructing any ``torch.optim.Optimizer`` imports ``torch._dynamo`` (about 1.3 s of CPU on the
  machines this project runs on), a fifth of a whole ``attnpotts contacts`` run on PF00014;
* DCA users need to know why a fit stopped. :class:`LBFGS` reports, for every ``step``, the
  iterations and evaluations it used, the final objective and gradient norm and a named stop
  reason (:data:`LBFGS_STOP_REASONS`), which the convergence reports pass on.

The algorithm is the textbook one (Nocedal & Wright, *Numerical Optimization*, 2nd ed.):
two-loop recursion over the last ``history_size`` curvature pairs with the initial Hessian
``gamma I``, ``gamma = s'y / y'y`` (section 7.2); a line search that brackets a step satisfying the
strong Wolfe conditions and zooms in on it by safeguarded cubic interpolation (algorithms 3.5 and
3.6, equation 3.59). Curvature pairs with ``s'y <= 1e-10`` are skipped, which keeps the inverse
Hessian approximation positive definite. Parameters stay in their dtype; the scalars of the line
search (objective values, directional derivatives) are Python floats (float64).

Threads: on the CPU, a parameter vector of fewer than :data:`SERIAL_ALGEBRA_NUMEL` numbers is
updated with one torch thread (the closure still runs with all of them). Each torch operation
on such a vector is split across the threads, and with sleeping idle threads
(``OMP_WAIT_POLICY=passive``, which ``import attnpotts`` sets) waking them costs more than the
operation: a dot product and an update of 100,000 float32 numbers took 150-180 us on two
threads against 15 us on one, and the two-loop recursion with 60 pairs 21 against 4 ms. From
about a million numbers on, two threads are faster (0.4 against 0.6 ms), so the full model
(``L^2 q^2 / 2`` parameters) keeps them.

Every parameter-sized vector (flat parameters and gradients, the direction, the curvature pairs,
``|g|`` for its 1-norm) lives in buffers allocated once and reused across evaluations and
iterations: the operations are the same as with fresh tensors (``out=`` variants), so the numbers
are bit for bit those of fresh temporaries, without a large allocation and its page faults per
evaluation. On the CPU the buffers are the rows of one block of ``2 m + 8`` vectors allocated at
the first step, each row starting on a 64-byte boundary as a fresh tensor does (torch's CPU
allocator aligns to 64 bytes): MKL's dot products take alignment-dependent paths on some CPUs
(AMD EPYC: a curvature pair restored from a checkpoint into a fresh tensor gave results 1 ulp
apart), so every vector sits where a fresh one would. A row's pages become resident when it is
first written, so a short fit holds only the rows it uses; and a long fit's growing history
does not interleave, on the heap, with the evaluations' temporaries, which glibc then could
neither reuse nor trim (with the memory kept by :mod:`attnpotts.training.allocator`; measured in
``docs/dca-measurements.md``, factored attention, "Memory", and by ``tests/dca/test_memory_measured.py``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..errors import ValidationError

__all__ = ["LBFGS", "LBFGS_STOP_REASONS", "ROW_ALIGN_BYTES", "SERIAL_ALGEBRA_NUMEL", "LBFGSReport"]

#: Alignment of the rows of the CPU block (bytes): that of torch's CPU allocator (module docstring).
ROW_ALIGN_BYTES = 64

#: Below this many parameters (on the CPU) the optimiser's own vector algebra runs on one torch
#: thread; see the module docstring for the measurement.
SERIAL_ALGEBRA_NUMEL = 2**19


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads and restore the previous count after (nothing is
    set when it is already ``n``)."""
    old = torch.get_num_threads()
    if n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


#: Why one :meth:`LBFGS.step` ended.
LBFGS_STOP_REASONS = (
    "max_iterations",  # the step's iteration budget is used up
    "max_evaluations",  # the step's objective-evaluation budget is used up
    "gradient_tolerance",  # max |gradient| <= tolerance_grad
    "step_tolerance",  # max |parameter change| <= tolerance_change
    "objective_tolerance",  # |objective change| < tolerance_change
    "line_search_failed",  # no step along the search direction lowered the objective
    "not_finite",  # the objective or gradient became NaN/inf (parameters restored)
)

#: Sufficient-decrease (Armijo) and curvature constants of the strong Wolfe conditions.
_C1 = 1e-4
_C2 = 0.9


@dataclass(frozen=True)
class LBFGSReport:
    """What one :meth:`LBFGS.step` did.

    Attributes:
        iterations: accepted line-search steps in this call.
        evaluations: objective-and-gradient evaluations in this call (the first one included).
        initial_objective: objective at the start of the call.
        objective: objective at the parameters left in place.
        gradient_norm: Euclidean norm of the gradient there.
        stop_reason: one of :data:`LBFGS_STOP_REASONS`.
        last_relative_decrease: ``(f_old - f) / |f|`` of the last accepted iteration (NaN when
            no iteration was accepted): how much the objective still moved when the call ended.
        start_reused: the call started from the objective and gradient where the previous call
            ended (``reuse_start``) instead of evaluating them again.
        final_evaluation: which closure call of this step (0-based) gave the objective and
            gradient at the parameters left in place; -1 when that is the reused start.
    """

    iterations: int
    evaluations: int
    initial_objective: float
    objective: float
    gradient_norm: float
    stop_reason: str
    last_relative_decrease: float = math.nan
    start_reused: bool = False
    final_evaluation: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The report as a plain dict (JSON-ready)."""
        return asdict(self)


class LBFGS:
    """Limited-memory BFGS over a list of tensors with a strong-Wolfe line search.

    ``step(closure)`` runs up to ``max_iter`` iterations, where ``closure()`` zeroes the
    gradients, computes the objective, calls ``backward`` and returns the objective (a scalar
    tensor). The curvature history persists between calls (one training epoch = one call), and
    :meth:`state_dict` / :meth:`load_state_dict` save and restore it exactly, so a resumed run
    continues bit for bit.

    Args:
        params: tensors to optimise (same dtype and device; leaf tensors with ``requires_grad``).
        lr: the trial step of every line search (1 suits L-BFGS); the very first iteration tries
            ``lr * min(1, 1 / ||g||_1)`` along ``-g``.
        max_iter: iterations per :meth:`step`.
        max_eval: objective evaluations per :meth:`step` (default ``ceil(1.25 max_iter)``),
            checked after each iteration (a line search in progress is finished first).
        history_size: curvature pairs kept (``m``; memory at most ``2 m + 6`` parameter copies,
            allocated as needed and reused).
        tolerance_grad: stop when ``max |g| <= tolerance_grad``.
        tolerance_change: stop when the parameter change or the objective change of an iteration
            falls below this.
        max_line_search: evaluations one line search may use.
        reuse_start: start a :meth:`step` from the objective and gradient where the previous
            one ended when the parameters were not changed in between (their version counters
            and storage are checked), instead of evaluating them again. Only for a closure that
            computes the same deterministic function in every call (full batch, no sampling,
            no dropout): then the steps are the same as without it, bit for bit, one
            evaluation cheaper each (the evaluation budget counts the evaluations made).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        *,
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        history_size: int = 10,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        max_line_search: int = 25,
        reuse_start: bool = False,
    ) -> None:
        self.params = list(params)
        if not self.params:
            raise ValidationError("LBFGS got no parameters to optimise")
        first = self.params[0]
        for p in self.params:
            if not p.requires_grad or not p.is_floating_point():
                raise ValidationError("LBFGS parameters must be floating-point tensors with requires_grad")
            if p.dtype != first.dtype or p.device != first.device:
                raise ValidationError(
                    f"LBFGS parameters must share one dtype and device, got {p.dtype}/{p.device} "
                    f"and {first.dtype}/{first.device}"
                )
        if not (lr > 0) or not math.isfinite(lr):
            raise ValidationError(f"lr must be a positive number, got {lr}")
        if int(max_iter) < 1 or int(history_size) < 1 or int(max_line_search) < 1:
            raise ValidationError(
                f"max_iter, history_size and max_line_search must be >= 1, got {max_iter}, "
                f"{history_size}, {max_line_search}"
            )
        if max_eval is not None and int(max_eval) < 1:
            raise ValidationError(f"max_eval must be >= 1 or None, got {max_eval}")
        if tolerance_grad < 0 or tolerance_change < 0:
            raise ValidationError("tolerance_grad and tolerance_change must be >= 0")
        self.lr = float(lr)
        #: called as ``on_iteration(iteration, objective)`` after every accepted iteration (progress
        #: reporting; not part of the state)
        self.on_iteration: Callable[[int, float], None] | None = None
        self.max_iter = int(max_iter)
        self.max_eval = int(max_eval) if max_eval is not None else math.ceil(1.25 * self.max_iter)
        self.history_size = int(history_size)
        self.tolerance_grad = float(tolerance_grad)
        self.tolerance_change = float(tolerance_change)
        self.max_line_search = int(max_line_search)
        self._numel = sum(p.numel() for p in self.params)
        # one torch thread for the optimiser's own small-vector algebra (module docstring)
        self._serial = first.device.type == "cpu" and self._numel < SERIAL_ALGEBRA_NUMEL
        self.n_iter = 0  # iterations over all calls
        self.func_evals = 0  # evaluations over all calls
        self._s: list[torch.Tensor] = []  # steps x_{k+1} - x_k, oldest first
        self._y: list[torch.Tensor] = []  # gradient changes g_{k+1} - g_k
        self._rho: list[float] = []  # 1 / (y's)
        self.last_report: LBFGSReport | None = None
        # parameter-sized buffers not in use (handed out by _take, returned by _give)
        self._free: list[torch.Tensor] = []
        # on the CPU, the block whose rows the buffers are (allocated at the first _take)
        self._block: torch.Tensor | None = None
        self._x0: torch.Tensor | None = None  # flat parameters at the start of an iteration
        self.reuse_start = bool(reuse_start)
        #: the caller's record of the evaluation where the last step ended (with ``reuse_start``
        #: the next step may start from it without calling the closure; the training loop keeps
        #: that evaluation's data term here); not part of the state
        self.start_info: Any = None
        # (objective, gradient buffer, parameter versions) where the last step ended
        self._carry: tuple[float, torch.Tensor, tuple[tuple[int, int], ...]] | None = None

    # ------------------------------------------------------------------------ buffers
    def _take(self) -> torch.Tensor:
        """A parameter-sized flat buffer (contents undefined) from the free list or new.

        On the CPU the first call allocates :meth:`block_vectors` buffers as the rows of
        one block (module docstring); past them, or on other devices, buffers are allocated one
        by one.
        """
        if self._free:
            return self._free.pop()
        first = self.params[0]
        if self._block is None and first.device.type == "cpu":
            per = max(1, ROW_ALIGN_BYTES // first.element_size())
            stride = -(-self._numel // per) * per  # each row on a 64-byte boundary
            self._block = torch.empty((self.block_vectors(self.history_size), stride),
                                      dtype=first.dtype, device=first.device)
            rows = [r[: self._numel] for r in self._block.unbind(0)]
            self._free = rows[::-1]  # rows handed out from the first
            return self._free.pop()
        return torch.empty(self._numel, dtype=first.dtype, device=first.device)

    @staticmethod
    def block_vectors(history_size: int) -> int:
        """Parameter-sized buffers of the CPU block: the ``2 m`` of the history and 8 working
        ones (at most ``2 m + 6`` are in use at once)."""
        return 2 * int(history_size) + 8

    def _give(self, *buffers: torch.Tensor | None) -> None:
        """Return buffers from :meth:`_take` that nothing refers to any more."""
        self._free.extend(b for b in buffers if b is not None)

    @staticmethod
    def _max_abs(v: torch.Tensor) -> float:
        """``max |v|`` as ``max(max v, -min v)`` (exact): NaN when ``v`` holds a NaN, else inf
        when it holds an inf.

        One pass without a temporary; ``vector_norm(v, inf)`` gives the same value but took 5x
        as long on the CPU (42 against 8 ms for 9 M float32 numbers), and it runs 3 times per
        evaluation (``benchmarks/bench_plm_subsampled.py profile``).
        """
        lo, hi = torch.aminmax(v)
        return float(torch.maximum(hi, torch.neg(lo)))

    def _sum_abs(self, v: torch.Tensor) -> float:
        """``sum |v|``, summed as ``v.abs().sum()`` is (``|v|`` in a pool buffer)."""
        scratch = torch.abs(v, out=self._take())
        total = float(scratch.sum())
        self._give(scratch)
        return total

    # ------------------------------------------------------------------------ flat views
    @torch.no_grad()
    def _flat_params(self) -> torch.Tensor:
        """The parameters concatenated into the reused buffer ``_x0``."""
        if self._x0 is None:
            self._x0 = self._take()
        offset = 0
        for p in self.params:
            n = p.numel()
            self._x0[offset : offset + n].copy_(p.detach().reshape(-1))
            offset += n
        return self._x0

    @torch.no_grad()
    def _flat_grad(self) -> torch.Tensor:
        """The gradients concatenated into a buffer from :meth:`_take` (zeros where ``None``)."""
        out = self._take()
        offset = 0
        for p in self.params:
            n = p.numel()
            if p.grad is None:
                out[offset : offset + n].zero_()
            else:
                out[offset : offset + n].copy_(p.grad.detach().reshape(-1))
            offset += n
        return out

    @torch.no_grad()
    def _set_params(self, x0: torch.Tensor, t: float, d: torch.Tensor) -> None:
        """Parameters <- ``x0 + t d`` (written in place when a parameter is contiguous)."""
        offset = 0
        for p in self.params:
            n = p.numel()
            if p.is_contiguous():
                torch.add(x0[offset : offset + n], d[offset : offset + n], alpha=t, out=p.view(-1))
            else:
                p.copy_(torch.add(x0[offset : offset + n], d[offset : offset + n], alpha=t).view_as(p))
            offset += n

    def _versions(self) -> tuple[tuple[int, int], ...]:
        """Storage and version counter of every parameter (an in-place write bumps the counter)."""
        return tuple((p.data_ptr(), p._version) for p in self.params)

    def _drop_carry(self) -> None:
        if self._carry is not None:
            self._give(self._carry[1])
            self._carry = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the parameters' gradients (to ``None``, or to zeros in place)."""
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_()
                p.grad.zero_()

    # ------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The curvature history and counters (tensors are cloned)."""
        return {
            "n_iter": self.n_iter,
            "func_evals": self.func_evals,
            "s": [s.clone() for s in self._s],
            "y": [y.clone() for y in self._y],
            "rho": list(self._rho),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        try:
            s, y, rho = list(state["s"]), list(state["y"]), [float(r) for r in state["rho"]]
            n_iter, evals = int(state["n_iter"]), int(state["func_evals"])
        except (KeyError, TypeError) as exc:
            raise ValidationError(
                f"not an attnpotts LBFGS state ({exc}); was the checkpoint written by another optimizer?"
            ) from exc
        if not (len(s) == len(y) == len(rho)) or any(t.numel() != self._numel for t in s + y):
            raise ValidationError(
                f"LBFGS state does not match these parameters ({self._numel} values, history of "
                f"{len(s)}/{len(y)}/{len(rho)})"
            )
        dev, dt = self.params[0].device, self.params[0].dtype
        self._drop_carry()
        self._s = [t.to(dev, dt).clone() for t in s]
        self._y = [t.to(dev, dt).clone() for t in y]
        self._rho = rho
        self.n_iter, self.func_evals = n_iter, evals

    # ------------------------------------------------------------------------ algorithm
    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        """``-H g`` by the two-loop recursion (``-g`` without history), in a buffer from :meth:`_take`."""
        q = torch.neg(g, out=self._take())
        if not self._s:
            return q
        alphas = []
        for s, y, rho in zip(reversed(self._s), reversed(self._y), reversed(self._rho), strict=True):
            a = rho * float(torch.dot(s, q))
            alphas.append(a)
            q.add_(y, alpha=-a)
        s_last, y_last = self._s[-1], self._y[-1]
        gamma = float(torch.dot(s_last, y_last)) / float(torch.dot(y_last, y_last))
        q.mul_(gamma)
        for s, y, rho, a in zip(self._s, self._y, self._rho, reversed(alphas), strict=True):
            b = rho * float(torch.dot(y, q))
            q.add_(s, alpha=a - b)
        return q

    def _remember(self, s: torch.Tensor, y: torch.Tensor) -> None:
        """Keep the pair ``(s, y)`` (buffers from :meth:`_take`) or give it back when skipped."""
        sy = float(torch.dot(s, y))
        if not sy > 1e-10:
            self._give(s, y)
            return  # no positive curvature along s: skip the pair
        if len(self._s) == self.history_size:
            self._give(self._s.pop(0), self._y.pop(0))
            self._rho.pop(0)
        self._s.append(s)
        self._y.append(y)
        self._rho.append(1.0 / sy)

    def step(self, closure: Callable[[], torch.Tensor]) -> float:
        """Run up to ``max_iter`` iterations; return the objective at the start (as torch does).

        The parameters are left at the best point found; :attr:`last_report` says what happened.
        """
        threads = torch.get_num_threads()  # the closure's; the algebra's own may be one (``_serial``)
        with _torch_threads(1 if self._serial else threads):
            return self._step(closure, threads)

    def _step(self, closure: Callable[[], torch.Tensor], threads: int) -> float:
        evals = 0
        origin: dict[int, int] = {}  # id of a gradient buffer -> the closure call that filled it

        def evaluate(x0: torch.Tensor | None, t: float, d: torch.Tensor | None) -> tuple[float, torch.Tensor]:
            nonlocal evals
            if x0 is not None and d is not None:
                self._set_params(x0, t, d)
            with _torch_threads(threads), torch.enable_grad():  # the caller's threads
                loss = closure()
            evals += 1
            g = self._flat_grad()  # a buffer from _take
            origin[id(g)] = evals - 1
            return float(loss.detach()), g

        carry, self._carry = self._carry, None
        reused = carry is not None and self.reuse_start and carry[2] == self._versions()
        if reused:
            assert carry is not None
            f, g = carry[0], carry[1]
            origin[id(g)] = -1
        else:
            if carry is not None:
                self._give(carry[1])
            f, g = evaluate(None, 0.0, None)
        f_start = f
        iterations = 0
        last_decrease = math.nan
        reason = "max_iterations"
        g_max = self._max_abs(g)  # not finite exactly when some entry of g is not
        if not (math.isfinite(f) and math.isfinite(g_max)):
            reason = "not_finite"
        elif g_max <= self.tolerance_grad:
            reason = "gradient_tolerance"
        else:
            while True:
                d = self._direction(g)
                gtd = float(torch.dot(g, d))
                if not gtd < 0:  # not a descent direction (rounding): restart from -g
                    self._give(*self._s, *self._y)
                    self._s, self._y, self._rho = [], [], []
                    torch.neg(g, out=d)
                    gtd = float(torch.dot(g, d))
                # the very first step along -g is scaled to unit length in the 1-norm
                t0 = self.lr * min(1.0, 1.0 / self._sum_abs(g)) if self.n_iter == 0 else self.lr
                x0 = self._flat_params()
                t, f_new, g_new = self._line_search(evaluate, x0, d, f, gtd, t0, self.max_line_search)
                if t == 0.0 or g_new is None:
                    self._set_params(x0, 0.0, d)  # back to the start of this iteration
                    self._give(d, g_new)
                    reason = "not_finite" if not math.isfinite(f_new) else "line_search_failed"
                    break
                self._set_params(x0, t, d)
                iterations += 1
                self.n_iter += 1
                self._remember(torch.mul(d, t, out=self._take()), torch.sub(g_new, g, out=self._take()))
                self._give(g)
                f_old, f, g = f, f_new, g_new
                last_decrease = (f_old - f) / max(abs(f), 1e-300)
                if self.on_iteration is not None:
                    self.on_iteration(iterations, f)
                d_max = self._max_abs(d)
                self._give(d)
                if self._max_abs(g) <= self.tolerance_grad:
                    reason = "gradient_tolerance"
                    break
                if abs(t) * d_max <= self.tolerance_change:
                    reason = "step_tolerance"
                    break
                if abs(f - f_old) < self.tolerance_change:
                    reason = "objective_tolerance"
                    break
                if iterations >= self.max_iter:
                    reason = "max_iterations"
                    break
                if evals >= self.max_eval:
                    reason = "max_evaluations"
                    break
        self.func_evals += evals
        self.last_report = LBFGSReport(
            iterations=iterations,
            evaluations=evals,
            initial_objective=f_start,
            objective=f,
            gradient_norm=float(torch.linalg.vector_norm(g.double())),
            stop_reason=reason,
            last_relative_decrease=last_decrease,
            start_reused=reused,
            final_evaluation=origin[id(g)],
        )
        if self.reuse_start and reason != "not_finite":
            self._carry = (f, g, self._versions())  # the next step may start here
        else:
            self._give(g)
        return f_start

    def _line_search(
        self,
        evaluate: Callable[[torch.Tensor, float, torch.Tensor], tuple[float, torch.Tensor]],
        x0: torch.Tensor,
        d: torch.Tensor,
        f0: float,
        gtd0: float,
        t: float,
        budget: int,
    ) -> tuple[float, float, torch.Tensor | None]:
        """A step ``t`` satisfying the strong Wolfe conditions (or the best one within ``budget``).

        Returns ``(t, f(t), g(t))``. ``t = 0`` (and ``g = None``) when no evaluated step lowered
        the objective; ``f`` is then the last value seen (not finite if that is why it failed).
        Every gradient ``evaluate`` returns (a buffer from :meth:`_take`) is given back here
        except the one returned.
        """
        budget = max(1, budget)
        n = 0
        t_prev, f_prev, gtd_prev = 0.0, f0, gtd0
        g_prev: torch.Tensor | None = None
        lo: tuple[float, float, float, torch.Tensor | None]
        hi: tuple[float, float, float]
        while True:
            f_t, g_t = evaluate(x0, t, d)
            n += 1
            if not (math.isfinite(f_t) and math.isfinite(self._max_abs(g_t))):
                self._give(g_t)
                # overshoot into a non-finite region: shrink towards the last good step
                if n >= budget or t <= 1e-20:
                    return (t_prev, f_prev, g_prev) if g_prev is not None else (0.0, f_t, None)
                t = t_prev + 0.1 * (t - t_prev)
                continue
            gtd_t = float(torch.dot(g_t, d))
            if f_t > f0 + _C1 * t * gtd0 or (n > 1 and f_t >= f_prev):
                self._give(g_t)
                lo, hi = (t_prev, f_prev, gtd_prev, g_prev), (t, f_t, gtd_t)
                break
            if abs(gtd_t) <= -_C2 * gtd0:
                self._give(g_prev)
                return t, f_t, g_t
            if gtd_t >= 0:
                self._give(g_prev)
                lo, hi = (t, f_t, gtd_t, g_t), (t_prev, f_prev, gtd_prev)
                break
            if n >= budget:
                self._give(g_prev)
                return t, f_t, g_t  # sufficient decrease holds; out of evaluations
            # extrapolate: a cubic step at least a little beyond t and at most 10 t
            t_next = _cubic_minimum(t_prev, f_prev, gtd_prev, t, f_t, gtd_t,
                                    t + 0.01 * (t - t_prev), 10.0 * t)
            self._give(g_prev)
            t_prev, f_prev, gtd_prev, g_prev = t, f_t, gtd_t, g_t
            t = t_next
        # zoom: lo satisfies sufficient decrease with the lowest objective so far; the step we
        # want lies between lo and hi
        d_max = self._max_abs(d)
        while n < budget:
            t_lo, f_lo, gtd_lo, g_lo = lo
            t_hi, f_hi, gtd_hi = hi
            width = abs(t_hi - t_lo)
            if width * d_max < self.tolerance_change:
                break
            a, b = min(t_lo, t_hi), max(t_lo, t_hi)
            t = _cubic_minimum(t_lo, f_lo, gtd_lo, t_hi, f_hi, gtd_hi, a, b)
            # safeguard: stay at least a tenth of the interval away from its ends
            t = min(max(t, a + 0.1 * (b - a)), b - 0.1 * (b - a))
            f_t, g_t = evaluate(x0, t, d)
            n += 1
            if not (math.isfinite(f_t) and math.isfinite(self._max_abs(g_t))):
                self._give(g_t)
                hi = (t, math.inf, math.inf)
                continue
            gtd_t = float(torch.dot(g_t, d))
            if f_t > f0 + _C1 * t * gtd0 or f_t >= f_lo:
                self._give(g_t)
                hi = (t, f_t, gtd_t)
            else:
                self._give(g_lo)
                if abs(gtd_t) <= -_C2 * gtd0:
                    return t, f_t, g_t
                if gtd_t * (t_hi - t_lo) >= 0:
                    hi = (t_lo, f_lo, gtd_lo)
                lo = (t, f_t, gtd_t, g_t)
        # out of evaluations or the bracket collapsed: the lowest point seen, if it moved at all
        t_lo, f_lo, _, g_lo = lo
        return (t_lo, f_lo, g_lo) if g_lo is not None else (0.0, f_lo, None)


def _cubic_minimum(
    a: float, fa: float, ga: float, b: float, fb: float, gb: float, lo: float, hi: float
) -> float:
    """Minimiser in ``[lo, hi]`` of the cubic matching ``f, f'`` at ``a`` and ``b`` (N&W eq. 3.59).

    Falls back to the middle of ``[lo, hi]`` when the cubic has no minimum (or the data are not
    finite).
    """
    if a == b or not all(math.isfinite(v) for v in (fa, ga, fb, gb)):
        return 0.5 * (lo + hi)
    d1 = ga + gb - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - ga * gb
    if disc < 0:
        return 0.5 * (lo + hi)
    d2 = math.copysign(math.sqrt(disc), b - a)
    denom = gb - ga + 2.0 * d2
    if denom == 0:
        return 0.5 * (lo + hi)
    t = b - (b - a) * (gb + d2 - d1) / denom
    if not math.isfinite(t):
        return 0.5 * (lo + hi)
    return min(max(t, lo), hi)
