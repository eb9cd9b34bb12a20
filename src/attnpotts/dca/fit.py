"""DCA estimators: full Potts model by symmetric pseudo-likelihood, and factored attention.

Both estimators fit through the one training loop of attnpotts (:func:`attnpotts.training.train`,
full-batch L-BFGS with strong-Wolfe line search) and its objective (weighted masked
cross-entropy on all positions = pseudo-likelihood, :mod:`attnpotts.inference.objectives`, plus L2
on the coupling product and the fields). The models are :class:`attnpotts.models.FullPotts`
(``symmetric=True``: plmc/CCMpred's symmetric pseudo-likelihood) and
:class:`attnpotts.models.FactoredAttention` (``"softmax"`` variant, AttentionDCA). The full
model's all-positions objective is the fused pseudo-likelihood pass of
:mod:`attnpotts.models.kernels` on the CPU (logits by its one-hot contraction elsewhere);
factored attention's is the blocked pass of :mod:`attnpotts.models.factored_kernels` (one block
of sites of ``J`` at a time, any device), and its scores come from the factors, so its fit never
holds ``J`` whole. Both are exact in the working dtype.

Speed choices (measured in ``benchmarks/bench_dca.py``): duplicates are collapsed into weights,
unique sequences are sorted lexicographically (neighbouring sequences share the rows of ``W``
that the kernel gathers), fields start at plmc's ``log(f_i N_eff + 1)`` (centred) and couplings at
zero, and the whole alignment is one chunk when it fits the memory budget (per-chunk overhead is
a full-size transposed copy of ``W``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from ..alignment import DEFAULT_THRESHOLD
from ..errors import ShapeError, ValidationError
from ..models import FactoredAttention, FullPotts
from ..models.kernels import KERNEL_METHODS
from ..random import SeedLike
from ..training.callbacks import Callback
from .defaults import (
    COLLAPSE_MODES,
    FACTORED_COLLAPSE,
    FACTORED_LBFGS_HISTORY,
    FACTORED_MAX_ITER_RANDOM,
    FACTORED_POSITION_SCALE,
    FACTORED_REGULARIZATION,
    FACTORED_SCORE_GAP,
    FACTORED_START,
    FACTORED_START_NOISE,
    FACTORED_START_SHARPNESS,
    FACTORED_STARTS,
    FACTORED_SYMMETRIC,
    PLM_CHECK_EVERY,
    PLM_COLLAPSE,
    PLM_LBFGS_HISTORY,
    PLM_MAX_ITER,
    PLM_REGULARIZATION,
    PLM_SCORE_GAP,
    PLM_TOLERANCE,
    factored_iterations,
)
from .memory import DEFAULT_MEMORY_LIMIT, MemoryEstimate, check_memory, estimate_memory
from .regularization import Regularization

__all__ = [
    "FAR_FROM_CONVERGENCE",
    "ConvergenceReport",
    "FactoredDCA",
    "PlmDCA",
    "PreparedData",
    "fit_factored",
    "fit_plm",
    "merge_neighbours",
    "prepare_data",
]

logger = logging.getLogger(__name__)

#: Default identity threshold of the sequence weights (80 %), shared with attnpotts.alignment.
DEFAULT_IDENTITY = DEFAULT_THRESHOLD


# ----------------------------------------------------------------------------------- data
@dataclass(frozen=True, eq=False)
class PreparedData:
    """Weighted unique sequences ready for fitting.

    Attributes:
        states: ``(U, L)`` unique sequences, sorted lexicographically.
        weights: ``(U,)`` collapsed weights (sum: ``n_eff``).
        n_sequences: sequences before collapsing duplicates.
        n_eff: effective number of sequences.
        n_states: ``q``.
        gap_index: state index of the gap (``None`` without one).
        identity_threshold: threshold of the weights (``None`` if weights were given).
        n_unique: distinct sequences before :func:`merge_neighbours` (``None``: not merged, the
            rows of ``states``).
        merged_at: identity at which neighbours were merged (``None``: not merged).
    """

    states: np.ndarray
    weights: np.ndarray
    n_sequences: int
    n_eff: float
    n_states: int
    gap_index: int | None
    identity_threshold: float | None
    n_unique: int | None = None
    merged_at: float | None = None


def prepare_data(
    data: Any,
    weights: Any = None,
    *,
    n_states: int | None = None,
    identity_threshold: float = DEFAULT_IDENTITY,
) -> PreparedData:
    """Collapse an alignment into weighted unique sequences.

    Args:
        data: a :class:`~attnpotts.alignment.MultipleSequenceAlignment` or integer states ``(N, L)``.
        weights: ``None`` (inverse-neighbour weights at ``identity_threshold`` via
            :func:`attnpotts.alignment.sequence_weights`), a
            :class:`~attnpotts.alignment.SequenceWeights`, or ``(N,)`` non-negative weights.
        n_states: ``q`` for raw states (default: ``max + 1``; taken from the alignment otherwise).
        identity_threshold: for computed weights.
    """
    from ..alignment import (
        MultipleSequenceAlignment,
        SequenceWeights,
        sequence_weights,
        unique_rows,
    )

    gap: int | None = None
    if isinstance(data, MultipleSequenceAlignment):
        states = np.asarray(data.states)
        q = data.q
        gap = data.alphabet.gap_index
    else:
        states = np.asarray(data)
        if states.ndim != 2:
            raise ShapeError(f"states must be (N, L), got shape {states.shape}")
        if not np.issubdtype(states.dtype, np.integer):
            raise ValidationError(f"states must be integers, got dtype {states.dtype}")
        if states.size == 0:
            raise ValidationError("no sequences to fit; pass at least one sequence")
        q = int(states.max()) + 1 if n_states is None else int(n_states)
        if states.min() < 0 or states.max() >= q:
            raise ValidationError(f"states must lie in 0..{q - 1}, got {states.min()}..{states.max()}")
    if states.shape[1] < 2:
        raise ShapeError(f"need at least 2 columns, got L = {states.shape[1]}")
    threshold: float | None = None
    if weights is None:
        sw = sequence_weights(states, threshold=identity_threshold)
        uniq, w = sw.unique_states, sw.unique_weights
        threshold = float(identity_threshold)
    elif isinstance(weights, SequenceWeights):
        if weights.n_sequences != states.shape[0]:
            raise ShapeError(f"weights are for {weights.n_sequences} sequences, the data has {states.shape[0]}")
        uniq, w, threshold = weights.unique_states, weights.unique_weights, weights.threshold
    else:
        wa = np.asarray(weights, dtype=np.float64)
        if wa.shape != (states.shape[0],):
            raise ShapeError(f"weights must have shape ({states.shape[0]},), got {wa.shape}")
        if not np.all(np.isfinite(wa)) or (wa < 0).any() or wa.sum() <= 0:
            raise ValidationError("weights must be finite, non-negative and not all zero")
        uniq, _, inverse, _ = unique_rows(states)
        w = np.bincount(inverse, weights=wa, minlength=uniq.shape[0])
    order = np.lexsort(np.asarray(uniq).T[::-1])  # lexicographic: row 0 is the primary key
    return PreparedData(
        states=np.ascontiguousarray(np.asarray(uniq)[order]),
        weights=np.asarray(w, dtype=np.float64)[order],
        n_sequences=int(states.shape[0]),
        n_eff=float(np.sum(w)),
        n_states=q,
        gap_index=gap,
        identity_threshold=threshold,
    )


def merge_neighbours(data: PreparedData, threshold: float) -> PreparedData:
    """Fit each group of near neighbours as one weighted sequence: fewer rows, the same ``N_eff``.

    Groups are :func:`attnpotts.alignment.neighbour_leaders` at identity ``threshold`` (every
    member within it of its leader); the leader stands for the group with the sum of its
    members' weights, so the total weight and the objective's scale are unchanged. A deep,
    redundant alignment shrinks to about ``N_eff`` rows (PF00595: 15,299 unique sequences, 4,532
    groups at 80 %), and each objective evaluation costs that much less; the statistics move
    by what separates members from their leader (at most ``1 - threshold`` of the columns).
    """
    from ..alignment import neighbour_leaders

    leader = neighbour_leaders(data.states, threshold=threshold)  # checks the threshold
    rows, inverse = np.unique(leader, return_inverse=True)  # ascending: the sorted order is kept
    weights = np.bincount(inverse.ravel(), weights=data.weights, minlength=rows.size)
    return replace(
        data,
        states=np.ascontiguousarray(data.states[rows]),
        weights=weights,
        n_unique=data.n_unique if data.n_unique is not None else int(data.states.shape[0]),
        merged_at=float(threshold),
    )


def _shrink(data: PreparedData) -> float:
    """Distinct sequences per fitted row (1 unless :func:`merge_neighbours` grouped them)."""
    return 1.0 if data.n_unique is None else data.n_unique / data.states.shape[0]


def _initial_fields(data: PreparedData) -> np.ndarray:
    """plmc's start: ``h[i, a] = log(f_i(a) N_eff + 1)``, centred over ``a`` (``(L, q)``)."""
    L, q = data.states.shape[1], data.n_states
    f = np.zeros((L, q))
    for i in range(L):
        f[i] = np.bincount(data.states[:, i], weights=data.weights, minlength=q)
    h = np.log(f + 1.0)  # f already carries the factor N_eff (weighted counts)
    return h - h.mean(axis=1, keepdims=True)


# ----------------------------------------------------------------------------------- models
# ----------------------------------------------------------------------------------- report
@dataclass(frozen=True)
class ConvergenceReport:
    """How an L-BFGS fit ended.

    Attributes:
        iterations: L-BFGS iterations done.
        max_iterations: the limit.
        evaluations: objective-and-gradient evaluations (line searches included).
        final_objective: training objective (per weighted token, penalties included).
        final_gradient_norm: Euclidean norm of the objective's gradient at the end.
        stop_reason: why the optimizer stopped, one of
            :data:`attnpotts.training.LBFGS_STOP_REASONS` (``"max_iterations"``: the limit was
            reached; ``"max_evaluations"``: line searches used up the ``3 max_iter`` evaluation
            budget; ``"gradient_tolerance"`` / ``"step_tolerance"`` / ``"objective_tolerance"``:
            converged at tolerances 1e-12 (gradient) and 1e-16 (change);
            ``"line_search_failed"``: no further decrease at float precision), ``"diverged"``
            (non-finite loss; the last good state was restored), or ``"converged"`` (the
            convergence rule: the objective fell by less than ``tolerance`` (relative) over the
            last ``check_every`` iterations).
        wall_seconds: time in the training loop.
        message: the training loop's note, if any.
        last_relative_decrease: relative objective decrease of the last iteration,
            ``(f_old - f) / |f|`` (NaN when unknown).
        far_from_convergence: the fit ran out of iterations or evaluations while the objective
            still fell by more than :data:`FAR_FROM_CONVERGENCE` (relative) per iteration; the
            couplings, and possibly the contacts, would still change with more iterations.
        warning: the message for that case (empty otherwise).
        tolerance: the convergence rule's relative tolerance (``None``: fixed iterations).
        check_every: the rule's window in iterations (0 without a rule).
        window_relative_decrease: relative objective decrease over the last window
            (``(f_{k-w} - f_k) / |f_k|``; NaN without a rule or before two windows).
    """

    iterations: int
    max_iterations: int
    evaluations: int
    final_objective: float
    final_gradient_norm: float
    stop_reason: str
    wall_seconds: float
    message: str = ""
    last_relative_decrease: float = math.nan
    far_from_convergence: bool = False
    warning: str = ""
    tolerance: float | None = None
    check_every: int = 0
    window_relative_decrease: float = math.nan


#: Relative objective decrease per iteration above which a fit that ran out of iterations is
#: reported as far from convergence. Measured on the eight benchmark families
#: (``benchmarks/select_dca_defaults.py``, objective every 5 iterations): while the objective
#: still falls by more than ~1e-2 per iteration (the first 5-15 iterations) the top-L precision
#: is 0.03-0.25 below where it settles; below ~5e-3 it moves by at most a pair or two.
FAR_FROM_CONVERGENCE = 1e-2


def _convergence_warning(stop_reason: str, last_decrease: float, iterations: int) -> str:
    """The warning of a fit stopped by its budget while still moving (empty otherwise)."""
    if stop_reason not in ("max_iterations", "max_evaluations"):
        return ""
    if not (math.isfinite(last_decrease) and last_decrease > FAR_FROM_CONVERGENCE):
        return ""
    return (
        f"the fit stopped far from convergence: after {iterations} "
        f"iteration{'' if iterations == 1 else 's'} ({stop_reason}) the "
        f"objective still fell by {last_decrease:.2g} (relative) in the last iteration, above "
        f"{FAR_FROM_CONVERGENCE:g}; raise max_iter (--max-iter) for converged couplings"
    )


class _ConvergenceRule(Callback):
    """Stop when the objective fell by less than ``tolerance`` (relative) over the last epoch.

    The fit runs its L-BFGS iterations in epochs of ``check_every`` iterations (the curvature
    history persists across them), and this callback compares the objective (data term plus
    penalties, where each epoch's last step ended) with the previous epoch's.
    """

    def __init__(self, tolerance: float) -> None:
        self.tolerance = float(tolerance)
        self.previous: float | None = None
        self.last_decrease = math.nan
        self.fired = False

    def on_epoch_end(self, record: dict[str, Any]) -> bool | None:
        f = record.get("objective")
        if f is None or not math.isfinite(float(f)):
            return None
        f = float(f)
        if record.get("lbfgs_stop") not in (None, "max_iterations", "max_evaluations"):
            return True  # L-BFGS stopped by itself (its own tolerances, or no further decrease)
        if self.previous is not None:
            self.last_decrease = (self.previous - f) / max(abs(f), 1e-300)
            if self.last_decrease < self.tolerance:
                self.fired = True
                return True
        self.previous = f
        return None


def _objective_and_gradient_norm(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    weights: torch.Tensor,
    coupling_l2: float,
    field_l2: float,
    weight_decay: float = 0.0,
) -> tuple[float, float]:
    """The loop's objective (:class:`~attnpotts.inference.Objective`) for these coefficients and
    its gradient norm at the current parameters (one evaluation)."""
    from ..inference.objectives import Objective, Penalties

    penalties = Penalties(coupling_l2=coupling_l2, weight_decay=weight_decay, field_l2=field_l2)
    return Objective(model, penalties).value_and_gradient_norm(tokens, weights)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- estimators
class _BaseDCA:
    """Shared fitting machinery (see :class:`PlmDCA` and :class:`FactoredDCA`)."""

    model_name = "plm"

    def __init__(
        self,
        *,
        regularization: Regularization,  # each estimator passes its own default
        max_iter: int | None,
        lbfgs_history: int,
        identity_threshold: float = DEFAULT_IDENTITY,
        kernel: str = "auto",
        dtype: str = "float32",
        device: str = "cpu",
        memory_limit_gb: float = DEFAULT_MEMORY_LIMIT / 1024**3,
        chunk: int | None = None,
        score_gap: str = "exclude",
        tolerance: float | None = None,
        check_every: int = 10,
        collapse: str = "duplicates",
        seed: SeedLike = 0,
    ) -> None:
        self.regularization = regularization
        self.collapse = collapse
        self.tolerance = tolerance
        self.check_every = check_every
        self.score_gap = score_gap
        self.max_iter = max_iter
        self.lbfgs_history = lbfgs_history
        self.identity_threshold = identity_threshold
        self.kernel = kernel
        self.dtype = dtype
        self.device = device
        self.memory_limit_gb = memory_limit_gb
        self.chunk = chunk
        self.seed = seed

    def _validate(self) -> None:
        if not isinstance(self.regularization, Regularization):
            raise ValidationError(
                f"regularization must be a Regularization, got {type(self.regularization).__name__}"
            )
        if self.max_iter is not None and int(self.max_iter) < 1:
            raise ValidationError(f"max_iter must be >= 1, got {self.max_iter}")
        if int(self.lbfgs_history) < 1:
            raise ValidationError(f"lbfgs_history must be >= 1, got {self.lbfgs_history}")
        if self.kernel not in KERNEL_METHODS:
            raise ValidationError(f"kernel must be one of {KERNEL_METHODS}, got {self.kernel!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValidationError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not (self.memory_limit_gb > 0):
            raise ValidationError(f"memory_limit_gb must be > 0, got {self.memory_limit_gb}")
        if self.score_gap not in ("exclude", "include"):
            raise ValidationError(f"score_gap must be 'exclude' or 'include', got {self.score_gap!r}")
        if self.chunk is not None and int(self.chunk) < 1:
            raise ValidationError(f"chunk must be None or >= 1, got {self.chunk}")
        if self.tolerance is not None and not (
            isinstance(self.tolerance, int | float) and math.isfinite(self.tolerance) and self.tolerance > 0
        ):
            raise ValidationError(
                f"tolerance must be None (fixed iterations) or a number > 0, got {self.tolerance!r}"
            )
        if int(self.check_every) < 1:
            raise ValidationError(f"check_every must be >= 1, got {self.check_every}")
        if self.collapse not in COLLAPSE_MODES:
            raise ValidationError(f"collapse must be one of {COLLAPSE_MODES}, got {self.collapse!r}")

    def _estimate(self, data: PreparedData) -> MemoryEstimate:
        raise NotImplementedError

    def _max_iter(self, n_sites: int, n_states: int, n_eff: float, shrink: float = 1.0) -> int:
        """The iteration cap of a fit of this size (``max_iter``; see :class:`FactoredDCA`)."""
        if self.max_iter is None:
            raise ValidationError(f"{self.model_name}: max_iter must be an integer >= 1, got None")
        return int(self.max_iter)

    def _weight_decay(self, n_sites: int) -> float:
        """The training loop's ``weight_decay`` on the model's factors (none for the full model)."""
        return 0.0

    def _describe_regularization(self, n_sites: int, n_states: int, n_eff: float) -> dict[str, Any]:
        return self.regularization.describe(n_sites, n_states, n_eff)

    def _build(self, data: PreparedData, torch_dtype: torch.dtype) -> torch.nn.Module:
        raise NotImplementedError

    def fit(self, data: Any, weights: Any = None, *, callbacks: Sequence[Callback] = ()) -> Any:
        """Fit on an alignment (or states ``(N, L)``) with optional weights; returns ``self``.

        ``callbacks`` (e.g. :class:`~attnpotts.training.IterationProgress`) see every L-BFGS
        iteration.

        Sets ``couplings_ (L, L, q, q)`` (symmetric, as fitted), ``fields_ (L, q)``,
        ``scores_ (L, L)`` (Frobenius norm in the zero-sum gauge, then APC; the gap state kept with
        ``score_gap="include"``, plmc's score and the plm default, left out with ``"exclude"``,
        CCMpred's and the factored default; ``docs/dca.md``),
        ``frobenius_ (L, L)`` (before APC), ``n_sequences_``, ``n_unique_``, ``n_fitted_`` (the
        rows fitted: unique sequences, or groups of neighbours with ``collapse="neighbours"``),
        ``n_eff_``, ``convergence_`` (:class:`ConvergenceReport`), ``regularization_`` (the convention and its
        equivalents), ``memory_estimate_`` and ``model_`` (the fitted torch module).

        Raises:
            ValidationError: fewer than 3 columns (the scores' APC needs three).
            ResourceLimitError: the estimated memory exceeds ``memory_limit_gb``, or on a CUDA
                device its free memory (message names the options that fit).
        """
        from ..inference.objectives import Objective
        from ..training import TrainingConfig, objective_penalties, release_freed_memory, train

        self._validate()
        prepared = data if isinstance(data, PreparedData) else prepare_data(
            data, weights, identity_threshold=self.identity_threshold
        )
        if self.collapse == "neighbours" and prepared.merged_at is None:
            threshold = prepared.identity_threshold or self.identity_threshold
            prepared = merge_neighbours(prepared, float(threshold))
        L, q = prepared.states.shape[1], prepared.n_states
        if L < 3:  # the scores' average product correction needs three columns: said before the fit
            raise ValidationError(
                f"{L} column(s) left to fit; contact scores need at least 3 (check the alignment "
                "and its column filters: max_column_gap, focus)"
            )
        estimate = self._estimate(prepared)
        check_memory(estimate, int(self.memory_limit_gb * 1024**3), device=self.device)
        cl2, fl2 = self.regularization.per_token(L, q, prepared.n_eff)
        wd = self._weight_decay(L)
        torch_dtype = torch.float32 if self.dtype == "float32" else torch.float64
        model = self._build(prepared, torch_dtype)
        max_iter = self._max_iter(L, q, prepared.n_eff, _shrink(prepared))
        self.max_iter_ = max_iter
        rule: _ConvergenceRule | None = None
        if self.tolerance is None:  # fixed iterations: one call of L-BFGS
            window, epochs = max_iter, 1
        else:  # epochs of check_every iterations, the rule checked after each
            window = min(int(self.check_every), max_iter)
            epochs = math.ceil(max_iter / window)
            rule = _ConvergenceRule(float(self.tolerance))
            callbacks = [*callbacks, rule]
        config = TrainingConfig(
            optimizer="lbfgs",
            learning_rate=1.0,
            max_epochs=epochs,
            batch_size=None,
            masking="all",
            coupling_l2=cl2,
            field_l2=fl2,
            weight_decay=wd,
            lbfgs_max_iter=window,
            lbfgs_history=int(self.lbfgs_history),
            eval_batch_size=estimate.chunk,
            seed=0,
        )
        t0 = time.perf_counter()
        result = train(
            model,  # type: ignore[arg-type]
            prepared.states,
            config=config,
            weights=prepared.weights,
            callbacks=callbacks,
        )
        wall = time.perf_counter() - t0
        release_freed_memory()  # the scores allocate differently from the final loss (.allocator)
        last = result.history[-1] if result.history else {}
        iterations = int(last.get("steps", 0))
        if result.stop_reason != "diverged" and "gradient_norm" in last:
            # the L-BFGS step ended where it last evaluated objective and gradient: no extra pass
            objective, gnorm = float(last["objective"]), float(last["gradient_norm"])
            reason = "converged" if rule is not None and rule.fired else str(last["lbfgs_stop"])
            evaluations = sum(int(r.get("evaluations", 0)) for r in result.history)
            last_decrease = float(last.get("last_relative_decrease", math.nan))
        else:
            tokens = torch.as_tensor(prepared.states.astype(np.int64), device=self.device)
            wt = torch.as_tensor(prepared.weights, dtype=torch_dtype, device=self.device)
            objective, gnorm = Objective(model, objective_penalties(config)).value_and_gradient_norm(  # type: ignore[arg-type]
                tokens, wt, chunk=estimate.chunk
            )
            reason = "diverged"
            evaluations = sum(int(r.get("evaluations", 0)) for r in result.history)
            last_decrease = math.nan
        warning = _convergence_warning(reason, last_decrease, iterations)
        if warning:
            logger.warning("%s fit: %s", self.model_name, warning)
        self.convergence_ = ConvergenceReport(
            iterations=iterations,
            max_iterations=epochs * window,
            evaluations=evaluations,
            final_objective=objective,
            final_gradient_norm=gnorm,
            stop_reason=reason,
            wall_seconds=wall,
            message=result.message,
            last_relative_decrease=last_decrease,
            far_from_convergence=bool(warning),
            warning=warning,
            tolerance=None if rule is None else rule.tolerance,
            check_every=0 if rule is None else window,
            window_relative_decrease=math.nan if rule is None else rule.last_decrease,
        )
        with torch.no_grad():
            h = model.field_tensor().detach().to("cpu", torch.float64).numpy()  # type: ignore[operator]
        self.model_ = model
        self.training_ = result
        self.fields_ = h
        self.gap_index_ = prepared.gap_index
        exclude = prepared.gap_index if self.score_gap == "exclude" else None
        self._set_couplings(model, exclude)
        self.n_sequences_ = prepared.n_sequences
        self.n_fitted_ = int(prepared.states.shape[0])
        self.n_unique_ = self.n_fitted_ if prepared.n_unique is None else int(prepared.n_unique)
        self.n_eff_ = prepared.n_eff
        self.n_sites_ = L
        self.n_states_ = q
        self.memory_estimate_ = estimate
        self.weight_decay_ = wd
        self.regularization_ = self._describe_regularization(L, q, prepared.n_eff)
        logger.info(
            "%s fit: L=%d q=%d rows=%d N_eff=%.1f, %d iterations (%s), |g|=%.3g, %.2fs",
            self.model_name, L, q, self.n_fitted_, prepared.n_eff, iterations, reason, gnorm, wall,
        )
        return self

    def _set_couplings(self, model: torch.nn.Module, exclude: int | None) -> None:
        """Set ``couplings_ (L, L, q, q)``, ``frobenius_`` and ``scores_`` from the fitted model."""
        from ..evaluation import apc, frobenius_scores

        with torch.no_grad():
            J = model.coupling_tensor().detach().to("cpu", torch.float64).numpy()  # type: ignore[operator]
        self.couplings_ = J
        self.frobenius_ = frobenius_scores(J, exclude_state=exclude)
        # contact_scores(J, exclude) is exactly this; the Frobenius norms are computed once
        self.scores_ = apc(self.frobenius_)
        self._scores_exclude = exclude

    def scores_for(self, exclude_state: int | None) -> np.ndarray:
        """Contact scores ``(L, L)`` (Frobenius, zero-sum gauge, APC) with ``exclude_state`` left out."""
        from ..evaluation import contact_scores

        if exclude_state == getattr(self, "_scores_exclude", -1):
            return self.scores_.copy()  # the fit's own score (the same numbers)
        return contact_scores(self.couplings_, exclude_state=exclude_state)

    def convergence_dict(self) -> dict[str, Any]:
        """The convergence report as a dict (after :meth:`fit`)."""
        return asdict(self.convergence_)


class PlmDCA(_BaseDCA):
    """Full Potts model by symmetric pseudo-likelihood maximisation (plmc / CCMpred style).

    Why the defaults: chosen by leave-one-family-out over eight Pfam families (L = 53 to 202,
    N = 3,658 to 36,690) and six of them subsampled to 500-1,300 sequences, with the goal as the
    criterion (the best worst-case top-L precision against plmc, then the best mean, then the
    fewest iterations; ``benchmarks/select_dca_defaults.py``,
    ``benchmarks/results/dca_defaults_selection_lambdas.json``): ``lambda_J = 0.02``,
    ``lambda_h = 0.01``, until the objective falls by less than 0.2 % over 5 iterations, gap
    state kept in the score, APC. Held out: mean 0.839, worst 0.025 below plmc (PF00072, 3 of
    119 pairs); on the eight families 0.930 against plmc's 0.928. The candidates and every fold are
    in ``docs/dca-measurements.md``.

    Args:
        regularization: L2 convention and coefficients (default :data:`PLM_REGULARIZATION`,
            EVcouplings/GREMLIN ``lambda_J = 0.02 (L-1)(q-1)``, ``lambda_h = 0.01``).
        max_iter: cap on the L-BFGS iterations (each one or more objective-and-gradient
            evaluations), default :data:`PLM_MAX_ITER` = 100; with the rule on, rounded up to a
            multiple of ``check_every``.
        tolerance: the convergence rule's relative tolerance (default :data:`PLM_TOLERANCE`);
            ``None``: run exactly ``max_iter`` iterations.
        check_every: the rule's window in iterations (default :data:`PLM_CHECK_EVERY`). A
            window starts from the objective and gradient where the previous one ended (no
            extra evaluation; the iterates are those of one uninterrupted L-BFGS run).
        lbfgs_history: L-BFGS memory (default :data:`PLM_LBFGS_HISTORY` = 5).
        identity_threshold: sequence-weight identity threshold when weights are computed.
        kernel: coupling contraction method (:data:`attnpotts.models.kernels.KERNEL_METHODS`).
        dtype: ``"float32"`` (default) or ``"float64"``.
        device: torch device (``"cpu"``; ``"cuda"`` uses the dense kernel).
        memory_limit_gb: refuse fits whose estimated memory is above this.
        chunk: sequences per forward pass (``None``: all when they fit the memory limit).
        score_gap: ``"include"`` the gap state in the Frobenius norm (plmc's score) or
            ``"exclude"`` it (CCMpred's); default :data:`PLM_SCORE_GAP` (above; ``docs/dca.md``).
        collapse: ``"duplicates"`` (default :data:`PLM_COLLAPSE`: copies merged into weights,
            plmc's objective exactly) or ``"neighbours"`` (:func:`merge_neighbours`: one
            weighted sequence per group of near neighbours; cheaper, approximate).
        seed: recorded for reproducibility (the fit itself is deterministic: zero start).
    """

    model_name = "plm"

    def __init__(
        self,
        *,
        regularization: Regularization = PLM_REGULARIZATION,
        max_iter: int = PLM_MAX_ITER,
        tolerance: float | None = PLM_TOLERANCE,
        check_every: int = PLM_CHECK_EVERY,
        score_gap: str = PLM_SCORE_GAP,
        lbfgs_history: int = PLM_LBFGS_HISTORY,
        collapse: str = PLM_COLLAPSE,
        **kwargs: Any,
    ) -> None:
        super().__init__(regularization=regularization, max_iter=max_iter, tolerance=tolerance,
                         check_every=check_every, score_gap=score_gap, lbfgs_history=lbfgs_history,
                         collapse=collapse, **kwargs)

    def _estimate(self, data: PreparedData) -> MemoryEstimate:
        U, L = data.states.shape
        max_iter = self._max_iter(L, data.n_states, data.n_eff)
        est = estimate_memory(U, L, data.n_states, model="plm", dtype=self.dtype,
                              lbfgs_history=int(self.lbfgs_history), max_iter=max_iter, chunk=self.chunk)
        return _fit_chunk(est, U, L, data.n_states, self, "plm", max_iter)

    def _build(self, data: PreparedData, torch_dtype: torch.dtype) -> torch.nn.Module:
        L, q = data.states.shape[1], data.n_states
        model = FullPotts(L, q, symmetric=True, fields=True, init_std=0.0, seed=0,
                          dtype=torch_dtype, device=self.device, kernel=self.kernel)
        assert model.fields is not None
        with torch.no_grad():
            model.fields.copy_(torch.as_tensor(_initial_fields(data), dtype=torch_dtype))
        return model


class FactoredDCA(_BaseDCA):
    """Factored attention (``"softmax"`` variant, ``H`` heads) trained by MLM = pseudo-likelihood.

    The L2 convention applies to the coupling *product* ``J = sum_h A_h (x) V_h`` (so the same
    ``lambda`` means the same penalty as for :class:`PlmDCA`) and to the fields; ``factor_l2``
    optionally adds an L2 on the factors themselves (off by default, see below).

    Fit path and memory: the pseudo-likelihood and its gradient are computed one block of
    sites of ``J`` at a time (:func:`attnpotts.models.factored_kernels.factored_pseudo_likelihood`),
    ``||J||^2`` and the scores from the factors (:meth:`FactoredAttention.frobenius_scores`);
    ``couplings_`` is formed only when read. Memory grows with ``H L^2`` (the attention matrices)
    and ``N L``, not ``L^2 q^2``: ``benchmarks/bench_factored_memory.py`` measures the peak
    against :func:`attnpotts.dca.estimate_memory`. Time per evaluation is about the full
    model's (``benchmarks/bench_factored_memory.py``: 0.65-0.9x at ``L`` = 100-200); the fit
    needs more iterations (non-convex), see below.

    Defaults (each chosen by leave-one-family-out, the precision traced along the fits;
    ``docs/dca-measurements.md``, factored attention, has the selections and what else was tried):

    * the mean-field start (:mod:`attnpotts.dca.factored_start`: attention logits at
      ``start_sharpness = 1`` times the rank-``d`` approximation of the standardised mean-field
      contact map, plus per-head noise ``start_noise``) with ``position_scale = 3``
      (:class:`FactoredAttention`: L-BFGS steps on the queries and keys 9 times larger relative
      to the values and fields); ``lambda_J = 0.003`` (:data:`FACTORED_REGULARIZATION`);
      :func:`factored_iterations` of ``N_eff`` (``36 + 10 log2(N_eff / 1000)``, 26 to 146),
      the budget that keeps the fit within twice plm's fit time; an L-BFGS memory of
      :data:`FACTORED_LBFGS_HISTORY` = 60 pairs; the paper's couplings (symmetric ones gain on
      large alignments and lose on small ones).
    * From random factors (``start="random"``, or above ``L (q-1)`` =
      :data:`~attnpotts.dca.factored_start.MEAN_FIELD_MAX_DIM`, where the mean-field start
      does not apply): :data:`FACTORED_MAX_ITER_RANDOM` = 300 iterations.
    * ``init_std = 1`` (at 0.1 every attention row starts uniform, a saddle where the precision
      stays at the no-information level for a third to a half of the run) and ``factor_l2 = 0``
      (1e-3 on ``Q, K, V`` collapses the attention toward uniform rows, the minimum-norm way to
      carry couplings).

    On the eight benchmark families the default reaches a mean top-L precision of 0.873 against
    plm's 0.930, at 1.2-1.6x plm's fit time (``docs/dca.md``, "Factored attention").

    Args:
        n_heads: ``H`` (AttentionDCA uses 32).
        key_dim: width ``d`` of the positional queries and keys.
        variant: ``"softmax"`` (default) or ``"free"``.
        init_std: standard deviation of the Gaussian start of the factors (default 1, see above).
        value_init_std: that of the values alone (``None``: ``init_std``; ``0``: zero couplings
            at the start, like the full model, with non-uniform attention).
        factor_l2: L2 on the factors (queries, keys, values) in AttentionDCA's mean form,
            ``sum_i [-(1/N_eff) sum_n w_n log P(s_i^n | rest)] + factor_l2 ||theta||^2`` (the
            training loop's ``weight_decay = 2 factor_l2 / L``); default 0 (see above).
        start: ``"mean-field"`` (default) or ``"random"`` (:data:`FACTORED_STARTS`).
        start_sharpness: scale of the started attention logits (default 1).
        start_noise: standard deviation of the per-head noise on the started queries and keys
            (default 0.5).
        position_scale: ``c`` of :class:`FactoredAttention`; ``None`` (default):
            :data:`FACTORED_POSITION_SCALE` = 3 for the softmax variant, 1 (no preconditioning,
            the only value it takes) for the free one.
        symmetric: symmetric couplings ``J[i, j] = sum_h (A_h[i, j] V_h + A_h[j, i] V_h^T) / 2``
            (a Potts model, like plm's; default :data:`FACTORED_SYMMETRIC` = ``False``, the
            paper's ``sum_h A_h[i, j] V_h``). Twice the ``H L^2 q^2`` work per evaluation; see
            ``docs/dca-measurements.md`` for where it gains.
        max_iter: L-BFGS iterations; ``None`` (default): :func:`factored_iterations` of the
            alignment's ``N_eff`` from the mean-field start, :data:`FACTORED_MAX_ITER_RANDOM` =
            300 from random factors.
        lbfgs_history: L-BFGS memory (default :data:`FACTORED_LBFGS_HISTORY` = 60).
        regularization: L2 convention and coefficients (default :data:`FACTORED_REGULARIZATION`,
            ``lambda_J = 0.003 (L-1)(q-1)``, ``lambda_h = 0.01``).
        collapse: ``"duplicates"`` (default :data:`FACTORED_COLLAPSE`: every distinct sequence)
            or ``"neighbours"`` (:func:`merge_neighbours`; with ``max_iter=None`` the iterations
            grow by the shrink factor, :func:`factored_iterations`): on deep, redundant
            alignments more precision in the same time, on small ones less (``docs/dca-measurements.md``).
        score_gap: as for :class:`PlmDCA`; default :data:`FACTORED_SCORE_GAP`, the gap state
            left out.
        other arguments: as for :class:`PlmDCA`; ``seed`` draws the initial factors and the
            start's noise.

    After :meth:`fit`, ``weight_decay_`` is the factor penalty's per-token coefficient and
    ``regularization_["factor_l2"]`` records it; ``start_`` is the start the fit got
    (``"mean-field"`` or ``"random"``) and ``start_seconds_`` its time.
    """

    model_name = "factored"

    def __init__(
        self,
        *,
        n_heads: int = 32,
        key_dim: int = 16,
        variant: str = "softmax",
        init_std: float = 1.0,
        value_init_std: float | None = None,
        factor_l2: float = 0.0,
        start: str = FACTORED_START,
        start_sharpness: float = FACTORED_START_SHARPNESS,
        start_noise: float = FACTORED_START_NOISE,
        position_scale: float | None = None,
        symmetric: bool = FACTORED_SYMMETRIC,
        max_iter: int | None = None,
        lbfgs_history: int = FACTORED_LBFGS_HISTORY,
        regularization: Regularization = FACTORED_REGULARIZATION,
        collapse: str = FACTORED_COLLAPSE,
        score_gap: str = FACTORED_SCORE_GAP,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_iter=max_iter, lbfgs_history=lbfgs_history, regularization=regularization,
                         collapse=collapse, score_gap=score_gap, **kwargs)
        self.n_heads = n_heads
        self.key_dim = key_dim
        self.variant = variant
        self.init_std = init_std
        self.value_init_std = value_init_std
        self.factor_l2 = factor_l2
        self.start = start
        self.start_sharpness = start_sharpness
        self.start_noise = start_noise
        self.position_scale = position_scale
        self.symmetric = symmetric

    def _validate(self) -> None:
        super()._validate()
        if not (isinstance(self.factor_l2, int | float) and math.isfinite(self.factor_l2)
                and self.factor_l2 >= 0):
            raise ValidationError(
                f"factor_l2 must be a finite number >= 0 (AttentionDCA uses 1e-3), got {self.factor_l2!r}"
            )
        if self.start not in FACTORED_STARTS:
            raise ValidationError(f"start must be one of {FACTORED_STARTS}, got {self.start!r}")
        if not (isinstance(self.start_sharpness, int | float) and math.isfinite(self.start_sharpness)
                and self.start_sharpness > 0):
            raise ValidationError(f"start_sharpness must be a finite number > 0, got {self.start_sharpness!r}")
        if not (isinstance(self.start_noise, int | float) and math.isfinite(self.start_noise)
                and self.start_noise >= 0):
            raise ValidationError(f"start_noise must be a finite number >= 0, got {self.start_noise!r}")
        # n_heads, key_dim, variant, init_std and position_scale are checked by FactoredAttention

    def _weight_decay(self, n_sites: int) -> float:
        """``factor_l2`` (mean-form, summed over sites) as the loop's per-token ``weight_decay``.

        Mean form: ``sum_i [-(1/W) sum_n w_n log P(s_i^n | rest)] + factor_l2 ||theta||^2`` =
        ``L * (per-token objective)``, so ``weight_decay / 2 = factor_l2 / L``.
        """
        return 2.0 * float(self.factor_l2) / int(n_sites)

    def _describe_regularization(self, n_sites: int, n_states: int, n_eff: float) -> dict[str, Any]:
        d = self.regularization.describe(n_sites, n_states, n_eff)
        d["factor_l2"] = {
            "given": float(self.factor_l2),
            "training_loop_weight_decay": self._weight_decay(n_sites),
            "objective": "sum_i [-(1/N_eff) sum_n w_n log P(s_i|rest)] + factor_l2 * "
            "sum of squares of the factors (queries, keys, values; AttentionDCA's mean form)",
        }
        return d

    def _estimate(self, data: PreparedData) -> MemoryEstimate:
        U, L = data.states.shape
        max_iter = self._max_iter(L, data.n_states, data.n_eff, _shrink(data))
        est = estimate_memory(U, L, data.n_states, model="factored", dtype=self.dtype,
                              lbfgs_history=int(self.lbfgs_history), max_iter=max_iter,
                              chunk=self.chunk, n_heads=int(self.n_heads), key_dim=int(self.key_dim),
                              start=self._start_used(L, data.n_states), device=self.device)
        return _fit_chunk(est, U, L, data.n_states, self, "factored", max_iter)

    def _set_couplings(self, model: torch.nn.Module, exclude: int | None) -> None:
        """Scores from the factors (:meth:`FactoredAttention.frobenius_scores`); ``J`` is not formed."""
        from ..evaluation import apc

        assert isinstance(model, FactoredAttention)
        self.frobenius_ = model.frobenius_scores(exclude)
        self.scores_ = apc(self.frobenius_)

    @property
    def couplings_(self) -> np.ndarray:
        """``J: (L, L, q, q)`` float64, formed from the factors on each access (``8 L^2 q^2`` bytes)."""
        model = self.__dict__.get("model_")
        if model is None:
            raise AttributeError("couplings_ is set by fit(); call fit first")
        with torch.no_grad():
            return model.coupling_tensor().detach().to("cpu", torch.float64).numpy()

    def scores_for(self, exclude_state: int | None) -> np.ndarray:
        """Contact scores ``(L, L)`` from the factors, ``exclude_state`` left out (``J`` not formed)."""
        from ..evaluation import apc

        model = self.model_
        assert isinstance(model, FactoredAttention)
        return apc(model.frobenius_scores(exclude_state))

    def _build(self, data: PreparedData, torch_dtype: torch.dtype) -> torch.nn.Module:
        L, q = data.states.shape[1], data.n_states
        model = FactoredAttention(
            L, q, int(self.n_heads), variant=self.variant, key_dim=int(self.key_dim),  # type: ignore[arg-type]
            fields=True, init_std=float(self.init_std), value_init_std=self.value_init_std,
            position_scale=self._position_scale(), symmetric=self.symmetric, seed=self.seed, dtype=torch_dtype,
            device=self.device, kernel=self.kernel,
        )
        assert model.fields is not None
        with torch.no_grad():
            model.fields.copy_(torch.as_tensor(_initial_fields(data), dtype=torch_dtype))
        self.start_ = self._start_used(L, q)
        if self.start == "mean-field" and self.start_ == "random":  # the documented fallback
            logger.info(
                "factored fit: no mean-field start (variant %r, L (q-1) = %d; the start needs the "
                "softmax variant and L (q-1) <= %d): random factors, %d iterations (--max-iter)",
                self.variant, L * (q - 1), _mean_field_max_dim(), self._max_iter(L, q, data.n_eff, _shrink(data)))
        t0 = time.perf_counter()
        if self.start_ == "mean-field":
            from ..random import spawn_seeds, torch_generator
            from .factored_start import mean_field_scores, spectral_query_key

            scores = mean_field_scores(data.states, data.weights, q)
            gen = torch_generator(spawn_seeds(self.seed, 1)[0])
            Q, K = spectral_query_key(scores, model.n_heads, model.key_dim,
                                      sharpness=float(self.start_sharpness),
                                      noise=float(self.start_noise), generator=gen)
            model.set_positions(Q, K)
        self.start_seconds_ = time.perf_counter() - t0
        return model

    def _position_scale(self) -> float:
        """``position_scale``, or by default 3 for the softmax variant and 1 for the free one."""
        if self.position_scale is not None:
            return float(self.position_scale)
        return FACTORED_POSITION_SCALE if self.variant == "softmax" else 1.0

    def _max_iter(self, n_sites: int, n_states: int, n_eff: float, shrink: float = 1.0) -> int:
        """``max_iter``, or by default :func:`factored_iterations` of ``n_eff`` and the data's
        ``shrink`` (distinct sequences per fitted row) from the mean-field start, and
        :data:`FACTORED_MAX_ITER_RANDOM` from random factors."""
        if self.max_iter is not None:
            return int(self.max_iter)
        if self._start_used(n_sites, n_states) == "mean-field":
            return factored_iterations(n_eff, shrink)
        return FACTORED_MAX_ITER_RANDOM

    def _start_used(self, n_sites: int, n_states: int) -> str:
        """The start a fit of this size gets: ``"mean-field"`` needs the softmax variant and
        ``L (q - 1) <=`` :data:`~attnpotts.dca.factored_start.MEAN_FIELD_MAX_DIM`."""
        from .factored_start import MEAN_FIELD_MAX_DIM

        if (self.start == "mean-field" and self.variant == "softmax"
                and int(n_sites) * (int(n_states) - 1) <= MEAN_FIELD_MAX_DIM):
            return "mean-field"
        return "random"


def _mean_field_max_dim() -> int:
    from .factored_start import MEAN_FIELD_MAX_DIM

    return MEAN_FIELD_MAX_DIM


def _fit_chunk(est: MemoryEstimate, U: int, L: int, q: int, owner: _BaseDCA, model: str,
               max_iter: int) -> MemoryEstimate:
    """With ``chunk=None``, halve the chunk until the activations fit the limit (>= 256 rows)."""
    if owner.chunk is not None:
        return est
    limit = int(owner.memory_limit_gb * 1024**3)
    chunk = U
    while est.total_bytes > limit and chunk > 256:
        chunk = max(256, chunk // 2)
        fixed = est.total_bytes - est.parts["activations"]
        new = estimate_memory(U, L, q, model=model, dtype=owner.dtype,
                              lbfgs_history=int(owner.lbfgs_history), max_iter=max_iter,
                              chunk=chunk)
        parts = dict(est.parts, activations=new.parts["activations"])
        est = MemoryEstimate(fixed + new.parts["activations"], parts, est.model, est.dtype, chunk)
    return est


def fit_plm(data: Any, weights: Any = None, **options: Any) -> PlmDCA:
    """``PlmDCA(**options).fit(data, weights)``."""
    return PlmDCA(**options).fit(data, weights)


def fit_factored(data: Any, weights: Any = None, **options: Any) -> FactoredDCA:
    """``FactoredDCA(**options).fit(data, weights)``."""
    return FactoredDCA(**options).fit(data, weights)
