"""Direct coupling analysis of protein alignments: contacts from pseudo-likelihood and factored attention.

Estimators :class:`PlmDCA` (full Potts model, symmetric pseudo-likelihood) and
:class:`FactoredDCA` (factored attention trained by masked language modelling), both fitted by
the one training loop of :mod:`attnpotts.training`; regularisation conventions of the peer tools
(:class:`Regularization`); a memory estimate checked before fitting (:func:`estimate_memory`);
and the pipeline alignment -> weights -> fit -> scores -> outputs (:func:`run_contacts`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
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
    FACTORED_START,
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
from .memory import (
    DEFAULT_MEMORY_LIMIT,
    MemoryEstimate,
    check_memory,
    device_free_bytes,
    estimate_memory,
)
from .regularization import CONVENTIONS, DEFAULT_REGULARIZATION, Regularization

if TYPE_CHECKING:
    from .fit import (
        FAR_FROM_CONVERGENCE,
        ConvergenceReport,
        FactoredDCA,
        PlmDCA,
        PreparedData,
        fit_factored,
        fit_plm,
        merge_neighbours,
        prepare_data,
    )

__all__ = [
    "COLLAPSE_MODES",
    "CONVENTIONS",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_REGULARIZATION",
    "FACTORED_COLLAPSE",
    "FACTORED_ITER_AT_1000",
    "FACTORED_ITER_PER_DOUBLING",
    "FACTORED_ITER_SHRINK_POWER",
    "FACTORED_LBFGS_HISTORY",
    "FACTORED_MAX_ITER",
    "FACTORED_MAX_ITER_RANDOM",
    "FACTORED_MIN_ITER",
    "FACTORED_REGULARIZATION",
    "FACTORED_SCORE_GAP",
    "FACTORED_START",
    "FACTORED_SYMMETRIC",
    "FAR_FROM_CONVERGENCE",
    "PLM_CHECK_EVERY",
    "PLM_COLLAPSE",
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
    "device_free_bytes",
    "estimate_memory",
    "factored_iterations",
    "fit_factored",
    "fit_plm",
    "merge_neighbours",
    "prepare_data",
]

#: Names that need torch load :mod:`attnpotts.dca.fit` on first use, so that the defaults, the
#: conventions and the memory estimate (and ``attnpotts contacts --help``) load without it.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    dict.fromkeys(
        ("FAR_FROM_CONVERGENCE", "ConvergenceReport", "FactoredDCA", "PlmDCA", "PreparedData",
         "fit_factored", "fit_plm", "merge_neighbours", "prepare_data"),
        "fit",
    ),
    eager=__all__,
)
