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

#: Names that moved to :mod:`attnpotts.formats` (reachable here by :func:`__getattr__`).
_MOVED_TO_FORMATS = frozenset(
    {
        "ADABMDCA_PROTEIN_ALPHABET",
        "CCMPRED_ALPHABET",
        "EC_TSV_HEADER",
        "NPZ_FORMAT_VERSION",
        "CouplingsFile",
        "ImportedParameters",
        "ec_numbering",
        "load_couplings_npz",
        "read_adabmdca_params",
        "read_ccmpred_raw",
        "read_ec_table",
        "read_plmc_params",
        "read_score_matrix",
        "save_couplings_npz",
        "write_adabmdca_params",
        "write_ccmpred_braw",
        "write_ec_table",
        "write_ec_tsv",
        "write_score_matrix",
    }
)


def __getattr__(name: str) -> Any:
    """The names of :data:`_MOVED_TO_FORMATS`, from :mod:`attnpotts.formats`."""
    if name in _MOVED_TO_FORMATS:
        from .. import formats

        return getattr(formats, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
