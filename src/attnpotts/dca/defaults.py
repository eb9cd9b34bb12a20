"""Default settings of the DCA estimators, and the iteration rule of the factored fit.

Why a module of their own: the command line shows these numbers in ``attnpotts contacts --help``
and :class:`~attnpotts.dca.config.ContactsConfig` declares its options with them, neither of
which should import torch. :class:`~attnpotts.dca.PlmDCA` and :class:`~attnpotts.dca.FactoredDCA`
take their defaults from here; ``docs/dca.md`` says how each was chosen.
"""

from __future__ import annotations

import math

from ..errors import ValidationError
from .regularization import Regularization

__all__ = [
    "FACTORED_ITER_AT_1000",
    "FACTORED_ITER_PER_DOUBLING",
    "FACTORED_LBFGS_HISTORY",
    "FACTORED_MAX_ITER",
    "FACTORED_MAX_ITER_RANDOM",
    "FACTORED_MIN_ITER",
    "FACTORED_POSITION_SCALE",
    "FACTORED_REGULARIZATION",
    "FACTORED_START",
    "FACTORED_STARTS",
    "FACTORED_START_NOISE",
    "FACTORED_START_SHARPNESS",
    "FACTORED_SYMMETRIC",
    "PLM_CHECK_EVERY",
    "PLM_LBFGS_HISTORY",
    "PLM_MAX_ITER",
    "PLM_REGULARIZATION",
    "PLM_SCORE_GAP",
    "PLM_TOLERANCE",
    "factored_iterations",
]


#: Starts of :class:`FactoredDCA`: ``"mean-field"`` (queries and keys from the mean-field contact
#: map, :mod:`attnpotts.dca.factored_start`) or ``"random"`` (Gaussian factors).
FACTORED_STARTS: tuple[str, ...] = ("mean-field", "random")
#: Default start of :class:`FactoredDCA`: the mean-field contact map (random factors where it
#: does not apply: the free variant, or ``L (q-1)`` above
#: :data:`~attnpotts.dca.factored_start.MEAN_FIELD_MAX_DIM`).
FACTORED_START = "mean-field"
#: Scale ``beta`` of the started attention logits (standardised mean-field map).
FACTORED_START_SHARPNESS = 1.0
#: Standard deviation of the per-head noise on the started queries and keys.
FACTORED_START_NOISE = 0.5
#: Default ``position_scale`` of :class:`FactoredDCA` (see
#: :class:`~attnpotts.models.FactoredAttention`): L-BFGS steps on the queries and keys 9 times
#: larger relative to the values and fields.
FACTORED_POSITION_SCALE = 3.0
#: Default couplings of :class:`FactoredDCA`: the paper's ``J[i, j] = sum_h A_h[i, j] V_h``, not
#: the symmetric ``sum_h (A_h[i, j] V_h + A_h[j, i] V_h^T) / 2`` (better on the eight whole
#: families, worse on the six small alignments: chosen over all fourteen, see FactoredDCA).
FACTORED_SYMMETRIC = False

#: Default L-BFGS iterations of :class:`FactoredDCA` from the mean-field start grow with the data
#: (:func:`factored_iterations`): ``FACTORED_ITER_AT_1000 + FACTORED_ITER_PER_DOUBLING *
#: log2(N_eff / 1000)``, rounded, within ``FACTORED_MIN_ITER .. FACTORED_MAX_ITER`` (a fit takes
#: about 4 objective evaluations more than iterations: 55 + 15 log2(N_eff / 1000) evaluations,
#: 30 to 150). Chosen by leave-one-family-out over fourteen alignments within twice plm's time,
#: see FactoredDCA.
FACTORED_ITER_AT_1000 = 51
FACTORED_ITER_PER_DOUBLING = 15
FACTORED_MIN_ITER = 26
FACTORED_MAX_ITER = 146
#: Default L-BFGS memory of :class:`FactoredDCA` (curvature pairs): the non-convex fit gains from a
#: longer record than plm's; chosen by leave-one-family-out against 20 and 120, see FactoredDCA.
FACTORED_LBFGS_HISTORY = 60
#: Default coupling L2 of :class:`FactoredDCA`: ``lambda_J = 0.003 (L-1)(q-1)`` (EVcouplings
#: convention), a third of plm's: the factored form already restrains the couplings.
FACTORED_REGULARIZATION = Regularization("evcouplings", 0.003, 0.01)
#: Default L-BFGS iterations of :class:`FactoredDCA` from random factors (the fallback above
#: ``L (q-1)`` = :data:`~attnpotts.dca.factored_start.MEAN_FIELD_MAX_DIM`).
FACTORED_MAX_ITER_RANDOM = 300


def factored_iterations(n_eff: float) -> int:
    """Default L-BFGS iterations of a factored fit from the mean-field start on ``n_eff`` weighted
    sequences: more data, more iterations (the precision keeps rising with them on deep
    alignments and not on shallow ones, where plm's convergence rule also stops sooner)."""
    if not (math.isfinite(n_eff) and n_eff > 0):
        raise ValidationError(f"n_eff must be a finite number > 0, got {n_eff!r}")
    it = FACTORED_ITER_AT_1000 + FACTORED_ITER_PER_DOUBLING * math.log2(n_eff / 1000.0)
    return int(min(FACTORED_MAX_ITER, max(FACTORED_MIN_ITER, round(it))))


#: Default iteration cap of :class:`PlmDCA` (the convergence rule usually stops it earlier).
PLM_MAX_ITER = 100
#: Default convergence rule of :class:`PlmDCA`: stop when the objective fell by less than this
#: (relative) over the last :data:`PLM_CHECK_EVERY` iterations.
PLM_TOLERANCE = 5e-3
#: Window of the convergence rule, in L-BFGS iterations.
PLM_CHECK_EVERY = 10
#: Default L-BFGS memory of :class:`PlmDCA` (curvature pairs): each costs two copies of the
#: ``L^2 q^2`` couplings, so the full model keeps few.
PLM_LBFGS_HISTORY = 5
#: Default contact score of :class:`PlmDCA`: the gap state kept in the Frobenius norm.
PLM_SCORE_GAP = "include"
#: Default coupling L2 of :class:`PlmDCA`: EVcouplings/GREMLIN convention,
#: ``lambda_J = 0.01 (L-1)(q-1)``, ``lambda_h = 0.01`` (plmc's objective as EVcouplings runs it).
PLM_REGULARIZATION = Regularization("evcouplings", 0.01, 0.01)
