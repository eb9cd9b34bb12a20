"""Sequence weights against a brute-force O(N^2) reference, duplicates collapsed exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attnpotts.alignment import min_matches, neighbour_leaders, sequence_weights, unique_rows
from attnpotts.errors import ShapeError, ValidationError


def brute_force_weights(states: np.ndarray, threshold: float) -> np.ndarray:
    """Plain double loop: identity = fraction of equal columns (gaps included)."""
    n, L = states.shape
    w = np.zeros(n)
    for a in range(n):
        count = 0
        for b in range(n):
            if np.sum(states[a] == states[b]) / L >= threshold:
                count += 1
        w[a] = 1.0 / count
    return w


def random_family(n: int, L: int, q: int, seed: int) -> np.ndarray:
    """Sequences around a few ancestors (so that neighbours exist), with exact duplicates."""
    rng = np.random.default_rng(seed)
    anc = rng.integers(0, q, size=(3, L))
    x = anc[rng.integers(0, 3, size=n)]
    mutate = rng.random((n, L)) < rng.uniform(0.05, 0.4)
    x = np.where(mutate, rng.integers(0, q, size=(n, L)), x)
    x[rng.integers(0, n, size=n // 4)] = x[0]  # duplicates of the first sequence
    return x.astype(np.int8)


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.9, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weights_match_brute_force(threshold: float, seed: int) -> None:
    x = random_family(60, 17, 5, seed)
    sw = sequence_weights(x, threshold=threshold)
    ref = brute_force_weights(x, threshold)
    np.testing.assert_allclose(sw.weights, ref, rtol=0, atol=1e-15)
    assert sw.n_eff == pytest.approx(ref.sum(), rel=1e-14)
    # collapsed: unique sequences with multiplicities carry the same total weight
    np.testing.assert_array_equal(sw.unique_states[sw.inverse], x)
    np.testing.assert_allclose(sw.unique_weights, np.bincount(sw.inverse, weights=ref), rtol=1e-14)
    assert sw.multiplicity.sum() == x.shape[0]


#: small alignments of three states (many neighbours) and thresholds on and between the fractions
SMALL_ALIGNMENTS = arrays(np.int8, st.tuples(st.integers(1, 30), st.integers(1, 12)), elements=st.integers(0, 2))
THRESHOLDS = st.sampled_from([0.1, 0.34, 0.5, 2 / 3, 0.8, 1.0])


@settings(max_examples=60, deadline=None)
@given(x=SMALL_ALIGNMENTS, threshold=THRESHOLDS)
def test_weights_property(x: np.ndarray, threshold: float) -> None:
    sw = sequence_weights(x, threshold=threshold)
    np.testing.assert_allclose(sw.weights, brute_force_weights(x, threshold), atol=1e-15)


def test_identical_threshold_counts_multiplicities() -> None:
    x = np.array([[0, 1], [0, 1], [1, 1], [0, 1]], dtype=np.int8)
    sw = sequence_weights(x, threshold=1.0)
    np.testing.assert_allclose(sw.weights, [1 / 3, 1 / 3, 1, 1 / 3])
    assert sw.n_eff == pytest.approx(2.0)
    assert sw.n_unique == 2
    np.testing.assert_array_equal(sw.unique_index, [0, 2])
    np.testing.assert_array_equal(sw.multiplicity, [3, 1])


def test_unique_rows_order_of_first_appearance() -> None:
    x = np.array([[2, 2], [0, 1], [2, 2], [0, 0]])
    u, first, inv, counts = unique_rows(x)
    np.testing.assert_array_equal(u, [[2, 2], [0, 1], [0, 0]])
    np.testing.assert_array_equal(first, [0, 1, 3])
    np.testing.assert_array_equal(inv, [0, 1, 0, 2])
    np.testing.assert_array_equal(counts, [2, 1, 1])


@settings(max_examples=200, deadline=None)
@given(threshold=st.floats(1e-6, 1.0), L=st.integers(1, 500))
def test_min_matches_is_the_smallest_count(threshold: float, L: int) -> None:
    m = min_matches(threshold, L)
    assert m / L >= threshold
    assert m == 0 or (m - 1) / L < threshold


def test_bad_inputs() -> None:
    with pytest.raises(ValidationError, match=r"\(0, 1\]"):
        sequence_weights(np.zeros((2, 3), dtype=np.int8), threshold=0.0)
    with pytest.raises(ShapeError):
        sequence_weights(np.zeros(3, dtype=np.int8))
    with pytest.raises(ValidationError, match="integers"):
        sequence_weights(np.zeros((2, 3)))
    with pytest.raises(ValidationError, match="empty"):
        sequence_weights(np.zeros((0, 3), dtype=np.int8))
    with pytest.raises(ValidationError, match="non-negative"):
        sequence_weights(np.full((2, 3), -1, dtype=np.int8))
    with pytest.raises(ValidationError, match=r"0\.\.255"):
        sequence_weights(np.full((2, 3), 300))


def brute_force_leaders(states: np.ndarray, threshold: float) -> np.ndarray:
    """Leader clustering in row order, by plain loops over the identity fraction."""
    n, L = states.shape
    leader = np.full(n, -1)
    for i in range(n):
        if leader[i] < 0:
            leader[i] = i
            for j in range(i + 1, n):
                if leader[j] < 0 and np.sum(states[i] == states[j]) / L >= threshold:
                    leader[j] = i
    return leader


@settings(max_examples=60, deadline=None)
@given(x=SMALL_ALIGNMENTS, threshold=THRESHOLDS)
def test_leaders_match_brute_force(x: np.ndarray, threshold: float) -> None:
    leader = neighbour_leaders(x, threshold=threshold)
    np.testing.assert_array_equal(leader, brute_force_leaders(x, threshold))
    # every row is a neighbour of its leader, which leads itself and comes first
    assert np.all(leader <= np.arange(len(x)))
    np.testing.assert_array_equal(leader[leader], leader)
    identity = (x == x[leader]).mean(axis=1)
    assert np.all(identity >= threshold - 1e-12)


def test_leaders_of_a_family_and_bad_inputs() -> None:
    x = random_family(80, 21, 4, 3)
    leader = neighbour_leaders(x, threshold=0.8)
    np.testing.assert_array_equal(leader, brute_force_leaders(x, 0.8))
    assert len(np.unique(leader)) < len(x)  # the duplicates and near copies share leaders
    np.testing.assert_array_equal(neighbour_leaders(np.unique(x, axis=0), threshold=1.0),
                                  np.arange(len(np.unique(x, axis=0))))  # distinct rows lead alone
    with pytest.raises(ShapeError):
        neighbour_leaders(np.zeros(3, dtype=np.int8))
    with pytest.raises(ValidationError, match=r"0\.\.255"):
        neighbour_leaders(np.full((2, 3), 300))
    with pytest.raises(ValidationError, match=r"\(0, 1\]"):
        neighbour_leaders(np.zeros((2, 3), dtype=np.int8), threshold=1.5)
