"""Generalized Potts models: energies, conditionals, gauge, exact enumeration, synthetic models.

The coupling layout and its converters are :mod:`attnpotts.potts.layout`; the one ``.npz`` file
format of Potts parameters is :mod:`attnpotts.potts.npz`.
"""

from .entropy import conditional_entropies
from .enumeration import MAX_STATES, ExactPotts, all_states
from .gauge import zero_sum_gauge
from .layout import (
    coupling_blocks,
    coupling_matrix,
    couplings_from_blocks,
    couplings_from_factors,
    couplings_from_matrix,
    couplings_from_padded,
    fields_from_padded,
    pack_pairs,
    padded_fields,
    padded_transposed,
    pair_indices,
    pair_position,
    transpose_couplings,
    unpack_pairs,
)
from .model import ConditionalPotts, PottsModel, check_states
from .npz import (
    MAX_MODEL_BYTES,
    POTTS_NPZ_FORMAT,
    POTTS_NPZ_VERSION,
    PottsFile,
    read_potts_npz,
    write_potts_npz,
)
from .synthetic import (
    GeneralizedPottsSpec,
    dense_site_couplings,
    ferromagnetic_colour_couplings,
    gaussian_colour_couplings,
    generalized_potts,
    identity_colour_couplings,
    sparse_site_couplings,
)

__all__ = [
    "MAX_MODEL_BYTES",
    "MAX_STATES",
    "POTTS_NPZ_FORMAT",
    "POTTS_NPZ_VERSION",
    "ConditionalPotts",
    "ExactPotts",
    "GeneralizedPottsSpec",
    "PottsFile",
    "PottsModel",
    "all_states",
    "check_states",
    "conditional_entropies",
    "coupling_blocks",
    "coupling_matrix",
    "couplings_from_blocks",
    "couplings_from_factors",
    "couplings_from_matrix",
    "couplings_from_padded",
    "dense_site_couplings",
    "ferromagnetic_colour_couplings",
    "fields_from_padded",
    "gaussian_colour_couplings",
    "generalized_potts",
    "identity_colour_couplings",
    "pack_pairs",
    "padded_fields",
    "padded_transposed",
    "pair_indices",
    "pair_position",
    "read_potts_npz",
    "sparse_site_couplings",
    "transpose_couplings",
    "unpack_pairs",
    "write_potts_npz",
    "zero_sum_gauge",
]
