"""The stages of ``reproduce``, one module each; every stage reads its runs from a
:class:`~attnpotts.experiments.reproduce.context.StageContext` and returns a
:class:`~attnpotts.experiments.reproduce.context.StageOutput` (summary, figures, runs used)."""

from __future__ import annotations

from collections.abc import Callable

from ..context import StageContext, StageOutput
from .couplings import stage_couplings
from .depth import stage_depth
from .equivalence import EQUIVALENCE_RTOL, stage_equivalence
from .scaling import stage_scaling
from .theory import stage_theory

__all__ = [
    "EQUIVALENCE_RTOL",
    "STAGE_FUNCTIONS",
    "stage_couplings",
    "stage_depth",
    "stage_equivalence",
    "stage_scaling",
    "stage_theory",
]

#: Stage name -> the function computing it, in pipeline order.
STAGE_FUNCTIONS: dict[str, Callable[[StageContext], StageOutput]] = {
    "depth": stage_depth,
    "scaling": stage_scaling,
    "couplings": stage_couplings,
    "theory": stage_theory,
    "equivalence": stage_equivalence,
}
