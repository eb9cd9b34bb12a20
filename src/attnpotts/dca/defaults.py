"""Default settings of the DCA estimators, and the iteration rule of the factored fit.

Why a module of their own: the command line shows these numbers in ``attnpotts contacts --help``
and :class:`~attnpotts.dca.config.ContactsConfig` declares its options with them, neither of
which should import torch. :class:`~attnpotts.dca.PlmDCA` and :class:`~attnpotts.dca.FactoredDCA`
take their defaults from here; ``docs/dca.md`` lists them and ``docs/dca-measurements.md`` says how each was chosen.
"""

from __future__ import annotations

import math

from ..errors import ValidationError
from .regularization import Regularization

__all__ = [
    "COLLAPSE_MODES",
    "FACTORED_COLLAPSE",
    "FACTORED_ITER_AT_1000",
    "FACTORED_ITER_PER_DOUBLING",
    "FACTORED_ITER_SHRINK_POWER",
    "FACTORED_LBFGS_HISTORY",
    "FACTORED_MAX_ITER",
    "FACTORED_MAX_ITER_RANDOM",
    "FACTORED_MIN_ITER",
    "FACTORED_POSITION_SCALE",
    "FACTORED_REGULARIZATION",
    "FACTORED_SCORE_GAP",
    "FACTORED_START",
    "FACTORED_STARTS",
    "FACTORED_START_NOISE",
    "FACTORED_START_SHARPNESS",
    "FACTORED_SYMMETRIC",
    "PLM_CHECK_EVERY",
    "PLM_COLLAPSE",
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
#: about 4 objective evaluations more than iterations: 40 + 10 log2(N_eff / 1000) evaluations,
#: 30 to 150). Chosen by leave-one-family-out over fourteen alignments within twice plm's time,
#: see FactoredDCA.
FACTORED_ITER_AT_1000 = 36
FACTORED_ITER_PER_DOUBLING = 10
FACTORED_MIN_ITER = 26
FACTORED_MAX_ITER = 146
#: Exponent of the shrink factor in :func:`factored_iterations`: a fit on merged neighbours
#: (``collapse="neighbours"``) gets ``shrink`` times the iterations, about the time of the fit on
#: every distinct sequence (chosen over 0 and 0.5, ``docs/dca-measurements.md``; without merging shrink is 1).
FACTORED_ITER_SHRINK_POWER = 1.0
#: Default L-BFGS memory of :class:`FactoredDCA` (curvature pairs): the non-convex fit gains from a
#: longer record than plm's; chosen by leave-one-family-out against 20 and 120, see FactoredDCA.
FACTORED_LBFGS_HISTORY = 60
#: Default coupling L2 of :class:`FactoredDCA`: ``lambda_J = 0.003 (L-1)(q-1)`` (EVcouplings
#: convention), a third of plm's: the factored form already restrains the couplings.
FACTORED_REGULARIZATION = Regularization("evcouplings", 0.003, 0.01)
#: Default contact score of :class:`FactoredDCA`: the gap state left out of the Frobenius norm.
FACTORED_SCORE_GAP = "exclude"
#: Default L-BFGS iterations of :class:`FactoredDCA` from random factors (the fallback above
#: ``L (q-1)`` = :data:`~attnpotts.dca.factored_start.MEAN_FIELD_MAX_DIM`).
FACTORED_MAX_ITER_RANDOM = 300


def factored_iterations(n_eff: float, shrink: float = 1.0) -> int:
    """Default L-BFGS iterations of a factored fit from the mean-field start on ``n_eff`` weighted
    sequences: more data, more iterations (the precision keeps rising with them on deep
    alignments and not on shallow ones, where plm's convergence rule also stops sooner); times
    ``shrink ** FACTORED_ITER_SHRINK_POWER``, ``shrink`` the distinct sequences per fitted row
    (``collapse="neighbours"``): a fit on fewer rows spends what it saves on iterations."""
    if not (math.isfinite(n_eff) and n_eff > 0):
        raise ValidationError(f"n_eff must be a finite number > 0, got {n_eff!r}")
    if not (math.isfinite(shrink) and shrink >= 1):
        raise ValidationError(f"shrink must be a finite number >= 1, got {shrink!r}")
    it = FACTORED_ITER_AT_1000 + FACTORED_ITER_PER_DOUBLING * math.log2(n_eff / 1000.0)
    it *= shrink**FACTORED_ITER_SHRINK_POWER
    return int(min(FACTORED_MAX_ITER, max(FACTORED_MIN_ITER, round(it))))


#: What an estimator fits of the weighted alignment: its distinct sequences (``"duplicates"``:
#: copies merged, the exact objective) or one weighted sequence per group of near neighbours
#: (``"neighbours"``: :func:`attnpotts.dca.merge_neighbours` at the weights' identity threshold,
#: ``N_eff`` unchanged, cheaper evaluations on redundant alignments).
COLLAPSE_MODES: tuple[str, ...] = ("duplicates", "neighbours")
#: Default of :class:`PlmDCA`: the exact objective (plmc's).
PLM_COLLAPSE = "duplicates"
#: Default of :class:`FactoredDCA`: every distinct sequence. Merged neighbours gain on the deep
#: families and lose on the small alignments; leave-one-family-out keeps this (``docs/dca-measurements.md``).
FACTORED_COLLAPSE = "duplicates"

#: Default iteration cap of :class:`PlmDCA` (the convergence rule usually stops it earlier).
PLM_MAX_ITER = 100
#: Default convergence rule of :class:`PlmDCA`: stop when the objective fell by less than this
#: (relative) over the last :data:`PLM_CHECK_EVERY` iterations.
PLM_TOLERANCE = 2e-3
#: Window of the convergence rule, in L-BFGS iterations.
PLM_CHECK_EVERY = 5
#: Default L-BFGS memory of :class:`PlmDCA` (curvature pairs): each costs two copies of the
#: ``L^2 q^2`` couplings, so the full model keeps few.
PLM_LBFGS_HISTORY = 5
#: Default contact score of :class:`PlmDCA`: the gap state kept in the Frobenius norm.
PLM_SCORE_GAP = "include"
#: Default coupling L2 of :class:`PlmDCA`: EVcouplings/GREMLIN convention,
#: ``lambda_J = 0.02 (L-1)(q-1)``, ``lambda_h = 0.01`` (twice plmc's coupling penalty: chosen with
#: the stopping rule by leave-one-family-out, ``docs/dca-measurements.md``).
PLM_REGULARIZATION = Regularization("evcouplings", 0.02, 0.01)
