"""Potts models: conditionals (any couplings) and the symmetric Boltzmann model (energies).

Conventions (``docs/conventions.md``), used everywhere in attnpotts:

* states ``s_i in {0..q-1}``, sequences ``states: (M, L)`` integers;
* ``fields: (L, q)``, ``couplings: (L, L, q, q)`` with ``couplings[i, i] == 0``;
* energy ``H(s) = - sum_{i<j} J[i, j, s_i, s_j] - sum_i h[i, s_i]`` and ``P(s) ∝ exp(-beta H(s))``;
* conditional ``P(s_i = a | s_rest) = softmax_a(beta * (h[i, a] + sum_{j != i} J[i, j, a, s_j]))``.

:class:`ConditionalPotts` accepts any couplings (learned attention is in general asymmetric) and
gives conditionals and the pseudo-likelihood only. :class:`PottsModel` requires the symmetry
``J[i, j, a, b] == J[j, i, b, a]`` that a joint distribution needs, and adds energies;
:meth:`ConditionalPotts.symmetrized` converts one into the other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from ..errors import DataFormatError, ShapeError, ValidationError
from .gauge import zero_sum_gauge
from .layout import coupling_matrix, couplings_from_factors, transpose_couplings
from .npz import KINDS, MAX_MODEL_BYTES, PottsFile, read_potts_npz, write_potts_npz

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ConditionalPotts", "PottsModel", "check_states"]

_SYMMETRY_RTOL = 1e-10
#: Sequences processed per block when building one-hot encodings (bounds temporary memory).
_CHUNK = 4096

ArrayLike = Any  # numpy array or torch tensor
_T = TypeVar("_T", bound="ConditionalPotts")


def _is_torch(x: object) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def check_states(states: ArrayLike, n_sites: int, n_states: int, *, name: str = "states") -> None:
    """Validate integer sequences ``(M, L)`` with values in ``0..q-1``.

    Raises:
        ShapeError: not two-dimensional or the wrong length.
        ValidationError: not integers, or values out of range.
    """
    shape = tuple(states.shape)
    if len(shape) != 2:
        raise ShapeError(f"{name} must have shape (M, L) = (n_sequences, {n_sites}), got {shape}")
    if shape[1] != n_sites:
        raise ShapeError(
            f"{name} have length {shape[1]} but the model has L = {n_sites} sites; "
            "use sequences of the model's length"
        )
    if _is_torch(states):
        if states.dtype.is_floating_point or states.dtype.is_complex:
            raise ValidationError(f"{name} must be integers, got dtype {states.dtype}")
    elif not np.issubdtype(np.asarray(states).dtype, np.integer):
        raise ValidationError(f"{name} must be integers, got dtype {np.asarray(states).dtype}")
    if shape[0] and (int(states.min()) < 0 or int(states.max()) >= n_states):
        raise ValidationError(
            f"{name} must lie in 0..{n_states - 1} (q = {n_states}), "
            f"got values in {int(states.min())}..{int(states.max())}"
        )


def _as_float_array(x: ArrayLike, name: str) -> np.ndarray:
    if _is_torch(x):
        x = x.detach().cpu().numpy()
    arr = np.array(x, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} contain NaN or infinite values; pass finite numbers")
    return arr


class ConditionalPotts:
    """Single-site conditionals of a Potts model with arbitrary (possibly asymmetric) couplings.

    Args:
        fields: ``(L, q)`` local fields ``h``; ``None`` means zero.
        couplings: ``(L, L, q, q)`` couplings ``J`` with zero diagonal blocks ``J[i, i]``.
        beta: inverse temperature, ``>= 0``.

    All arrays are stored as read-only float64 copies.
    """

    def __init__(self, fields: ArrayLike | None, couplings: ArrayLike, beta: float = 1.0) -> None:
        J = _as_float_array(couplings, "couplings")
        if J.ndim != 4 or J.shape[0] != J.shape[1] or J.shape[2] != J.shape[3]:
            raise ShapeError(f"couplings must have shape (L, L, q, q), got {J.shape}")
        L, q = J.shape[0], J.shape[2]
        if L < 1 or q < 2:
            raise ShapeError(f"need L >= 1 sites and q >= 2 states, got L={L}, q={q}")
        h = np.zeros((L, q)) if fields is None else _as_float_array(fields, "fields")
        if h.shape != (L, q):
            raise ShapeError(
                f"fields must have shape (L, q) = {(L, q)} to match couplings, got {h.shape}"
            )
        diag = np.abs(J[np.arange(L), np.arange(L)]).max() if L else 0.0
        if diag != 0.0:
            raise ValidationError(
                f"self-couplings J[i, i] must be zero (max |J[i, i]| = {diag:.3g}); "
                "put single-site terms into fields"
            )
        beta = float(beta)
        if not np.isfinite(beta) or beta < 0:
            raise ValidationError(f"beta must be finite and >= 0, got {beta}")
        h.setflags(write=False)
        J.setflags(write=False)
        self._fields = h
        self._couplings = J
        self._beta = beta
        self._coupling_matrix: np.ndarray | None = None

    # ------------------------------------------------------------------ properties
    @property
    def fields(self) -> np.ndarray:
        """``(L, q)`` fields ``h`` (read-only float64)."""
        return self._fields

    @property
    def couplings(self) -> np.ndarray:
        """``(L, L, q, q)`` couplings ``J`` (read-only float64)."""
        return self._couplings

    @property
    def beta(self) -> float:
        """Inverse temperature."""
        return self._beta

    @property
    def n_sites(self) -> int:
        """Number of sites ``L``."""
        return int(self._couplings.shape[0])

    @property
    def n_states(self) -> int:
        """Number of states (colours) ``q``."""
        return int(self._couplings.shape[2])

    @property
    def is_symmetric(self) -> bool:
        """Whether ``J[i, j, a, b] == J[j, i, b, a]`` (to relative precision 1e-10)."""
        J = self._couplings
        scale = max(1.0, float(np.abs(J).max(initial=0.0)))
        return bool(np.abs(J - transpose_couplings(J)).max(initial=0.0) <= _SYMMETRY_RTOL * scale)

    def coupling_matrix(self) -> np.ndarray:
        """``(L q, L q)`` matrix ``W[(i, a), (j, b)] = J[i, j, a, b]`` (cached)."""
        if self._coupling_matrix is None:
            W = coupling_matrix(self._couplings)
            W.setflags(write=False)
            self._coupling_matrix = W
        return self._coupling_matrix

    def _torch_params(self, dtype: Any, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, h)`` as torch tensors of ``dtype`` on ``device`` (cached per dtype and device)."""
        import torch

        cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]]
        cache = self.__dict__.setdefault("_torch_cache", {})
        key = (str(dtype), str(device))
        if key not in cache:
            W = torch.tensor(np.array(self.coupling_matrix()), dtype=dtype, device=device)
            h = torch.tensor(np.array(self._fields), dtype=dtype, device=device)
            cache[key] = (W, h)
        return cache[key]

    # ------------------------------------------------------------------ conditionals
    def local_fields(self, states: ArrayLike, *, dtype: Any = None) -> ArrayLike:
        """Local fields ``F[m, i, a] = h[i, a] + sum_{j != i} J[i, j, a, s_j]``, shape ``(M, L, q)``.

        Numpy input gives numpy output (float64 unless ``dtype``); a torch tensor gives a torch
        tensor on its device (float64 unless ``dtype``, e.g. ``torch.float32``).
        """
        check_states(states, self.n_sites, self.n_states)
        L, q = self.n_sites, self.n_states
        if _is_torch(states):
            import torch

            tdtype = torch.float64 if dtype is None else dtype
            W, h = self._torch_params(tdtype, states.device)
            onehot = torch.nn.functional.one_hot(states.long(), q).to(tdtype).reshape(-1, L * q)
            return (onehot @ W.T).reshape(-1, L, q) + h
        s = np.asarray(states)
        ndtype = np.float64 if dtype is None else np.dtype(dtype)
        Wn = self.coupling_matrix().astype(ndtype, copy=False)
        out = np.empty((s.shape[0], L, q), dtype=ndtype)
        for start in range(0, s.shape[0], _CHUNK):
            block = s[start : start + _CHUNK]
            block_onehot = np.zeros((block.shape[0], L * q), dtype=ndtype)
            # column of state s_j at site j is j*q + s_j
            block_onehot[np.arange(block.shape[0])[:, None], np.arange(L) * q + block] = 1.0
            out[start : start + block.shape[0]] = (block_onehot @ Wn.T).reshape(-1, L, q)
        out += self._fields.astype(ndtype, copy=False)
        return out

    def conditional_logits(self, states: ArrayLike, *, dtype: Any = None) -> ArrayLike:
        """Logits ``beta * F[m, i, a]`` of ``P(s_i = a | s_rest)``, shape ``(M, L, q)``.

        The logits at site ``i`` do not depend on ``s_i`` (no self-coupling).
        """
        return self.local_fields(states, dtype=dtype) * self._beta

    def conditional_probabilities(self, states: ArrayLike, *, dtype: Any = None) -> ArrayLike:
        """Conditional distributions ``P(s_i = a | s_rest)``, shape ``(M, L, q)``."""
        logits = self.conditional_logits(states, dtype=dtype)
        if _is_torch(logits):
            return logits.softmax(dim=-1)
        logits = logits - logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=-1, keepdims=True)

    def log_conditionals(self, states: ArrayLike, *, dtype: Any = None) -> ArrayLike:
        """``log P(s_i | s_rest)`` at the observed states, shape ``(M, L)``."""
        logits = self.conditional_logits(states, dtype=dtype)
        if _is_torch(logits):
            logp = logits.log_softmax(dim=-1)
            return logp.gather(-1, states.long().unsqueeze(-1)).squeeze(-1)
        from scipy.special import log_softmax

        logp = log_softmax(logits, axis=-1)
        s = np.asarray(states)
        return np.take_along_axis(logp, s[..., None].astype(np.intp), axis=-1)[..., 0]

    def pseudo_log_likelihood(
        self,
        states: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        reduction: Literal["sum", "mean", "none"] = "sum",
        dtype: Any = None,
    ) -> ArrayLike:
        """Log pseudo-likelihood ``sum_m w_m sum_i log P(s_i^m | s_rest^m)``.

        Args:
            states: ``(M, L)`` sequences.
            weights: ``(M,)`` non-negative sequence weights (default 1).
            reduction: ``"sum"`` (the PLL), ``"mean"`` (per weighted sequence and site, i.e.
                ``log PL / (sum(w) L)``, minus the MLM loss) or ``"none"`` (``(M,)`` per sequence).
        """
        per_seq = self.log_conditionals(states, dtype=dtype).sum(-1)
        M = per_seq.shape[0]
        if weights is not None:
            if tuple(weights.shape) != (M,):
                raise ShapeError(
                    f"weights must have shape (M,) = ({M},), got {tuple(weights.shape)}"
                )
            w: Any = weights if _is_torch(per_seq) else np.asarray(weights, dtype=per_seq.dtype)
            if _is_torch(w):
                w = w.to(per_seq.dtype)
            if not bool((w >= 0).all()) or not bool(np.isfinite(float(w.sum()))):
                raise ValidationError("weights must be finite and non-negative")
            per_seq = per_seq * w
        if reduction == "none":
            return per_seq
        total = per_seq.sum()
        if reduction == "sum":
            return total
        if reduction == "mean":
            norm = float(M if weights is None else weights.sum())
            return total / (norm * self.n_sites)
        raise ValidationError(f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}")

    # ------------------------------------------------------------------ gauge and conversions
    def zero_sum_gauge(self: _T) -> _T:
        """Return the equivalent model in the zero-sum gauge.

        Each block ``J[i, j]`` gets zero row and column sums; the removed row means go into the
        fields (``h[i, a] += sum_j mean_b J[i, j, a, b]``), then each ``h[i]`` is centred. Every
        conditional is unchanged; energies change by a configuration-independent constant.
        """
        J0, h0 = zero_sum_gauge(self._couplings, self._fields)
        return self._replace(h0, J0)

    def _replace(self: _T, fields: np.ndarray, couplings: np.ndarray) -> _T:
        return type(self)(fields, couplings, self._beta)

    def symmetrized(self) -> PottsModel:
        """The symmetric Potts model with ``(J[i, j, a, b] + J[j, i, b, a]) / 2`` (asymmetric plmDCA)."""
        J = self._couplings
        return PottsModel(self._fields, 0.5 * (J + transpose_couplings(J)), self._beta)

    def with_beta(self: _T, beta: float) -> _T:
        """The same couplings and fields at another inverse temperature."""
        return type(self)(self._fields, self._couplings, beta)

    def absorb_beta(self: _T) -> _T:
        """Equivalent model with ``beta = 1`` and ``beta`` multiplied into ``J`` and ``h``."""
        return type(self)(self._fields * self._beta, self._couplings * self._beta, 1.0)

    # ------------------------------------------------------------------ persistence
    def _factors(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        return None, None

    def save(self, path: str | os.PathLike[str], *, info: dict[str, Any] | None = None) -> Path:
        """Save to ``path`` (``.npz`` appended if missing), atomically and exactly.

        The one Potts file format (:mod:`attnpotts.potts.npz`); ``info`` is free JSON metadata.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = (
                path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
            )
        site, colour = self._factors()
        return write_potts_npz(
            path,
            self._couplings,
            self._fields,
            beta=self._beta,
            kind=type(self).__name__ if type(self).__name__ in KINDS else "ConditionalPotts",
            site_couplings=site,
            colour_couplings=colour,
            info=info,
        )

    @classmethod
    def load(cls: type[_T], path: str | os.PathLike[str], *, max_bytes: int = MAX_MODEL_BYTES) -> _T:
        """Load a Potts ``.npz`` file (:mod:`attnpotts.potts.npz`, any version).

        ``ConditionalPotts.load`` returns the class the file names (``PottsModel`` or
        ``ConditionalPotts``); ``PottsModel.load`` requires symmetric couplings. Files of fitted
        couplings (:func:`attnpotts.formats.save_couplings_npz`) load too (``beta = 1``).
        Shapes, dtypes and sizes are checked from the file's headers before any array is read;
        at most ``max_bytes`` of arrays are loaded.

        Raises:
            FileNotFoundError: no such file.
            DataFormatError: not an attnpotts Potts file, or inconsistent (names the problem).
        """
        f = read_potts_npz(path, max_bytes=max_bytes)
        if cls is ConditionalPotts:
            # load as what was saved, if that is a subclass; otherwise as conditionals
            target: type[ConditionalPotts] = PottsModel if f.kind == "PottsModel" else ConditionalPotts
        else:
            target = cls
        try:
            obj = target._from_file(f)
        except ValidationError as exc:
            raise DataFormatError(f"invalid model ({exc})", path=Path(path)) from None
        return obj  # type: ignore[return-value]

    @classmethod
    def _from_file(cls, f: PottsFile) -> ConditionalPotts:
        return cls(f.fields, f.couplings, f.beta)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(L={self.n_sites}, q={self.n_states}, beta={self._beta:g})"

    def allclose(
        self, other: ConditionalPotts, *, rtol: float = 1e-12, atol: float = 1e-12
    ) -> bool:
        """Whether two models have the same shapes, beta, fields and couplings (as stored)."""
        return bool(
            self._couplings.shape == other._couplings.shape
            and np.isclose(self._beta, other._beta, rtol=rtol, atol=atol)
            and np.allclose(self._fields, other._fields, rtol=rtol, atol=atol)
            and np.allclose(self._couplings, other._couplings, rtol=rtol, atol=atol)
        )


class PottsModel(ConditionalPotts):
    """Symmetric Potts model ``P(s) ∝ exp(-beta H(s))``: conditionals plus energies.

    Args:
        fields: ``(L, q)`` fields, ``None`` for zero.
        couplings: ``(L, L, q, q)``, symmetric ``J[i, j, a, b] == J[j, i, b, a]``, zero diagonal.
        beta: inverse temperature ``>= 0``.
        site_couplings: optional ``(K, L, L)`` factor ``Jsite`` when built by :meth:`from_factors`.
        colour_couplings: optional ``(K, q, q)`` factor ``Ucol`` when built by :meth:`from_factors`.
    """

    def __init__(
        self,
        fields: ArrayLike | None,
        couplings: ArrayLike,
        beta: float = 1.0,
        *,
        site_couplings: ArrayLike | None = None,
        colour_couplings: ArrayLike | None = None,
    ) -> None:
        super().__init__(fields, couplings, beta)
        if not self.is_symmetric:
            J = self._couplings
            err = float(np.abs(J - transpose_couplings(J)).max())
            raise ValidationError(
                "couplings must satisfy J[i, j, a, b] == J[j, i, b, a] for a joint Potts model "
                f"(max violation {err:.3g}); use ConditionalPotts for asymmetric couplings or "
                "ConditionalPotts(...).symmetrized()"
            )
        self._site: np.ndarray | None = None
        self._colour: np.ndarray | None = None
        if (site_couplings is None) != (colour_couplings is None):
            raise ValidationError("give both site_couplings and colour_couplings, or neither")
        if site_couplings is not None:
            site = _as_float_array(site_couplings, "site_couplings")
            colour = _as_float_array(colour_couplings, "colour_couplings")
            site.setflags(write=False)
            colour.setflags(write=False)
            self._site, self._colour = site, colour

    @classmethod
    def from_factors(
        cls,
        site_couplings: ArrayLike,
        colour_couplings: ArrayLike,
        *,
        fields: ArrayLike | None = None,
        beta: float = 1.0,
    ) -> PottsModel:
        """Generalized Potts model ``J[i, j, a, b] = sum_k Jsite_k[i, j] Ucol_k[a, b]``.

        Args:
            site_couplings: ``(K, L, L)`` or ``(L, L)``, symmetric with zero diagonal.
            colour_couplings: ``(K, q, q)`` or ``(q, q)``, symmetric.
            fields: optional ``(L, q)`` fields (the paper's model has none).
            beta: inverse temperature.
        """
        site = _as_float_array(site_couplings, "site_couplings")
        colour = _as_float_array(colour_couplings, "colour_couplings")
        if site.ndim == 2:
            site = site[None]
        if colour.ndim == 2:
            colour = colour[None]
        if site.ndim != 3 or site.shape[1] != site.shape[2]:
            raise ShapeError(f"site_couplings must be (K, L, L) or (L, L), got {site.shape}")
        if colour.ndim != 3 or colour.shape[1] != colour.shape[2]:
            raise ShapeError(f"colour_couplings must be (K, q, q) or (q, q), got {colour.shape}")
        if site.shape[0] != colour.shape[0]:
            raise ShapeError(
                f"site and colour factors need the same number K of components, got "
                f"{site.shape[0]} and {colour.shape[0]}"
            )
        if np.abs(site - site.transpose(0, 2, 1)).max(initial=0.0) > 1e-12 * max(
            1, np.abs(site).max()
        ):
            raise ValidationError("site_couplings must be symmetric (Jsite[i, j] == Jsite[j, i])")
        if np.abs(colour - colour.transpose(0, 2, 1)).max(initial=0.0) > 1e-12 * max(
            1, np.abs(colour).max()
        ):
            raise ValidationError("colour_couplings must be symmetric (Ucol[a, b] == Ucol[b, a])")
        L = site.shape[1]
        if np.abs(site[:, np.arange(L), np.arange(L)]).max(initial=0.0) != 0.0:
            raise ValidationError("site_couplings must have a zero diagonal (no self-coupling)")
        J = couplings_from_factors(site, colour)
        return cls(fields, J, beta, site_couplings=site, colour_couplings=colour)

    @property
    def site_couplings(self) -> np.ndarray | None:
        """``(K, L, L)`` site factor ``Jsite`` if the model was built from factors, else ``None``."""
        return self._site

    @property
    def colour_couplings(self) -> np.ndarray | None:
        """``(K, q, q)`` colour factor ``Ucol`` if the model was built from factors, else ``None``."""
        return self._colour

    def energy(self, states: ArrayLike, *, dtype: Any = None) -> ArrayLike:
        """Energies ``H(s)`` of sequences ``(M, L)``, shape ``(M,)`` (independent of ``beta``).

        Uses ``H = -1/2 sum_i (F[i, s_i] + h[i, s_i])`` with ``F`` the local fields.
        """
        F = self.local_fields(states, dtype=dtype)
        if _is_torch(F):
            idx = states.long().unsqueeze(-1)
            h = self._torch_params(F.dtype, F.device)[1]
            f_obs = F.gather(-1, idx).squeeze(-1)
            h_obs = h.expand(F.shape[0], -1, -1).gather(-1, idx).squeeze(-1)
            return -0.5 * (f_obs + h_obs).sum(-1)
        s = np.asarray(states).astype(np.intp)
        f_np = np.take_along_axis(F, s[..., None], axis=-1)[..., 0]
        h_np = self._fields.astype(F.dtype, copy=False)[np.arange(self.n_sites), s]
        return -0.5 * (f_np + h_np).sum(-1)

    def _replace(self, fields: np.ndarray, couplings: np.ndarray) -> PottsModel:
        return PottsModel(fields, couplings, self._beta)

    def absorb_beta(self) -> PottsModel:
        """Equivalent model with ``beta = 1``; factors keep ``Jsite`` and scale ``Ucol`` by beta."""
        if self._site is None:
            return PottsModel(self._fields * self._beta, self._couplings * self._beta, 1.0)
        return PottsModel(
            self._fields * self._beta,
            self._couplings * self._beta,
            1.0,
            site_couplings=self._site,
            colour_couplings=self._colour * self._beta,  # type: ignore[operator]
        )

    def with_beta(self, beta: float) -> PottsModel:
        """The same model at another inverse temperature (factors kept)."""
        return PottsModel(
            self._fields,
            self._couplings,
            beta,
            site_couplings=self._site,
            colour_couplings=self._colour,
        )

    def _factors(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        return self._site, self._colour

    @classmethod
    def _from_file(cls, f: PottsFile) -> PottsModel:
        return cls(
            f.fields,
            f.couplings,
            f.beta,
            site_couplings=f.site_couplings,
            colour_couplings=f.colour_couplings,
        )
