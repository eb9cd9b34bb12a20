"""Seed handling: randomness only through an explicit ``seed`` argument.

A ``seed`` may be ``None`` (fresh entropy), an ``int``, a :class:`numpy.random.SeedSequence` or a
:class:`numpy.random.Generator`. The library never touches global random state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["SeedLike", "as_generator", "as_seed_sequence", "spawn_seeds", "torch_generator"]

SeedLike: TypeAlias = "int | np.random.SeedSequence | np.random.Generator | None"


def as_seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """Turn any accepted seed into a :class:`~numpy.random.SeedSequence`."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63 - 1)))
    if seed is None or isinstance(seed, int | np.integer):
        if seed is not None and int(seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.random.SeedSequence(None if seed is None else int(seed))
    raise TypeError(
        f"seed must be None, an int, a numpy SeedSequence or Generator; got {type(seed).__name__}"
    )


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Return a NumPy generator; a Generator passed in is returned as is (shared stream)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))


def spawn_seeds(seed: SeedLike, n: int) -> list[np.random.SeedSequence]:
    """Derive ``n`` independent child seeds (for parallel workers or runs of a sweep)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return as_seed_sequence(seed).spawn(n)


def torch_generator(seed: SeedLike, device: str | torch.device = "cpu") -> torch.Generator:
    """Return a seeded :class:`torch.Generator` derived from ``seed`` (no global seeding)."""
    import torch

    value = int(as_seed_sequence(seed).generate_state(1, dtype=np.uint64)[0] % (2**63 - 1))
    gen = torch.Generator(device=device)
    gen.manual_seed(value)
    return gen
