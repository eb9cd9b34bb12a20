"""Contact-score files: CCMpred-style score matrices and plmc's EC tables.

* CCMpred ``.mat``: the ``(L, L)`` score matrix, one tab-separated row per line.
* EC file (plmc ``-c``, read by EVcouplings): one line per pair ``i A_i j A_j 0 cn``, space
  separated, by decreasing score, numbered as plmc does (:func:`ec_numbering`): by the focus
  sequence's residue numbers when it has a residue at every fitted column, else by the 1-based
  column of the *original* alignment with ``-`` residues. :func:`write_ec_tsv` writes the same
  pairs as a TSV with a header that also keeps the original alignment columns.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataFormatError, ShapeError, ValidationError
from ..storage import atomic_write_text

__all__ = [
    "EC_TSV_HEADER",
    "ec_numbering",
    "read_ec_table",
    "read_score_matrix",
    "write_ec_table",
    "write_ec_tsv",
    "write_score_matrix",
]


def _square(scores: Any) -> np.ndarray:
    S = np.asarray(scores, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ShapeError(f"scores must be (L, L), got shape {S.shape}")
    return S


# ----------------------------------------------------------------------------- score matrices
def write_score_matrix(path: str | os.PathLike[str], scores: Any) -> Path:
    """Write a CCMpred-style ``.mat``: ``L`` lines of ``L`` tab-separated scores."""
    S = _square(scores)
    lines = ["\t".join(f"{v:.10e}" for v in row) for row in S]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_score_matrix(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ``.mat`` score matrix (whitespace separated, square; ``#`` lines ignored)."""
    p = Path(path)
    rows: list[list[float]] = []
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            try:
                rows.append([float(v) for v in line.split()])
            except ValueError as exc:
                raise DataFormatError(f"not a number: {exc}", path=p, line=n) from exc
            if len(rows[-1]) != len(rows[0]):
                raise DataFormatError(
                    f"row has {len(rows[-1])} values, the first row {len(rows[0])}", path=p, line=n
                )
    if not rows or len(rows) != len(rows[0]):
        raise DataFormatError(
            f"a score matrix must be square, got {len(rows)} rows of "
            f"{len(rows[0]) if rows else 0} values",
            path=p,
        )
    return np.asarray(rows)


def ec_numbering(
    columns: Any, reference_numbers: Any = None, residues: str | None = None
) -> tuple[np.ndarray, str, str]:
    """How to number the ``L`` fitted sites in an EC file, as plmc does.

    With a focus sequence (a reference with a residue at every fitted column, as after
    ``--focus``), sites are numbered by its residue numbers and labelled by its residues; else by
    the 1-based column of the original alignment, labelled ``-``.

    Args:
        columns: ``(L,)`` 1-based columns of the original alignment (``msa.columns``).
        reference_numbers: ``(L,)`` reference residue numbers (``-1`` at gaps), or None.
        residues: the reference residues at the ``L`` columns, or None.

    Returns:
        ``(numbers (L,), labels (L letters), scheme)`` with scheme ``"focus"`` or ``"column"``.
    """
    cols = np.asarray(columns, dtype=np.int64)
    L = cols.shape[0]
    if reference_numbers is not None and residues is not None:
        nums = np.asarray(reference_numbers, dtype=np.int64)
        if nums.shape != (L,) or len(residues) != L:
            raise ShapeError(
                f"reference_numbers {nums.shape} and residues ({len(residues)}) must match "
                f"the {L} columns"
            )
        if L and nums.min() >= 1 and "-" not in residues:
            return nums, residues, "focus"
    return cols, "-" * L, "column"


def _ec_pairs(S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``i < j`` (0-based) and their scores, by decreasing score (stable)."""
    i, j = np.triu_indices(S.shape[0], k=1)
    s = S[i, j]
    order = np.argsort(-s, kind="stable")
    return i[order], j[order], s[order]


def _ec_labels(L: int, numbers: Any, residues: str | None) -> tuple[np.ndarray, str]:
    nums = np.arange(1, L + 1) if numbers is None else np.asarray(numbers, dtype=np.int64)
    if nums.shape != (L,):
        raise ShapeError(f"numbers must have shape ({L},), got {nums.shape}")
    if nums.size and nums.min() < 1:
        raise ValidationError(
            "site numbers are 1-based (residue numbers or alignment columns); add 1 to a 0-based "
            "column_map"
        )
    res = "-" * L if residues is None else residues
    if len(res) != L or any(c.isspace() for c in res):
        raise ShapeError(f"residues must be {L} non-blank letters, got {len(res)}: {res!r}")
    return nums, res


def write_ec_table(
    path: str | os.PathLike[str],
    scores: Any,
    *,
    numbers: Any = None,
    residues: str | None = None,
) -> Path:
    """Write an EC file in plmc's layout: ``i A_i j A_j 0 cn`` per pair, by decreasing ``cn``.

    The six space-separated fields of plmc's ``-c`` output, which EVcouplings and its users read:
    site numbers ``i < j`` (residue numbers of the focus sequence, or alignment columns), their
    residues (``-`` without a focus sequence), plmc's constant ``0`` and the score with 6
    decimals (plmc's ``%f``). :func:`ec_numbering` picks the numbering plmc would use.

    Args:
        scores: ``(L, L)`` symmetric scores.
        numbers: ``(L,)`` 1-based site numbers (default ``1..L``).
        residues: ``L`` letters labelling the sites (``-`` everywhere by default).
    """
    S = _square(scores)
    nums, res = _ec_labels(S.shape[0], numbers, residues)
    lines = [
        f"{nums[a]} {res[a]} {nums[b]} {res[b]} 0 {v:f}"
        for a, b, v in zip(*_ec_pairs(S), strict=True)
    ]
    return atomic_write_text(path, "\n".join(lines) + "\n")


#: Header of :func:`write_ec_tsv`.
EC_TSV_HEADER = ("i", "A_i", "j", "A_j", "column_i", "column_j", "score")


def write_ec_tsv(
    path: str | os.PathLike[str],
    scores: Any,
    *,
    columns: Any,
    numbers: Any = None,
    residues: str | None = None,
) -> Path:
    """Write the EC table as a TSV with a header, keeping the original alignment columns.

    Columns :data:`EC_TSV_HEADER`: ``i, A_i, j, A_j`` as in :func:`write_ec_table`, then the
    1-based original alignment columns of ``i`` and ``j`` and the full-precision score.
    """
    S = _square(scores)
    L = S.shape[0]
    nums, res = _ec_labels(L, numbers, residues)
    cols, _ = _ec_labels(L, columns, None)
    lines = ["\t".join(EC_TSV_HEADER)]
    lines += [
        f"{nums[a]}\t{res[a]}\t{nums[b]}\t{res[b]}\t{cols[a]}\t{cols[b]}\t{float(v)!r}"
        for a, b, v in zip(*_ec_pairs(S), strict=True)
    ]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_ec_table(path: str | os.PathLike[str]) -> list[tuple[int, str, int, str, float]]:
    """Read an EC file (plmc's 6 fields, or 5 without the ``0``) as ``(i, A_i, j, A_j, score)``."""
    p = Path(path)
    out: list[tuple[int, str, int, str, float]] = []
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            f = line.split()
            if not f:
                continue
            if len(f) not in (5, 6):
                raise DataFormatError(
                    f"expected 'i A_i j A_j score' (5 fields) or plmc's 6, got {len(f)}",
                    path=p,
                    line=n,
                )
            try:
                out.append((int(f[0]), f[1], int(f[2]), f[3], float(f[-1])))
            except ValueError as exc:
                raise DataFormatError(f"bad number: {exc}", path=p, line=n) from exc
    return out
