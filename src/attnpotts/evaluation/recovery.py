"""Coupling recovery: how well learned couplings (or attention factors) match a known true model.

Metrics (all gauge invariant, comparing ``beta * J`` of the truth with the learned couplings, which
already include ``beta``):

* :func:`relative_coupling_error`: ``||J0_learned - J0_true||_F / ||J0_true||_F`` with both
  couplings in the zero-sum gauge (:func:`attnpotts.potts.zero_sum_gauge`, block-wise double
  centring, valid for asymmetric couplings too) and the diagonal blocks ``i == j`` left out.
* :func:`factor_correlations`: for factored models ``J = sum_h A_h (x) V_h`` against a true
  ``J = sum_k Jsite_k (x) Ucol_k``, the Pearson correlation of ``A_h`` with ``Jsite_k`` over the
  off-diagonal entries ``i != j`` and of ``V_h`` with ``Ucol_k`` over all ``q x q`` entries after
  double centring both (the only part of ``V`` the conditionals see: row and column shifts of
  ``V`` move into the fields). Pearson correlation is invariant under the scale gauge
  ``(A, V) -> (c A, V / c)`` for ``c > 0``; the sign gauge ``c = -1`` is fixed by reporting the
  attention correlation as non-negative and multiplying the value correlation by the same sign,
  so a recovered model has both correlations near +1 and a value correlation near -1 means the
  learned product has the wrong sign. With several heads or components, heads are matched to
  components by maximising ``sum |r_A| |r_V|`` (Hungarian algorithm).
* :func:`coupling_recovery`: the above plus the contact scores of both models: the Pearson
  correlation of their Frobenius + APC scores over pairs ``i < j``, and the fraction of the truly
  coupled pairs found among the same number of top-ranked learned pairs, ranked by the Frobenius
  norm (``top_pair_recovery``) and by Frobenius + APC (``top_pair_recovery_apc``). On synthetic
  data the plain norm is the right ranking: APC corrects for phylogeny and conservation in real
  alignments, and it reorders the weak pairs even of exact couplings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ShapeError, ValidationError
from ..potts import zero_sum_gauge
from .scores import apc, frobenius_scores

__all__ = [
    "FactorCorrelations",
    "RecoveryReport",
    "coupling_recovery",
    "factor_correlations",
    "pearson",
    "relative_coupling_error",
]


def _np(x: Any, name: str) -> np.ndarray:
    if type(x).__module__.split(".")[0] == "torch":
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValidationError(f"{name} contain NaN or infinite values")
    return a


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two arrays of equal size (NaN if either is constant)."""
    x = np.ravel(x).astype(np.float64)
    y = np.ravel(y).astype(np.float64)
    if x.size != y.size:
        raise ShapeError(f"cannot correlate arrays of {x.size} and {y.size} entries")
    xc, yc = x - x.mean(), y - y.mean()
    den = np.sqrt((xc @ xc) * (yc @ yc))
    if den == 0.0:
        return float("nan")
    return float(np.clip((xc @ yc) / den, -1.0, 1.0))


def _couplings(x: Any, name: str) -> np.ndarray:
    J = _np(x, name)
    if J.ndim != 4 or J.shape[0] != J.shape[1] or J.shape[2] != J.shape[3]:
        raise ShapeError(f"{name} must have shape (L, L, q, q), got {J.shape}")
    return J


def relative_coupling_error(true_couplings: Any, learned_couplings: Any) -> float:
    """``||J0_learned - J0_true||_F / ||J0_true||_F`` in the zero-sum gauge, off-diagonal blocks.

    Args:
        true_couplings: ``(L, L, q, q)``, i.e. ``beta * J`` of the true model.
        learned_couplings: ``(L, L, q, q)``, possibly asymmetric.

    Raises:
        ValidationError: the true couplings are zero in the zero-sum gauge (the error is undefined).
    """
    Jt = _couplings(true_couplings, "true couplings")
    Jl = _couplings(learned_couplings, "learned couplings")
    if Jt.shape != Jl.shape:
        raise ShapeError(f"true couplings {Jt.shape} and learned {Jl.shape} differ in shape")
    L = Jt.shape[0]
    off = ~np.eye(L, dtype=bool)
    Jt0 = zero_sum_gauge(Jt)[0][off]
    Jl0 = zero_sum_gauge(Jl)[0][off]
    norm = float(np.sqrt((Jt0**2).sum()))
    if norm == 0.0:
        raise ValidationError(
            "the true couplings vanish in the zero-sum gauge: relative error undefined"
        )
    return float(np.sqrt(((Jl0 - Jt0) ** 2).sum()) / norm)


def _double_centre(V: np.ndarray) -> np.ndarray:
    return (
        V
        - V.mean(axis=-1, keepdims=True)
        - V.mean(axis=-2, keepdims=True)
        + V.mean(axis=(-2, -1), keepdims=True)
    )


def _stack(x: Any, name: str) -> np.ndarray:
    a = _np(x, name)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ShapeError(f"{name} must be (H, n, n) or (n, n), got {a.shape}")
    return a


@dataclass(frozen=True)
class FactorCorrelations:
    """Correlations of learned attention/value factors with the true site/colour factors.

    Attributes:
        attention: per matched pair, ``|r(A_h, Jsite_k)|`` over off-diagonal entries.
        value: per matched pair, ``sign * r(V0_h, Ucol0_k)`` (double-centred; see module doc).
        heads: learned head index ``h`` of each matched pair.
        components: true component index ``k`` of each matched pair.
    """

    attention: tuple[float, ...]
    value: tuple[float, ...]
    heads: tuple[int, ...]
    components: tuple[int, ...]


def factor_correlations(
    attention: Any, values: Any, site_couplings: Any, colour_couplings: Any
) -> FactorCorrelations:
    """Correlate learned ``A: (H, L, L)``, ``V: (H, q, q)`` with true ``Jsite: (K, L, L)``, ``Ucol: (K, q, q)``.

    2-d inputs are read as one head / one component. See the module docstring for the gauges.
    """
    A = _stack(attention, "attention")
    V = _stack(values, "values")
    S = _stack(site_couplings, "site couplings")
    U = _stack(colour_couplings, "colour couplings")
    if A.shape[0] != V.shape[0]:
        raise ShapeError(f"{A.shape[0]} attention heads but {V.shape[0]} value matrices")
    if S.shape[0] != U.shape[0]:
        raise ShapeError(f"{S.shape[0]} site factors but {U.shape[0]} colour factors")
    if A.shape[1] != S.shape[1]:
        raise ShapeError(f"attention is over L = {A.shape[1]} sites, the truth over {S.shape[1]}")
    if V.shape[1] != U.shape[1]:
        raise ShapeError(f"values are over q = {V.shape[1]} states, the truth over {U.shape[1]}")
    L = A.shape[1]
    off = ~np.eye(L, dtype=bool)
    V0, U0 = _double_centre(V), _double_centre(U)
    H, K = A.shape[0], S.shape[0]
    rA = np.array([[pearson(A[h][off], S[k][off]) for k in range(K)] for h in range(H)])
    rV = np.array([[pearson(V0[h], U0[k]) for k in range(K)] for h in range(H)])
    strength = np.nan_to_num(np.abs(rA) * np.abs(rV), nan=0.0)
    from scipy.optimize import linear_sum_assignment  # 0.3 s import: only when matching heads

    heads, comps = linear_sum_assignment(strength, maximize=True)
    att: list[float] = []
    val: list[float] = []
    for h, k in zip(heads, comps, strict=True):
        sign = -1.0 if rA[h, k] < 0 else 1.0
        att.append(float(sign * rA[h, k]))
        val.append(float(sign * rV[h, k]))
    return FactorCorrelations(
        tuple(att), tuple(val), tuple(int(h) for h in heads), tuple(int(k) for k in comps)
    )


@dataclass(frozen=True)
class RecoveryReport:
    """Coupling-recovery metrics (see the module docstring).

    Attributes:
        relative_error: gauge-fixed relative Frobenius error of the couplings.
        coupling_correlation: Pearson correlation of the zero-sum-gauged couplings (off-diagonal
            blocks), insensitive to an overall scale.
        score_correlation: Pearson correlation of the Frobenius + APC scores over pairs ``i < j``.
        top_pair_recovery: fraction of the true coupled pairs (nonzero true Frobenius norm) among
            the same number of top learned pairs by Frobenius norm; ``None`` when every pair is
            coupled.
        top_pair_recovery_apc: the same with the learned pairs ranked by Frobenius + APC.
        n_true_pairs: number of truly coupled pairs ``i < j``.
        factors: factor correlations when factors were given, else ``None``.
    """

    relative_error: float
    coupling_correlation: float
    score_correlation: float
    top_pair_recovery: float | None
    top_pair_recovery_apc: float | None
    n_true_pairs: int
    factors: FactorCorrelations | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (for ``summary.json``)."""
        out: dict[str, Any] = {
            "relative_error": self.relative_error,
            "coupling_correlation": self.coupling_correlation,
            "score_correlation": self.score_correlation,
            "top_pair_recovery": self.top_pair_recovery,
            "top_pair_recovery_apc": self.top_pair_recovery_apc,
            "n_true_pairs": self.n_true_pairs,
        }
        if self.factors is not None:
            out["attention_correlation"] = list(self.factors.attention)
            out["value_correlation"] = list(self.factors.value)
            out["matched_heads"] = list(self.factors.heads)
            out["matched_components"] = list(self.factors.components)
        return out


def coupling_recovery(
    true_couplings: Any,
    learned_couplings: Any,
    *,
    attention: Any = None,
    values: Any = None,
    site_couplings: Any = None,
    colour_couplings: Any = None,
    exclude_state: int | None = None,
    pair_tolerance: float = 1e-12,
) -> RecoveryReport:
    """All recovery metrics of learned couplings against the truth.

    Args:
        true_couplings: ``(L, L, q, q)``, ``beta * J`` of the true model.
        learned_couplings: ``(L, L, q, q)`` learned (possibly asymmetric).
        attention, values: learned factors ``(H, L, L)``, ``(H, q, q)`` (optional, together).
        site_couplings, colour_couplings: true factors ``(K, L, L)``, ``(K, q, q)`` (optional,
            together; needed with the learned factors).
        exclude_state: state left out of the Frobenius scores (e.g. a gap).
        pair_tolerance: a true pair is coupled when its Frobenius norm exceeds
            ``pair_tolerance * max`` norm.
    """
    Jt = _couplings(true_couplings, "true couplings")
    Jl = _couplings(learned_couplings, "learned couplings")
    rel = relative_coupling_error(Jt, Jl)
    L = Jt.shape[0]
    off = ~np.eye(L, dtype=bool)
    corr = pearson(zero_sum_gauge(Jt)[0][off], zero_sum_gauge(Jl)[0][off])
    Ft = frobenius_scores(Jt, exclude_state=exclude_state)
    Fl = frobenius_scores(Jl, exclude_state=exclude_state)
    iu = np.triu_indices(L, k=1)
    Fl_apc = apc(Fl) if L >= 3 else Fl
    score_corr = pearson(apc(Ft)[iu], Fl_apc[iu]) if L >= 3 else pearson(Ft[iu], Fl[iu])
    true_pairs = Ft[iu] > pair_tolerance * max(float(Ft.max()), 0.0)
    n_true = int(true_pairs.sum())
    top: float | None = None
    top_apc: float | None = None
    if 0 < n_true < true_pairs.size:
        top = float(true_pairs[np.argsort(-Fl[iu], kind="stable")[:n_true]].mean())
        top_apc = float(true_pairs[np.argsort(-Fl_apc[iu], kind="stable")[:n_true]].mean())
    factors = None
    learned_given = attention is not None or values is not None
    true_given = site_couplings is not None or colour_couplings is not None
    if learned_given or true_given:
        if (
            attention is None
            or values is None
            or site_couplings is None
            or colour_couplings is None
        ):
            raise ValidationError(
                "factor correlations need attention, values, site_couplings and colour_couplings "
                "together; pass all four or none"
            )
        factors = factor_correlations(attention, values, site_couplings, colour_couplings)
    return RecoveryReport(rel, corr, score_corr, top, top_apc, n_true, factors)
