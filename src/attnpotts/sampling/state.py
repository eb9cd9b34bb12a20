"""The explicit state of a sampler run: everything needed to continue it exactly."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataFormatError, ShapeError, ValidationError
from ..storage import atomic_savez

__all__ = ["SamplerState"]


def _frozen(x: Any, dtype: Any) -> np.ndarray:
    arr = np.array(x, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class SamplerState:
    """State of ``C`` Markov chains after ``n_sweeps`` sweeps (arrays are read-only copies).

    Passing it back to ``run(..., state=state)`` continues the run exactly: running ``n1`` sweeps
    and then ``n2`` from the returned state gives the same chains, energies and samples as one
    run of ``n1 + n2`` sweeps.

    Attributes:
        chains: ``(C, L)`` int8 configurations.
        energies: ``(C,)`` float64 energies ``H`` (tracked incrementally by the kernels).
        betas: ``(C,)`` float64 inverse temperature of each chain.
        rng_state: bit-generator state (PCG64) of the stream of update uniforms.
        n_sweeps: sweeps done so far.
        n_changed: ``(C,)`` int64, site updates that changed a colour (accepted moves).
        ladder: ``(T,)`` increasing betas of parallel tempering, or ``None``.
        permutation: ``(R, T)`` int64, ``permutation[r, k]`` = chain at temperature ``k`` of
            replica set ``r`` (parallel tempering), or ``None``.
        swap_rng_state: bit-generator state of the swap uniforms (parallel tempering), or ``None``.
        swap_attempts, swap_accepts: ``(T - 1,)`` int64 counts per neighbouring pair ``(k, k+1)``.
        n_swap_rounds: swap rounds done (even rounds try pairs ``(0,1), (2,3), ...``, odd rounds
            ``(1,2), (3,4), ...``).
    """

    chains: np.ndarray
    energies: np.ndarray
    betas: np.ndarray
    rng_state: dict[str, Any]
    n_sweeps: int = 0
    n_changed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ladder: np.ndarray | None = None
    permutation: np.ndarray | None = None
    swap_rng_state: dict[str, Any] | None = None
    swap_attempts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    swap_accepts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_swap_rounds: int = 0

    def __post_init__(self) -> None:
        chains = np.asarray(self.chains)
        if chains.ndim != 2:
            raise ShapeError(f"chains must be (C, L), got shape {chains.shape}")
        C = chains.shape[0]
        if chains.size and (chains.min() < 0 or chains.max() > 127):
            raise ValidationError("chain states must lie in 0..127 (int8)")
        object.__setattr__(self, "chains", _frozen(chains, np.int8))
        object.__setattr__(self, "energies", _frozen(self.energies, np.float64))
        object.__setattr__(self, "betas", _frozen(self.betas, np.float64))
        n_changed = self.n_changed if np.size(self.n_changed) else np.zeros(C, np.int64)
        object.__setattr__(self, "n_changed", _frozen(n_changed, np.int64))
        for name in ("energies", "betas", "n_changed"):
            if getattr(self, name).shape != (C,):
                raise ShapeError(
                    f"{name} must have shape (C,) = ({C},), got {getattr(self, name).shape}"
                )
        if self.n_sweeps < 0:
            raise ValidationError(f"n_sweeps must be >= 0, got {self.n_sweeps}")
        object.__setattr__(self, "rng_state", copy.deepcopy(self.rng_state))
        if self.ladder is not None:
            ladder = _frozen(self.ladder, np.float64)
            perm = _frozen(self.permutation, np.int64)
            T = ladder.shape[0]
            if perm.ndim != 2 or perm.shape[1] != T or perm.size != C:
                raise ShapeError(f"permutation must be (R, T) with R*T = C = {C}, got {perm.shape}")
            if not np.array_equal(np.sort(perm.ravel()), np.arange(C)):
                raise ValidationError("permutation must contain each chain index exactly once")
            object.__setattr__(self, "ladder", ladder)
            object.__setattr__(self, "permutation", perm)
            object.__setattr__(self, "swap_rng_state", copy.deepcopy(self.swap_rng_state))
            for name in ("swap_attempts", "swap_accepts"):
                arr = getattr(self, name)
                arr = arr if np.size(arr) else np.zeros(max(T - 1, 0), np.int64)
                object.__setattr__(self, name, _frozen(arr, np.int64))

    # ------------------------------------------------------------------ summaries
    @property
    def n_chains(self) -> int:
        """Number of chains ``C``."""
        return int(self.chains.shape[0])

    @property
    def n_sites(self) -> int:
        """Sequence length ``L``."""
        return int(self.chains.shape[1])

    def acceptance_rate(self) -> np.ndarray:
        """``(C,)`` fraction of site updates that changed the colour (NaN before any sweep)."""
        n = self.n_sweeps * self.n_sites
        if n == 0:
            return np.full(self.n_chains, np.nan)
        return self.n_changed / n

    def swap_rates(self) -> np.ndarray:
        """``(T - 1,)`` accepted fraction of swap attempts between temperatures ``k`` and ``k + 1``."""
        if self.ladder is None:
            raise ValidationError("swap rates exist only for parallel-tempering states")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.swap_attempts > 0,
                self.swap_accepts / np.maximum(self.swap_attempts, 1),
                np.nan,
            )

    def replace(self, **changes: Any) -> SamplerState:
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save to an ``.npz`` file atomically (exact round trip, the RNG state included)."""
        meta = {
            "format": "attnpotts.sampler_state",
            "n_sweeps": self.n_sweeps,
            "n_swap_rounds": self.n_swap_rounds,
            "rng_state": self.rng_state,
            "swap_rng_state": self.swap_rng_state,
        }
        arrays: dict[str, np.ndarray] = {
            "chains": self.chains,
            "energies": self.energies,
            "betas": self.betas,
            "n_changed": self.n_changed,
            "metadata": np.array(json.dumps(meta)),
        }
        if self.ladder is not None:
            assert self.permutation is not None
            arrays.update(
                ladder=self.ladder,
                permutation=self.permutation,
                swap_attempts=self.swap_attempts,
                swap_accepts=self.swap_accepts,
            )
        return atomic_savez(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SamplerState:
        """Load a state written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        try:
            meta = json.loads(str(arrays.pop("metadata")))
        except (KeyError, json.JSONDecodeError) as exc:
            raise DataFormatError("not an attnpotts sampler state file", path=path) from exc
        if meta.get("format") != "attnpotts.sampler_state":
            raise DataFormatError("metadata format is not 'attnpotts.sampler_state'", path=path)
        return cls(
            chains=arrays["chains"],
            energies=arrays["energies"],
            betas=arrays["betas"],
            rng_state=meta["rng_state"],
            n_sweeps=int(meta["n_sweeps"]),
            n_changed=arrays["n_changed"],
            ladder=arrays.get("ladder"),
            permutation=arrays.get("permutation"),
            swap_rng_state=meta["swap_rng_state"],
            swap_attempts=arrays.get("swap_attempts", np.zeros(0, np.int64)),
            swap_accepts=arrays.get("swap_accepts", np.zeros(0, np.int64)),
            n_swap_rounds=int(meta["n_swap_rounds"]),
        )
