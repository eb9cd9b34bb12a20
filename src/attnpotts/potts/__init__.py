"""Generalized Potts models: energies, conditionals, gauge, exact enumeration, synthetic models."""

from .entropy import conditional_entropies
from .enumeration import MAX_STATES, ExactPotts, all_states
from .gauge import zero_sum_gauge
from .model import ConditionalPotts, PottsModel, check_states
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
    "MAX_STATES",
    "ConditionalPotts",
    "ExactPotts",
    "GeneralizedPottsSpec",
    "PottsModel",
    "all_states",
    "check_states",
    "conditional_entropies",
    "dense_site_couplings",
    "ferromagnetic_colour_couplings",
    "gaussian_colour_couplings",
    "generalized_potts",
    "identity_colour_couplings",
    "sparse_site_couplings",
    "zero_sum_gauge",
]
