"""End to end on the shipped PF00014: weights -> a mean-field DCA -> Frobenius + APC -> precision.

Mean-field DCA (the inverse of the weighted, pseudo-counted covariance matrix) is written here in
a few lines as an independent consumer of the alignment and evaluation APIs; the shared README
reports that it reaches a top-L/2 precision of 0.68 to 1.00 on its families.
"""

from __future__ import annotations

import numpy as np

from attnpotts.alignment import example_files, read_alignment, read_distances
from attnpotts.evaluation import contact_scores, precision_table


def mean_field_couplings(states: np.ndarray, weights: np.ndarray, q: int, pseudo: float = 0.5):
    """``-C^{-1}`` of the pseudo-counted covariance, gap state (0) removed: ``(L, L, q, q)``."""
    M, L = states.shape
    X = np.zeros((M, L * q))
    X[np.arange(M)[:, None], np.arange(L) * q + states] = 1.0
    p = weights / weights.sum()
    f1 = (1 - pseudo) * (p @ X) + pseudo / q
    f2 = (1 - pseudo) * ((X * p[:, None]).T @ X) + pseudo / q**2
    for i in range(L):
        f2[i * q : (i + 1) * q, i * q : (i + 1) * q] = np.diag(f1[i * q : (i + 1) * q])
    C = f2 - np.outer(f1, f1)
    keep = np.tile(np.arange(q) != 0, L)
    J = np.zeros((L * q, L * q))
    J[np.ix_(keep, keep)] = -np.linalg.inv(C[np.ix_(keep, keep)])
    J = J.reshape(L, q, L, q).transpose(0, 2, 1, 3).copy()
    J[np.arange(L), np.arange(L)] = 0.0
    return J


def test_mean_field_dca_on_pf00014() -> None:
    ex = example_files("PF00014")
    msa = read_alignment(ex.alignment)
    w = msa.weights(0.8)
    assert 4000 < w.n_eff < 5000  # 13600 sequences, 8871 unique
    J = mean_field_couplings(w.unique_states.astype(np.int64), w.unique_weights, msa.q)
    scores = contact_scores(J, exclude_state=msa.alphabet.gap_index)
    D = read_distances(ex.distances, n_sites=msa.n_sites)
    table = precision_table(scores, D)
    assert table[">=6"]["L/2"] >= 0.68
    assert set(table[">=6"]) == {"L", "L/2", "L/5", "L/10"}
