"""Training data from disk: a folder written by ``attnpotts sample`` or an alignment file.

Both become a :class:`TrainingData`: integer train/validation/test sequences, optional sequence
weights, and the true model when it is known (synthetic data).

* A folder (``attnpotts sample`` output, read by :meth:`attnpotts.sampling.SampledDataset.load`):
  its ``train`` and ``test`` arrays and ``model.npz`` (the truth); unit weights by default.
* A file: an alignment read by :func:`attnpotts.alignment.read_alignment` (FASTA, A2M, A3M,
  Stockholm, PSICOV); the sequences are split into train and test at random (``test_fraction``)
  and weighted by the inverse number of neighbours above ``identity_threshold`` (computed within
  each split), as in plmDCA; no true model.

In both cases ``validation_fraction`` of the training sequences (a seeded random subset) is held
out for early stopping; the test set is never used for any training decision.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import DataFormatError, ValidationError
from ..potts import PottsModel
from ..random import SeedLike, as_generator

__all__ = ["TrainingData", "load_training_data"]


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Sequences to train on, with their splits.

    Attributes:
        train: ``(M, L)`` int64 training sequences.
        validation: ``(M_val, L)`` validation sequences (may have 0 rows).
        test: ``(M_test, L)`` test sequences (may have 0 rows).
        train_weights, validation_weights, test_weights: per-sequence weights or ``None`` (1).
        n_states: ``q``.
        true_model: the data-generating model (synthetic data) or ``None``.
        source: ``"sampled"`` or ``"alignment"``.
        path: where the data came from.
        info: extra facts for the summary (``n_eff``, alphabet, ...).
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    train_weights: np.ndarray | None
    validation_weights: np.ndarray | None
    test_weights: np.ndarray | None
    n_states: int
    true_model: PottsModel | None
    source: str
    path: str
    info: dict[str, object]

    @property
    def n_sites(self) -> int:
        """``L``."""
        return int(self.train.shape[1])


def _split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)`` with ``round(fraction * n)`` held out (sorted)."""
    perm = rng.permutation(n)
    k = round(fraction * n)
    return np.sort(perm[k:]), np.sort(perm[:k])


def _weights(states: np.ndarray, threshold: float | None) -> np.ndarray | None:
    if threshold is None or states.shape[0] == 0:
        return None
    from ..alignment import sequence_weights

    return np.asarray(sequence_weights(states, threshold=threshold).weights, dtype=np.float64)


def load_training_data(
    path: str | os.PathLike[str],
    *,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    weighting: Literal["auto", "none", "identity"] = "auto",
    identity_threshold: float = 0.8,
    alphabet: Literal["protein", "rna"] = "protein",
    seed: SeedLike = 0,
) -> TrainingData:
    """Read training data from an ``attnpotts sample`` folder or an alignment file.

    Args:
        path: the folder or file.
        validation_fraction: share of the training sequences held out for validation, in ``[0, 1)``.
        test_fraction: share of an alignment's sequences held out for testing (alignments only;
            a sampled folder has its own test set).
        weighting: ``"none"`` (unit weights), ``"identity"`` (inverse number of neighbours at
            ``identity_threshold``) or ``"auto"`` (``"identity"`` for alignments, ``"none"`` for
            sampled data, whose sequences are independent draws).
        identity_threshold: identity at which two sequences are neighbours.
        alphabet: alphabet of an alignment file.
        seed: seed of the random splits.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: the folder or file is not readable as training data.
        ValidationError: bad fractions, or too few sequences to split.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(
            f"training data {p} does not exist; pass a sample folder or alignment"
        )
    if not 0.0 <= validation_fraction < 1.0:
        raise ValidationError(f"validation_fraction must lie in [0, 1), got {validation_fraction}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValidationError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    if weighting not in ("auto", "none", "identity"):
        raise ValidationError(f"weighting must be 'auto', 'none' or 'identity', got {weighting!r}")
    if not 0.0 < identity_threshold <= 1.0:
        raise ValidationError(f"identity_threshold must lie in (0, 1], got {identity_threshold}")
    rng = as_generator(seed)
    info: dict[str, object] = {}
    true_model: PottsModel | None
    if p.is_dir():
        from ..sampling import SampledDataset

        ds = SampledDataset.load(p)
        states, test = np.asarray(ds.train, np.int64), np.asarray(ds.test, np.int64)
        true_model, q, source = ds.model, ds.model.n_states, "sampled"
        threshold = identity_threshold if weighting == "identity" else None
    else:
        from ..alignment import read_alignment
        from ..alphabet import PROTEIN, RNA

        msa = read_alignment(p, alphabet=PROTEIN if alphabet == "protein" else RNA)
        all_states = np.asarray(msa.states, np.int64)
        keep, held = _split(all_states.shape[0], test_fraction, rng)
        states, test = all_states[keep], all_states[held]
        true_model, q, source = None, msa.q, "alignment"
        threshold = None if weighting == "none" else identity_threshold
        info["alphabet"] = msa.alphabet.symbols
        info["n_sequences_in_file"] = int(all_states.shape[0])
    if states.shape[0] == 0:
        raise DataFormatError("no training sequences", path=p)
    keep, held = _split(states.shape[0], validation_fraction, rng)
    if keep.size == 0:
        raise ValidationError(
            f"validation_fraction={validation_fraction} leaves no training sequence out of "
            f"{states.shape[0]}; lower it"
        )
    train, validation = states[keep], states[held]
    w_train, w_val, w_test = (
        _weights(train, threshold),
        _weights(validation, threshold),
        _weights(test, threshold),
    )
    if w_train is not None:
        info["n_eff_train"] = float(w_train.sum())
        info["identity_threshold"] = identity_threshold
    return TrainingData(
        train=train,
        validation=validation,
        test=test,
        train_weights=w_train,
        validation_weights=w_val,
        test_weights=w_test,
        n_states=int(q),
        true_model=true_model,
        source=source,
        path=str(p),
        info=info,
    )
