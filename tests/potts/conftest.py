"""Small random Potts models shared by the potts tests."""

from __future__ import annotations

import numpy as np
import pytest

from attnpotts.potts import PottsModel


def random_factored_model(
    L: int, q: int, K: int = 1, *, seed: int, fields: bool = True, beta: float = 0.8
) -> PottsModel:
    """A generalized Potts model with random symmetric factors (and optional fields)."""
    rng = np.random.default_rng(seed)
    site = rng.normal(size=(K, L, L))
    site = 0.5 * (site + site.transpose(0, 2, 1))
    site[:, np.arange(L), np.arange(L)] = 0.0
    colour = rng.normal(size=(K, q, q))
    colour = 0.5 * (colour + colour.transpose(0, 2, 1))
    h = rng.normal(size=(L, q)) if fields else None
    return PottsModel.from_factors(site, colour, fields=h, beta=beta)


@pytest.fixture
def small_model() -> PottsModel:
    return random_factored_model(4, 3, K=2, seed=1)
