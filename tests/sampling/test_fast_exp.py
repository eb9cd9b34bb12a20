"""The polynomial exp of the heat-bath kernel against numpy's exp."""

from __future__ import annotations

import numpy as np

from attnpotts.sampling.kernels import _exp_nonpositive


def test_fast_exp_matches_numpy_on_nonpositive_arguments() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            -rng.exponential(3.0, size=20_000),
            -rng.uniform(0, 708, size=20_000),
            np.array([0.0, -1e-300, -1e-12, -0.5, -1.0, -700.0, -707.99]),
        ]
    )
    got = np.array([_exp_nonpositive(v) for v in x])
    np.testing.assert_allclose(got, np.exp(x), rtol=1e-15, atol=0)


def test_fast_exp_underflows_to_zero_from_minus_708() -> None:
    # exp(-708) = 3.3e-308: negligible next to the largest heat-bath weight, which is exp(0) = 1
    for v in (-708.0, -708.5, -745.0, -1e4, -np.inf):
        assert _exp_nonpositive(v) == 0.0
