"""Small random Potts models shared by the sampling tests (fixture ``make_model``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from attnpotts.potts import PottsModel


def _random_model(L: int, q: int, beta: float, seed: int, *, fields: bool = True) -> PottsModel:
    """A symmetric Potts model with N(0, 1) couplings (and fields) and zero self-couplings."""
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(L, L, q, q))
    J = 0.5 * (J + J.transpose(1, 0, 3, 2))
    J[np.arange(L), np.arange(L)] = 0.0
    h = rng.normal(size=(L, q)) if fields else None
    return PottsModel(h, J, beta)


@pytest.fixture
def make_model() -> Callable[..., PottsModel]:
    """Factory ``make_model(L, q, beta, seed, fields=True)`` of random symmetric Potts models."""
    return _random_model
