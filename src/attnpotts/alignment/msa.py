"""The multiple sequence alignment object: encoded states plus the map back to the user's columns.

Every operation that drops columns (focus mode, gap filters) or sequences keeps
``column_map`` (indices into the *original* match columns of the file, 0-based in memory, written
1-based in every output file) and ``row_map`` (indices of the records in the file), so results can
always be reported in the numbering of the alignment the user supplied.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..alphabet import Alphabet
from ..errors import ShapeError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from .weights import SequenceWeights

__all__ = ["MIN_NEFF_PER_SITE", "MultipleSequenceAlignment", "ReferenceSequence", "data_warnings"]

#: Below ``N_eff = MIN_NEFF_PER_SITE * L`` effective sequences, the data are too few for ``L``
#: columns: with fewer effective sequences than columns, the ``L^2 q^2`` couplings are set by the
#: regularization more than by the data (the usual rule of thumb of DCA, e.g. EVcouplings'
#: N_eff / L >= 1 quality criterion).
MIN_NEFF_PER_SITE = 1.0


@dataclass(frozen=True, eq=False)
class ReferenceSequence:
    """The reference (query / focus) sequence of an alignment.

    Attributes:
        id: identifier of the reference record (first word of its header).
        row: index of the reference record in the file (0-based).
        residues: ``(L,)`` one-letter residues of the reference at the kept columns (the alphabet's
            gap symbol where the reference has a gap).
        residue_numbers: ``(L,)`` residue number of the reference at each kept column, counted from
            ``start`` over every residue of the record (insertions included); ``-1`` at gaps.
        start: number of the first residue of the record: the ``START`` of an ``ID/START-END``
            identifier, else 1.
    """

    id: str
    row: int
    residues: str
    residue_numbers: np.ndarray
    start: int = 1

    def select(self, columns: np.ndarray) -> ReferenceSequence:
        """The reference restricted to ``columns`` (indices into the current columns)."""
        return replace(
            self,
            residues="".join(self.residues[int(c)] for c in columns),
            residue_numbers=self.residue_numbers[columns].copy(),
        )


@dataclass(frozen=True, eq=False)
class MultipleSequenceAlignment:
    """An aligned, encoded set of sequences.

    Attributes:
        ids: ``N`` identifiers (first word of each header).
        states: ``(N, L)`` integer states (``int8`` for alphabets of up to 127 symbols).
        alphabet: the alphabet that encodes the states.
        column_map: ``(L,)`` 0-based indices of the kept columns among the match columns of the
            original alignment (insertions, i.e. lower case and ``.``, are never counted).
        n_original_columns: number of match columns of the original alignment.
        row_map: ``(N,)`` 0-based indices of the kept records in the original file.
        reference: the reference sequence (by default the first record), or ``None``.
        descriptions: ``N`` header texts after the identifier (may be empty strings).
        source: the file read, when there is one.
    """

    ids: tuple[str, ...]
    states: np.ndarray
    alphabet: Alphabet
    column_map: np.ndarray
    n_original_columns: int
    row_map: np.ndarray
    reference: ReferenceSequence | None = None
    descriptions: tuple[str, ...] = field(default=())
    source: str | None = None

    def __post_init__(self) -> None:
        states = np.asarray(self.states)
        if states.ndim != 2:
            raise ShapeError(f"states must be (N, L), got shape {states.shape}")
        n, L = states.shape
        if len(self.ids) != n:
            raise ShapeError(f"{len(self.ids)} ids for {n} sequences; pass one id per sequence")
        if self.descriptions and len(self.descriptions) != n:
            raise ShapeError(f"{len(self.descriptions)} descriptions for {n} sequences")
        if np.asarray(self.column_map).shape != (L,):
            raise ShapeError(f"column_map must have shape ({L},), got {np.shape(self.column_map)}")
        if np.asarray(self.row_map).shape != (n,):
            raise ShapeError(f"row_map must have shape ({n},), got {np.shape(self.row_map)}")
        if states.size and (states.min() < 0 or states.max() >= self.alphabet.q):
            raise ValidationError(f"states must lie in 0..{self.alphabet.q - 1}")
        if self.reference is not None and len(self.reference.residues) != L:
            raise ShapeError(
                f"reference has {len(self.reference.residues)} residues for {L} columns"
            )

    # ------------------------------------------------------------------ sizes
    @property
    def n_sequences(self) -> int:
        """Number of sequences ``N``."""
        return int(self.states.shape[0])

    @property
    def n_sites(self) -> int:
        """Number of columns ``L``."""
        return int(self.states.shape[1])

    @property
    def q(self) -> int:
        """Number of states of the alphabet."""
        return self.alphabet.q

    @property
    def columns(self) -> np.ndarray:
        """``(L,)`` kept columns numbered from 1 in the original alignment (for output files)."""
        return np.asarray(self.column_map, dtype=np.int64) + 1

    def sequences(self) -> list[str]:
        """The kept columns of every sequence as upper-case strings."""
        return self.alphabet.decode(self.states)

    def __repr__(self) -> str:
        ref = f", reference={self.reference.id!r}" if self.reference is not None else ""
        return (
            f"MultipleSequenceAlignment(N={self.n_sequences}, L={self.n_sites}, q={self.q}, "
            f"columns {self.n_sites}/{self.n_original_columns}{ref})"
        )

    # -------------------------------------------------------------- selection
    def select_columns(self, columns: np.ndarray) -> MultipleSequenceAlignment:
        """Keep ``columns`` (boolean mask ``(L,)`` or increasing integer indices); maps follow."""
        idx = _as_indices(columns, self.n_sites, "columns")
        ref = None if self.reference is None else self.reference.select(idx)
        return replace(
            self,
            states=np.ascontiguousarray(self.states[:, idx]),
            column_map=np.asarray(self.column_map)[idx].copy(),
            reference=ref,
        )

    def select_sequences(self, rows: np.ndarray) -> MultipleSequenceAlignment:
        """Keep the sequences ``rows`` (boolean mask ``(N,)`` or increasing integer indices)."""
        idx = _as_indices(rows, self.n_sequences, "rows")
        return replace(
            self,
            ids=tuple(self.ids[int(i)] for i in idx),
            descriptions=tuple(self.descriptions[int(i)] for i in idx) if self.descriptions else (),
            states=np.ascontiguousarray(self.states[idx]),
            row_map=np.asarray(self.row_map)[idx].copy(),
        )

    def focus(self) -> MultipleSequenceAlignment:
        """Focus mode: keep the columns where the reference sequence has a residue (not a gap).

        Insertions (lower case) were already dropped on reading, so these are the upper-case
        positions of the reference, as in plmc's ``--focus``.

        Raises:
            ValidationError: the alignment has no reference or its alphabet no gap.
        """
        if self.reference is None:
            raise ValidationError(
                "focus mode needs a reference sequence; read the alignment with reference=ID"
            )
        gap = self.alphabet.gap
        if gap is None:
            raise ValidationError("focus mode needs an alphabet with a gap symbol")
        keep = np.array([c != gap for c in self.reference.residues], dtype=bool)
        if not keep.any():
            raise ValidationError(f"reference {self.reference.id!r} has no residue in any column")
        return self.select_columns(keep)

    def gap_fractions(self, axis: int) -> np.ndarray:
        """Fraction of gaps per column (``axis=0``, ``(L,)``) or per sequence (``axis=1``, ``(N,)``)."""
        gi = self.alphabet.gap_index
        if gi is None:
            return np.zeros(self.states.shape[1 - axis])
        return np.asarray((self.states == gi).mean(axis=axis), dtype=np.float64)

    def filter_columns(self, max_gap_fraction: float) -> MultipleSequenceAlignment:
        """Drop columns with a gap fraction above ``max_gap_fraction`` (in ``[0, 1]``)."""
        _check_fraction(max_gap_fraction, "max_gap_fraction")
        keep = self.gap_fractions(axis=0) <= max_gap_fraction
        if not keep.any():
            raise ValidationError(
                f"no column has at most {max_gap_fraction:.0%} gaps; raise max_gap_fraction"
            )
        return self.select_columns(keep)

    def filter_sequences(self, max_gap_fraction: float) -> MultipleSequenceAlignment:
        """Drop sequences with a gap fraction above ``max_gap_fraction`` (in ``[0, 1]``)."""
        _check_fraction(max_gap_fraction, "max_gap_fraction")
        keep = self.gap_fractions(axis=1) <= max_gap_fraction
        if not keep.any():
            raise ValidationError(
                f"no sequence has at most {max_gap_fraction:.0%} gaps; raise max_gap_fraction"
            )
        return self.select_sequences(keep)

    def weights(self, threshold: float = 0.8) -> SequenceWeights:
        """Sequence weights at an identity ``threshold`` (see :func:`sequence_weights`)."""
        from .weights import sequence_weights

        return sequence_weights(self.states, threshold=threshold)


def data_warnings(
    states: np.ndarray,
    *,
    gap_index: int | None = None,
    weights: np.ndarray | None = None,
    min_neff_per_site: float = MIN_NEFF_PER_SITE,
    n_eff: float | None = None,
) -> list[str]:
    """Warnings about degenerate training data; an empty list when nothing is wrong.

    Checks: a single sequence; ``N_eff`` (``n_eff``, else the sum of ``weights``, else the number
    of sequences) below ``min_neff_per_site * L``; constant columns (one state in every sequence:
    nothing to learn); sequences without any residue (all gaps, e.g. all ``X`` read as gaps).

    Args:
        states: ``(N, L)`` encoded sequences, every one (the counts are of these rows: pass the
            alignment's, not its distinct sequences).
        gap_index: the gap state (``None``: the data have no gap state).
        weights: ``(N,)`` sequence weights.
        n_eff: the effective number of sequences, where it is known already (e.g. from
            :func:`attnpotts.dca.prepare_data`); overrides ``weights``.
    """
    x = np.asarray(states)
    if x.ndim != 2:
        raise ShapeError(f"states must be (N, L), got shape {x.shape}")
    n, L = x.shape
    out: list[str] = []
    if n == 0 or L == 0:
        return [f"no data: {n} sequences of {L} columns"]
    if n == 1:
        out.append("only one sequence: there is no variation to learn couplings from")
    if n_eff is None:
        n_eff = float(n if weights is None else np.asarray(weights, dtype=np.float64).sum())
    if n_eff < min_neff_per_site * L:
        out.append(
            f"few effective sequences: N_eff = {n_eff:.1f} is below {min_neff_per_site:g} x L = "
            f"{min_neff_per_site * L:g} (L = {L} columns); couplings will reflect the "
            "regularization more than the data"
        )
    constant = np.flatnonzero((x == x[0]).all(axis=0))
    if constant.size:
        shown = ", ".join(str(int(c) + 1) for c in constant[:10])
        out.append(
            f"{constant.size} constant column(s) (one state in every sequence; 1-based: {shown}"
            f"{', ...' if constant.size > 10 else ''})"
        )
    if gap_index is not None:
        empty = int((x == gap_index).all(axis=1).sum())
        if empty:
            out.append(f"{empty} sequence(s) without any residue (all gaps or unknown letters)")
    return out


def _as_indices(sel: np.ndarray, n: int, name: str) -> np.ndarray:
    sel = np.asarray(sel)
    if sel.dtype == bool:
        if sel.shape != (n,):
            raise ShapeError(f"boolean {name} mask must have shape ({n},), got {sel.shape}")
        return np.flatnonzero(sel)
    if not np.issubdtype(sel.dtype, np.integer) or sel.ndim != 1:
        raise ValidationError(f"{name} must be a boolean mask or 1-d integer indices")
    if sel.size and (sel.min() < 0 or sel.max() >= n):
        raise ValidationError(f"{name} indices must lie in 0..{n - 1}")
    if np.any(np.diff(sel) <= 0):
        raise ValidationError(f"{name} indices must be strictly increasing (keeps the order)")
    return sel.astype(np.intp)


def _check_fraction(x: float, name: str) -> None:
    if not 0.0 <= float(x) <= 1.0:
        raise ValidationError(f"{name} must lie in [0, 1], got {x}")
