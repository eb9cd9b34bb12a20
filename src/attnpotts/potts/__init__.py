"""Generalized Potts models: energies, conditionals, gauge, exact enumeration, synthetic models."""

from .enumeration import MAX_STATES, ExactPotts, all_states
from .gauge import zero_sum_gauge
from .model import ConditionalPotts, PottsModel, check_states

__all__ = [
    "MAX_STATES",
    "ConditionalPotts",
    "ExactPotts",
    "PottsModel",
    "all_states",
    "check_states",
    "zero_sum_gauge",
]
