"""Contact scores (Frobenius, APC), precision@L/k, coupling recovery (no torch).

The file formats (score matrices, EC tables, couplings ``.npz``, the peer tools' parameters)
are :mod:`attnpotts.formats`; their names are still reachable here for code written before they
moved (not listed in ``__all__``; new code imports them from :mod:`attnpotts.formats`).
"""

from typing import Any

from .precision import (
    DEFAULT_FRACTIONS,
    DEFAULT_SEPARATIONS,
    contact_precision,
    precision_at,
    precision_table,
    ranked_pairs,
)
from .recovery import (
    FactorCorrelations,
    RecoveryReport,
    coupling_recovery,
    factor_correlations,
    pearson,
    relative_coupling_error,
)
from .scores import apc, contact_scores, frobenius_scores, symmetrize_couplings

__all__ = [
    "DEFAULT_FRACTIONS",
    "DEFAULT_SEPARATIONS",
    "FactorCorrelations",
    "RecoveryReport",
    "apc",
    "contact_precision",
    "contact_scores",
    "coupling_recovery",
    "factor_correlations",
    "frobenius_scores",
    "pearson",
    "precision_at",
    "precision_table",
    "ranked_pairs",
    "relative_coupling_error",
    "symmetrize_couplings",
]


def __getattr__(name: str) -> Any:
    """The names that moved to :mod:`attnpotts.formats` (its ``__all__``), answered from there."""
    from .. import formats

    if name in formats.__all__:
        return getattr(formats, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
