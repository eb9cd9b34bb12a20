"""Options of the contact pipeline (:class:`ContactsConfig`), importable without torch.

Why a module of their own: ``attnpotts contacts --help`` and every check of a bad option are
built from these fields, and should not wait for torch (1.5 s) to load. The estimators, which
need it, are imported when a configuration is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..options import boolean, choice, integer, memory_limit, number, text, validate
from .defaults import (
    COLLAPSE_MODES,
    FACTORED_COLLAPSE,
    FACTORED_ITER_AT_1000,
    FACTORED_ITER_PER_DOUBLING,
    FACTORED_ITER_SHRINK_POWER,
    FACTORED_LBFGS_HISTORY,
    FACTORED_MAX_ITER,
    FACTORED_MAX_ITER_RANDOM,
    FACTORED_MIN_ITER,
    FACTORED_REGULARIZATION,
    FACTORED_SCORE_GAP,
    FACTORED_SYMMETRIC,
    PLM_CHECK_EVERY,
    PLM_COLLAPSE,
    PLM_LBFGS_HISTORY,
    PLM_MAX_ITER,
    PLM_REGULARIZATION,
    PLM_SCORE_GAP,
    PLM_TOLERANCE,
)
from .regularization import CONVENTIONS, Regularization

if TYPE_CHECKING:
    from .fit import FactoredDCA, PlmDCA

__all__ = ["ContactsConfig"]

_FIT, _ALN = "model and fit", "alignment"


@dataclass(frozen=True)
class ContactsConfig:
    """Options of :func:`~attnpotts.dca.pipeline.run_contacts` (all JSON/TOML-serialisable); their fields are also the
    flags and TOML keys of ``attnpotts contacts`` (:mod:`attnpotts.options`).

    ``lambda_j``, ``max_iter``, ``lbfgs_history``, ``score_gap`` and ``collapse`` default to ``None``: the
    estimator's own default, which depends on ``model`` (:class:`PlmDCA`, :class:`FactoredDCA`),
    resolved on creation (from :mod:`attnpotts.dca.defaults`, without loading torch) and written
    into the config. ``lambda_j`` is the estimator's default when ``regularization`` is the
    estimator's convention (``gremlin`` is ``evcouplings``), else that convention's tool's own
    default (:meth:`Regularization.default`: CCMpred's 0.2, plmc's 100, PlmDCA.jl's 0.01); the
    ``attnpotts`` convention has none and needs ``lambda_j``.
    """

    model: Literal["plm", "factored"] = choice(
        "plm", ("plm", "factored"), group=_FIT,
        help="full Potts model (symmetric pseudo-likelihood) or factored attention",
    )
    regularization: str = choice("evcouplings", CONVENTIONS, group=_FIT, help="L2 convention")
    lambda_j: float | None = number(
        None, 0, none=True, group=_FIT,
        help=f"coupling L2 in that convention (default {PLM_REGULARIZATION.lambda_j} plm, "
        f"{FACTORED_REGULARIZATION.lambda_j} factored, in the evcouplings convention; with "
        "another --regularization, that tool's own default: "
        + ", ".join(f"{c} {Regularization.default(c).lambda_j:g}" for c in ("ccmpred", "plmc", "plmdca-jl"))
        + "; attnpotts has none)",
    )
    lambda_h: float = number(0.01, 0, group=_FIT, help="field L2 in that convention")
    max_iter: int | None = integer(
        None, 1, none=True, group=_FIT,
        help=f"cap on the L-BFGS iterations (default {PLM_MAX_ITER} plm, which stops sooner when "
        f"the objective falls by less than {PLM_TOLERANCE:g} over {PLM_CHECK_EVERY} iterations, "
        f"chosen by leave-one-family-out; factored: from its mean-field start "
        f"({FACTORED_ITER_AT_1000} + {FACTORED_ITER_PER_DOUBLING} log2(N_eff / 1000))"
        + (f" x (distinct sequences per fitted row)^{FACTORED_ITER_SHRINK_POWER:g}"
           if FACTORED_ITER_SHRINK_POWER else "")
        + f", between {FACTORED_MIN_ITER} and {FACTORED_MAX_ITER}; {FACTORED_MAX_ITER_RANDOM} "
        "from random factors)",
    )
    lbfgs_history: int | None = integer(
        None, 1, none=True, group=_FIT,
        help=f"L-BFGS memory (default {PLM_LBFGS_HISTORY} plm, {FACTORED_LBFGS_HISTORY} factored)",
    )
    n_heads: int = integer(32, 1, group=_FIT, help="factored attention heads")
    key_dim: int = integer(16, 1, group=_FIT, help="factored attention query/key width")
    symmetric: bool = boolean(
        FACTORED_SYMMETRIC, group=_FIT,
        help="factored attention: symmetric couplings J_ij(a, b) = J_ji(b, a), a Potts model like "
        "plm's, instead of the paper's J_ij = sum_h A_h[i, j] V_h (better on large alignments, "
        "worse on small ones: docs/dca-measurements.md)",
    )
    kernel: str = choice(
        "auto", ("auto", "sparse", "dense", "dense-bf16"), group=_FIT,
        help="coupling contraction (default auto: sparse on CPU, dense on CUDA)",
    )
    dtype: Literal["float32", "float64"] = choice(
        "float32", ("float32", "float64"), group=_FIT, help="precision of the fit"
    )
    score_gap: Literal["exclude", "include"] | None = choice(
        None, ("exclude", "include"), none=True, group=_FIT,
        help=f"keep the gap state in the Frobenius score (plmc) or leave it out (CCMpred); "
        f"default {PLM_SCORE_GAP} for plm, exclude for factored; summary.json reports the "
        "precision of both",
    )
    identity_threshold: float = number(
        0.8, 0, 1, low_open=True, group=_ALN, help="sequence weights identity threshold"
    )
    collapse: Literal["duplicates", "neighbours"] | None = choice(
        None, COLLAPSE_MODES, none=True, group=_ALN,
        help="fit every distinct sequence (duplicates merged into weights) or one weighted sequence "
        "per group of neighbours within the identity threshold (N_eff unchanged, fewer rows); "
        + (f"default {PLM_COLLAPSE} for both models" if PLM_COLLAPSE == FACTORED_COLLAPSE
           else f"default {PLM_COLLAPSE} for plm, {FACTORED_COLLAPSE} for factored")
        + "; with neighbours the factored fit spends the saving on iterations (docs/dca-measurements.md)",
    )
    focus: bool = boolean(
        False, group=_ALN, help="keep only the columns where the reference sequence has a residue"
    )
    reference: str | None = text(
        None, none=True, group=_ALN, help="reference sequence id (prefix); default the first"
    )
    max_column_gap: float | None = number(
        None, 0, 1, none=True, group=_ALN, help="drop columns with a larger gap fraction"
    )
    device: str = text("cpu", flag="", help="torch device: cpu, cuda, cuda:1, ...")
    seed: int = integer(0, 0, 2**63 - 1, flag="", help="seed of the factored model's initial factors")
    memory_limit_gb: float = memory_limit()

    def __post_init__(self) -> None:
        validate(self)  # a bad value is reported before torch loads
        plm = self.model == "plm"  # the estimators' defaults, from defaults.py (no torch needed)
        if self.lambda_j is None:  # written into the config
            own = PLM_REGULARIZATION if plm else FACTORED_REGULARIZATION
            aliases = {"gremlin": "evcouplings"}  # the same convention under two names
            if aliases.get(own.convention, own.convention) == aliases.get(
                    self.regularization, self.regularization):
                lambda_j = float(own.lambda_j)
            else:  # another tool's convention: that tool's own default (or an error naming the flag)
                lambda_j = float(Regularization.default(self.regularization).lambda_j)
            object.__setattr__(self, "lambda_j", lambda_j)
        resolved = {
            "score_gap": PLM_SCORE_GAP if plm else FACTORED_SCORE_GAP,
            "collapse": PLM_COLLAPSE if plm else FACTORED_COLLAPSE,
            "max_iter": PLM_MAX_ITER if plm else None,  # factored: per start and N_eff
            "lbfgs_history": PLM_LBFGS_HISTORY if plm else FACTORED_LBFGS_HISTORY,
        }
        for name, default in resolved.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)

    def estimator(self) -> PlmDCA | FactoredDCA:
        """The configured (unfitted) estimator."""
        from .fit import FactoredDCA, PlmDCA

        reg = Regularization(self.regularization, float(self.lambda_j or 0.0), float(self.lambda_h))  # type: ignore[arg-type]
        common: dict[str, Any] = {
            "regularization": reg,
            "max_iter": None if self.max_iter is None else int(self.max_iter),
            "lbfgs_history": int(self.lbfgs_history),  # type: ignore[arg-type]
            "identity_threshold": float(self.identity_threshold),
            "kernel": self.kernel,
            "dtype": self.dtype,
            "device": self.device,
            "memory_limit_gb": float(self.memory_limit_gb),
            "score_gap": self.score_gap,
            "collapse": self.collapse,
            "seed": int(self.seed),
        }
        if self.model == "plm":
            return PlmDCA(**common)
        return FactoredDCA(n_heads=int(self.n_heads), key_dim=int(self.key_dim),
                           symmetric=bool(self.symmetric), **common)
