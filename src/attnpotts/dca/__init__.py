"""Direct coupling analysis of protein alignments: contacts from pseudo-likelihood and factored attention.

Estimators :class:`PlmDCA` (full Potts model, symmetric pseudo-likelihood) and
:class:`FactoredDCA` (factored attention trained by masked language modelling), both fitted by
the one training loop of :mod:`attnpotts.training`; regularisation conventions of the peer tools
(:class:`Regularization`); a memory estimate checked before fitting (:func:`estimate_memory`);
and the pipeline alignment -> weights -> fit -> scores -> outputs (:func:`run_contacts`).
"""

from .fit import (
    FACTORED_ITER_AT_1000,
    FACTORED_ITER_PER_DOUBLING,
    FACTORED_LBFGS_HISTORY,
    FACTORED_MAX_ITER,
    FACTORED_MAX_ITER_RANDOM,
    FACTORED_MIN_ITER,
    FACTORED_REGULARIZATION,
    FACTORED_START,
    FACTORED_SYMMETRIC,
    FAR_FROM_CONVERGENCE,
    PLM_CHECK_EVERY,
    PLM_LBFGS_HISTORY,
    PLM_MAX_ITER,
    PLM_REGULARIZATION,
    PLM_SCORE_GAP,
    PLM_TOLERANCE,
    ConvergenceReport,
    FactoredDCA,
    PlmDCA,
    PreparedData,
    factored_iterations,
    fit_factored,
    fit_plm,
    prepare_data,
)
from .memory import DEFAULT_MEMORY_LIMIT, MemoryEstimate, check_memory, estimate_memory
from .regularization import CONVENTIONS, DEFAULT_REGULARIZATION, Regularization

__all__ = [
    "CONVENTIONS",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_REGULARIZATION",
    "FACTORED_ITER_AT_1000",
    "FACTORED_ITER_PER_DOUBLING",
    "FACTORED_LBFGS_HISTORY",
    "FACTORED_MAX_ITER",
    "FACTORED_MAX_ITER_RANDOM",
    "FACTORED_MIN_ITER",
    "FACTORED_REGULARIZATION",
    "FACTORED_START",
    "FACTORED_SYMMETRIC",
    "FAR_FROM_CONVERGENCE",
    "PLM_CHECK_EVERY",
    "PLM_LBFGS_HISTORY",
    "PLM_MAX_ITER",
    "PLM_REGULARIZATION",
    "PLM_SCORE_GAP",
    "PLM_TOLERANCE",
    "ConvergenceReport",
    "FactoredDCA",
    "MemoryEstimate",
    "PlmDCA",
    "PreparedData",
    "Regularization",
    "check_memory",
    "estimate_memory",
    "factored_iterations",
    "fit_factored",
    "fit_plm",
    "prepare_data",
]
