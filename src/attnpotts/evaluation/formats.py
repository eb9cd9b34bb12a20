"""Exchange formats: contact scores and Potts parameters for (and from) the peer DCA tools.

Written here:

* CCMpred ``.mat``: the ``(L, L)`` score matrix, one tab-separated row per line.
* EC file (plmc ``-c``, read by EVcouplings): one line per pair ``i A_i j A_j 0 cn``, space
  separated, by decreasing score, numbered as plmc does (:func:`ec_numbering`): by the focus
  sequence's residue numbers when it has a residue at every fitted column, else by the 1-based
  column of the *original* alignment with ``-`` residues. :func:`write_ec_tsv` writes the same
  pairs as a TSV with a header that also keeps the original alignment columns.
* npz couplings (layout below).

Imported here, each into ``fields (L, q)`` and ``couplings (L, L, q, q)`` indexed
``[i, j, a, b]`` in the order of an attnpotts alphabet (default
``PROTEIN = "-ACDEFGHIKLMNPQRSTVWY"``), raw values without any gauge change. All three tools use
log-potentials, ``P(s) ∝ exp(sum_i h_i(s_i) + sum_{i<j} J_ij(s_i, s_j))``, which is the attnpotts
convention at ``beta = 1``:

* plmc ``-o`` binary parameters (float32 little-endian; float64 builds are detected by size). The
  alphabet is stored in the file (protein default ``-ACDEFGHIKLMNPQRSTVWY``, gap first, the same
  as attnpotts; with ``--gapignore`` the gap is absent and gets zero parameters here).
* CCMpred raw parameters: the msgpack ``.braw`` (``format: "ccm-1"``, optionally gzipped) of
  CCMpred and CCMpredPy, or the older text ``.raw``. Alphabet order ``ARNDCQEGHILKMFPSTWYV-``
  (gap last); CCMpred has no gap field (it is 0 here).
* adabmDCA ``params.dat``: lines ``J i j a b value`` (``i < j``, 0-based) and ``h i a value``,
  states given as letters (adabmDCA 2) or integers in the tool's alphabet (adabmDCA 1 / old
  format; protein default ``-ACDEFGHIKLMNPQRSTVWY``). Absent couplings (pruned) are 0.

npz couplings layout (:func:`save_couplings_npz`, format version 1):

==================== ============ ==========================================================
key                  shape/dtype  meaning
==================== ============ ==========================================================
``fields``           (L, q) f8    ``h[i, a]``
``couplings``        (L,L,q,q) f8 ``J[i, j, a, b]``, ``J[j, i] = J[i, j].T``, ``J[i, i] = 0``
``alphabet``         str          the symbols, state ``a`` is ``alphabet[a]``
``gap``              str          the gap symbol ("" if none)
``columns``          (L,) i8      1-based columns of the original alignment
``reference``        str          reference residues at the columns ("" if none)
``reference_numbers`` (L,) i8     reference residue numbers (-1: gap; all -1 if none)
``metadata``         str          JSON: tool, conventions (gauge, regularisation, weights)
``format_version``   () i8        1
==================== ============ ==========================================================
"""

from __future__ import annotations

import gzip
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..alphabet import PROTEIN, Alphabet
from ..errors import DataFormatError, ShapeError, ValidationError
from ..storage import atomic_savez, atomic_write_bytes, atomic_write_text, to_jsonable

__all__ = [
    "ADABMDCA_PROTEIN_ALPHABET",
    "CCMPRED_ALPHABET",
    "EC_TSV_HEADER",
    "NPZ_FORMAT_VERSION",
    "CouplingsFile",
    "ImportedParameters",
    "ec_numbering",
    "load_couplings_npz",
    "read_adabmdca_params",
    "read_ccmpred_raw",
    "read_ec_table",
    "read_plmc_params",
    "read_score_matrix",
    "save_couplings_npz",
    "write_adabmdca_params",
    "write_ccmpred_braw",
    "write_ec_table",
    "write_ec_tsv",
    "write_score_matrix",
]

#: CCMpred's state order (gap last).
CCMPRED_ALPHABET = "ARNDCQEGHILKMFPSTWYV-"
#: adabmDCA's protein state order (gap first), used for integer states.
ADABMDCA_PROTEIN_ALPHABET = "-ACDEFGHIKLMNPQRSTVWY"
#: Version of the npz couplings layout.
NPZ_FORMAT_VERSION = 1


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


# ------------------------------------------------------------------------------- npz couplings
@dataclass(frozen=True, eq=False)
class CouplingsFile:
    """Contents of an npz couplings file (see the module docstring for the layout)."""

    fields: np.ndarray
    couplings: np.ndarray
    alphabet: Alphabet
    columns: np.ndarray
    reference: str
    reference_numbers: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


def save_couplings_npz(
    path: str | os.PathLike[str],
    couplings: Any,
    fields: Any = None,
    *,
    alphabet: Alphabet = PROTEIN,
    columns: Any = None,
    reference: str = "",
    reference_numbers: Any = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save couplings, fields, alphabet and the column map as npz (atomic; layout in module doc).

    Args:
        columns: 1-based original alignment columns ``(L,)`` (default ``1..L``; e.g.
            ``msa.columns``).
        reference: reference residues at the columns (e.g. ``msa.reference.residues``).
        metadata: conventions to record (tool, gauge, regularisation, weights, ...).
    """
    J = np.asarray(couplings, dtype=np.float64)
    if J.ndim != 4 or J.shape[0] != J.shape[1] or J.shape[2] != J.shape[3]:
        raise ShapeError(f"couplings must have shape (L, L, q, q), got {J.shape}")
    L, q = J.shape[0], J.shape[2]
    if q != alphabet.q:
        raise ShapeError(f"couplings have q = {q} states, the alphabet {alphabet.q}")
    h = np.zeros((L, q)) if fields is None else np.asarray(fields, dtype=np.float64)
    if h.shape != (L, q):
        raise ShapeError(f"fields must have shape {(L, q)}, got {h.shape}")
    cols = np.arange(1, L + 1) if columns is None else np.asarray(columns, dtype=np.int64)
    if cols.shape != (L,) or (cols.size and cols.min() < 1):
        raise ValidationError(f"columns must be ({L},) 1-based column numbers")
    if reference and len(reference) != L:
        raise ShapeError(f"reference has {len(reference)} residues for {L} columns")
    nums = (
        np.full(L, -1, dtype=np.int64)
        if reference_numbers is None
        else np.asarray(reference_numbers, dtype=np.int64)
    )
    if nums.shape != (L,):
        raise ShapeError(f"reference_numbers must have shape ({L},), got {nums.shape}")
    meta = json.dumps(to_jsonable(dict(metadata or {})), allow_nan=False)
    return atomic_savez(
        path,
        fields=h,
        couplings=J,
        alphabet=np.array(alphabet.symbols),
        gap=np.array(alphabet.gap or ""),
        columns=cols,
        reference=np.array(reference),
        reference_numbers=nums,
        metadata=np.array(meta),
        format_version=np.array(NPZ_FORMAT_VERSION, dtype=np.int64),
    )


def load_couplings_npz(path: str | os.PathLike[str]) -> CouplingsFile:
    """Load a file written by :func:`save_couplings_npz`.

    The alphabet is rebuilt with ``unknown="gap"`` when it has a gap, as :data:`PROTEIN`.
    """
    p = Path(path)
    need = ("fields", "couplings", "alphabet", "gap", "columns", "format_version")
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in need if k not in z.files]
            if missing:
                raise DataFormatError(f"not an attnpotts couplings npz: missing {missing}", path=p)
            version = int(z["format_version"])
            if version > NPZ_FORMAT_VERSION:
                raise DataFormatError(
                    f"format version {version} is newer than this attnpotts ({NPZ_FORMAT_VERSION});"
                    " upgrade attnpotts",
                    path=p,
                )
            symbols, gap = str(z["alphabet"]), str(z["gap"])
            if symbols == PROTEIN.symbols and gap == PROTEIN.gap:
                alphabet = PROTEIN
            elif gap:
                alphabet = Alphabet(symbols, gap=gap, aliases={".": gap}, unknown="gap")
            else:
                alphabet = Alphabet(symbols)
            L = z["couplings"].shape[0]
            return CouplingsFile(
                fields=z["fields"],
                couplings=z["couplings"],
                alphabet=alphabet,
                columns=z["columns"],
                reference=str(z["reference"]) if "reference" in z.files else "",
                reference_numbers=(
                    z["reference_numbers"]
                    if "reference_numbers" in z.files
                    else np.full(L, -1, dtype=np.int64)
                ),
                metadata=json.loads(str(z["metadata"])) if "metadata" in z.files else {},
            )
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(f"cannot read npz couplings: {exc}", path=p) from exc


# ------------------------------------------------------------------------- imported parameters
@dataclass(frozen=True, eq=False)
class ImportedParameters:
    """Potts parameters imported from another tool, in attnpotts' conventions.

    Attributes:
        fields: ``(L, q)`` in the order of ``alphabet``.
        couplings: ``(L, L, q, q)``, symmetric ``J[j, i] = J[i, j].T``, zero diagonal blocks.
        alphabet: the attnpotts alphabet of the states.
        tool: ``"plmc"``, ``"ccmpred"`` or ``"adabmdca"``.
        tool_alphabet: the tool's state order.
        metadata: what else the file records (plmc: n_eff, lambdas, offsets, target...).
    """

    fields: np.ndarray
    couplings: np.ndarray
    alphabet: Alphabet
    tool: str
    tool_alphabet: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_potts_model(self) -> Any:
        """The parameters as a :class:`attnpotts.potts.PottsModel` (``beta = 1``)."""
        from ..potts import PottsModel

        return PottsModel(self.fields, self.couplings)


def _state_map(tool_alphabet: str, alphabet: Alphabet, source: Path) -> np.ndarray:
    """Index in ``alphabet`` of each state of the tool (letters compared upper case)."""
    out = np.empty(len(tool_alphabet), dtype=np.int64)
    for k, c in enumerate(tool_alphabet):
        sym = c.upper()
        if sym == "." and alphabet.gap is not None:
            sym = alphabet.gap
        if sym not in alphabet.symbols:
            raise DataFormatError(
                f"the tool's state {c!r} (alphabet {tool_alphabet!r}) is not in the attnpotts "
                f"alphabet {alphabet.symbols!r}; pass a matching alphabet",
                path=source,
            )
        out[k] = alphabet.symbols.index(sym)
    if len(set(out.tolist())) != out.size:
        raise DataFormatError(f"tool alphabet {tool_alphabet!r} repeats a state", path=source)
    return out


def _reorder(
    h_tool: np.ndarray, J_tool: np.ndarray, idx: np.ndarray, q: int
) -> tuple[np.ndarray, np.ndarray]:
    L = h_tool.shape[0]
    h = np.zeros((L, q))
    J = np.zeros((L, L, q, q))
    h[:, idx] = h_tool
    J[np.ix_(np.arange(L), np.arange(L), idx, idx)] = J_tool
    return h, J


def _upper_to_full(blocks: np.ndarray, L: int, q: int) -> np.ndarray:
    """``(L (L - 1) / 2, q, q)`` blocks for ``i < j`` in row order -> symmetric ``(L, L, q, q)``."""
    J = np.zeros((L, L, q, q))
    i, j = np.triu_indices(L, k=1)
    J[i, j] = blocks
    J[j, i] = blocks.transpose(0, 2, 1)
    return J


def read_plmc_params(
    path: str | os.PathLike[str], *, alphabet: Alphabet = PROTEIN
) -> ImportedParameters:
    """Import the binary parameter file written by ``plmc -o`` (plmc's OutputParametersFull).

    Layout (native little-endian): ``int32 L, q, n_seqs, n_skipped, n_iter``; ``float32 theta,
    lambda_h, lambda_J, lambda_group, n_eff``; ``q`` alphabet bytes; ``n_seqs + n_skipped``
    float32 per-sequence neighbour counts; ``L`` target-sequence bytes; ``L`` int32 offsets;
    ``f_i (L, q)``, ``h_i (L, q)``, ``f_ij`` and ``e_ij`` as ``L (L - 1) / 2`` blocks ``(q, q)``
    for ``i < j`` in row order (``[a_i, a_j]``). Floats are float32, or float64 for builds with
    double output (told apart by the file size). This is the current layout (EVcouplings calls
    it ``plmc_v2``); files of the older ``plmc_v1`` layout fail the size check.

    Raises:
        DataFormatError: truncated or inconsistent file.
    """
    p = Path(path)
    data = p.read_bytes()
    head = struct.calcsize("<5i")
    if len(data) < head:
        raise DataFormatError(f"file of {len(data)} bytes is too short for a plmc header", path=p)
    L, q, n_seqs, n_skip, n_iter = struct.unpack_from("<5i", data, 0)
    if L < 1 or q < 2 or n_seqs < 0 or n_skip < 0:
        raise DataFormatError(
            f"implausible plmc header L={L}, q={q}, n_seqs={n_seqs}, n_skipped={n_skip}; "
            "not a plmc parameter file",
            path=p,
        )
    n_pairs = L * (L - 1) // 2
    n_floats = 5 + (n_seqs + n_skip) + 2 * L * q + 2 * n_pairs * q * q
    fixed = head + q + L + 4 * L
    size = None
    for itemsize in (4, 8):
        if len(data) == fixed + itemsize * n_floats:
            size = itemsize
    if size is None:
        raise DataFormatError(
            f"file has {len(data)} bytes; a plmc file with L={L}, q={q}, {n_seqs + n_skip} "
            f"sequences has {fixed + 4 * n_floats} (float32) or {fixed + 8 * n_floats} (float64): "
            "truncated or not a plmc parameter file",
            path=p,
        )
    ft = np.dtype("<f4") if size == 4 else np.dtype("<f8")
    off = head

    def take(n: int, dtype: np.dtype) -> np.ndarray:
        nonlocal off
        arr = np.frombuffer(data, dtype=dtype, count=n, offset=off)
        off += n * dtype.itemsize
        return arr

    theta, lam_h, lam_j, lam_g, n_eff = take(5, ft).astype(np.float64)
    tool_alphabet = take(q, np.dtype("u1")).tobytes().decode("ascii", errors="replace")
    neighbours = take(n_seqs + n_skip, ft).astype(np.float64)
    target = take(L, np.dtype("u1")).tobytes().decode("ascii", errors="replace")
    offsets = take(L, np.dtype("<i4")).astype(np.int64)
    take(L * q, ft)  # f_i (marginals)
    h_tool = take(L * q, ft).astype(np.float64).reshape(L, q)
    take(n_pairs * q * q, ft)  # f_ij (marginals)
    e = take(n_pairs * q * q, ft).astype(np.float64).reshape(n_pairs, q, q)
    idx = _state_map(tool_alphabet, alphabet, p)
    h, J = _reorder(h_tool, _upper_to_full(e, L, q), idx, alphabet.q)
    meta = {
        "n_sequences": n_seqs,
        "n_skipped": n_skip,
        "n_iterations": n_iter,
        "theta": float(theta),
        "lambda_h": float(lam_h),
        "lambda_J": float(lam_j),
        "lambda_group": float(lam_g),
        "n_eff": float(n_eff),
        "target": target,
        "offsets": offsets.tolist(),
        "neighbours": neighbours,
        "precision": "float32" if size == 4 else "float64",
    }
    return ImportedParameters(h, J, alphabet, "plmc", tool_alphabet, meta)


def _open_maybe_gzip(p: Path) -> bytes:
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataFormatError(f"corrupt gzip file: {exc}", path=p) from exc
    return raw


def read_ccmpred_raw(
    path: str | os.PathLike[str], *, alphabet: Alphabet = PROTEIN
) -> ImportedParameters:
    """Import CCMpred parameters: msgpack ``.braw`` (``.braw.gz``) or the old text ``.raw``.

    ``.braw``: a map with ``format == "ccm-1"``, ``ncol``, ``x_single`` (``L * 20`` fields, no gap
    field) and ``x_pair`` (``"i/j"`` -> ``{"i", "j", "x": 21 * 21 values [a_i, a_j]}``, 0-based
    ``i < j``). Text ``.raw``: ``L`` lines of 20 fields, then for each pair a line ``# i j`` and 21
    lines of 21 couplings. State order ``ARNDCQEGHILKMFPSTWYV-``.
    """
    p = Path(path)
    data = _open_maybe_gzip(p)
    n_alpha = len(CCMPRED_ALPHABET)
    first = data[0] if data else 0
    if 0x80 <= first <= 0x8F or first in (0xDE, 0xDF):  # msgpack map (fixmap, map16, map32)
        h_tool, J_tool, meta = _ccmpred_msgpack(data, p, n_alpha)
    else:
        h_tool, J_tool, meta = _ccmpred_text(data, p, n_alpha)
    idx = _state_map(CCMPRED_ALPHABET, alphabet, p)
    h, J = _reorder(h_tool, J_tool, idx, alphabet.q)
    return ImportedParameters(h, J, alphabet, "ccmpred", CCMPRED_ALPHABET, meta)


def _ccmpred_msgpack(
    data: bytes, p: Path, n_alpha: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    try:
        import msgpack
    except ImportError as exc:  # pragma: no cover - msgpack is a dependency
        raise ImportError("reading CCMpred .braw needs msgpack: pip install msgpack") from exc
    try:
        x = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated exception types
        raise DataFormatError(f"not a valid msgpack file: {exc}", path=p) from exc
    if not isinstance(x, dict) or x.get("format") != "ccm-1":
        fmt = x.get("format") if isinstance(x, dict) else type(x).__name__
        raise DataFormatError(f"expected a CCMpred 'ccm-1' msgpack map, got format {fmt!r}", path=p)
    try:
        L = int(x["ncol"])
        single = np.asarray(x["x_single"], dtype=np.float64)
        pairs = x["x_pair"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataFormatError(f"CCMpred .braw lacks or mangles a field: {exc}", path=p) from exc
    if L < 1 or single.size != L * (n_alpha - 1):
        raise DataFormatError(
            f"x_single has {single.size} values, expected ncol * 20 = {L * (n_alpha - 1)}", path=p
        )
    h = np.zeros((L, n_alpha))
    h[:, : n_alpha - 1] = single.reshape(L, n_alpha - 1)
    J = np.zeros((L, L, n_alpha, n_alpha))
    seen = 0
    for key, entry in pairs.items():
        try:
            i, j = int(entry["i"]), int(entry["j"])
            block = np.asarray(entry["x"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"x_pair entry {key!r} is malformed: {exc}", path=p) from exc
        if not (0 <= i < j < L) or block.size != n_alpha * n_alpha:
            raise DataFormatError(
                f"x_pair entry {key!r}: need 0 <= i < j < {L} and {n_alpha * n_alpha} values",
                path=p,
            )
        block = block.reshape(n_alpha, n_alpha)
        J[i, j] = block
        J[j, i] = block.T
        seen += 1
    if seen != L * (L - 1) // 2:
        raise DataFormatError(
            f"x_pair has {seen} pairs, expected ncol (ncol - 1) / 2 = {L * (L - 1) // 2}", path=p
        )
    meta = {"meta": x.get("meta")} if "meta" in x else {}
    return h, J, meta


def _ccmpred_text(
    data: bytes, p: Path, n_alpha: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"neither msgpack nor text: {exc}", path=p) from exc
    lines = text.splitlines()
    single: list[list[float]] = []
    n = 0
    meta: dict[str, Any] = {}
    while n < len(lines) and not lines[n].startswith("#"):
        if lines[n].strip():
            try:
                row = [float(v) for v in lines[n].split()]
            except ValueError as exc:
                raise DataFormatError(f"bad field value: {exc}", path=p, line=n + 1) from exc
            if len(row) != n_alpha - 1:
                raise DataFormatError(
                    f"field line has {len(row)} values, expected {n_alpha - 1}", path=p, line=n + 1
                )
            single.append(row)
        n += 1
    L = len(single)
    if L == 0:
        raise DataFormatError("no field lines: not a CCMpred raw file", path=p, line=1)
    h = np.zeros((L, n_alpha))
    h[:, : n_alpha - 1] = single
    J = np.zeros((L, L, n_alpha, n_alpha))
    seen = 0
    while n < len(lines):
        line = lines[n]
        if line.startswith("#>META>"):
            meta["meta"] = json.loads(line[len("#>META>") :])
            n += 1
            continue
        if not line.strip():
            n += 1
            continue
        parts = line[1:].split() if line.startswith("#") else []
        if len(parts) != 2:
            raise DataFormatError("expected a pair line '# i j'", path=p, line=n + 1)
        try:
            i, j = int(parts[0]), int(parts[1])
        except ValueError as exc:
            raise DataFormatError(f"bad pair line: {exc}", path=p, line=n + 1) from exc
        if not 0 <= i < j < L:
            raise DataFormatError(f"pair ({i}, {j}) out of range for L = {L}", path=p, line=n + 1)
        block = []
        for k in range(n_alpha):
            ln = n + 1 + k
            if ln >= len(lines):
                raise DataFormatError("pair block is truncated", path=p, line=ln)
            try:
                row = [float(v) for v in lines[ln].split()]
            except ValueError as exc:
                raise DataFormatError(f"bad coupling value: {exc}", path=p, line=ln + 1) from exc
            if len(row) != n_alpha:
                raise DataFormatError(
                    f"coupling line has {len(row)} values, expected {n_alpha}", path=p, line=ln + 1
                )
            block.append(row)
        J[i, j] = block
        J[j, i] = np.asarray(block).T
        seen += 1
        n += 1 + n_alpha
    if seen != L * (L - 1) // 2:
        raise DataFormatError(f"{seen} pair blocks, expected {L * (L - 1) // 2}", path=p)
    return h, J, meta


def write_ccmpred_braw(
    path: str | os.PathLike[str], fields: Any, couplings: Any, *, alphabet: Alphabet = PROTEIN
) -> Path:
    """Export parameters as a CCMpred msgpack ``.braw`` (gzipped when ``path`` ends in ``.gz``).

    The states are reordered to ``ARNDCQEGHILKMFPSTWYV-``; CCMpred has no gap field, so the gap
    fields are moved into the gauge first (``h[i, a] - h[i, gap]``, which leaves every conditional
    and the distribution unchanged).
    """
    import msgpack

    h, J = _check_params(fields, couplings, alphabet)
    L = h.shape[0]
    idx = _state_map(CCMPRED_ALPHABET, alphabet, Path(path))
    hh = h[:, idx]
    hh = hh - hh[:, -1:]  # gap last in CCMpred order
    JJ = J[:, :, idx][:, :, :, idx]
    pairs = {
        f"{i}/{j}": {"i": i, "j": j, "x": JJ[i, j].ravel().tolist()}
        for i in range(L)
        for j in range(i + 1, L)
    }
    obj = {
        "format": "ccm-1",
        "ncol": L,
        "x_single": hh[:, :-1].ravel().tolist(),
        "x_pair": pairs,
    }
    data = msgpack.packb(obj, use_bin_type=True)
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    return atomic_write_bytes(path, data)


def _check_params(fields: Any, couplings: Any, alphabet: Alphabet) -> tuple[np.ndarray, np.ndarray]:
    J = np.asarray(couplings, dtype=np.float64)
    if J.ndim != 4 or J.shape[0] != J.shape[1] or J.shape[2] != J.shape[3]:
        raise ShapeError(f"couplings must have shape (L, L, q, q), got {J.shape}")
    L, q = J.shape[0], J.shape[2]
    if q != alphabet.q:
        raise ShapeError(f"couplings have q = {q} states, the alphabet {alphabet.q}")
    h = np.asarray(fields, dtype=np.float64)
    if h.shape != (L, q):
        raise ShapeError(f"fields must have shape {(L, q)}, got {h.shape}")
    if not np.allclose(J, J.transpose(1, 0, 3, 2), rtol=1e-10, atol=1e-12):
        raise ValidationError(
            "couplings must be symmetric (J[i, j, a, b] == J[j, i, b, a]) to be exported; "
            "symmetrize them first (attnpotts.evaluation.symmetrize_couplings)"
        )
    return h, J


def read_adabmdca_params(
    path: str | os.PathLike[str],
    *,
    alphabet: Alphabet = PROTEIN,
    tool_alphabet: str = ADABMDCA_PROTEIN_ALPHABET,
) -> ImportedParameters:
    """Import an adabmDCA ``params.dat`` (lines ``J i j a b value`` and ``h i a value``).

    ``i, j`` are 0-based sites; states are letters (mapped by symbol) or integers (indices into
    ``tool_alphabet``). ``L`` and ``q`` come from the largest indices found. A coupling given for
    ``(i, j)`` also sets ``(j, i)`` transposed; absent couplings are 0.
    """
    p = Path(path)
    h_entries: list[tuple[int, str, float, int]] = []
    j_entries: list[tuple[int, int, str, str, float, int]] = []
    with open(p, encoding="ascii", errors="strict") as fh:
        try:
            for n, line in enumerate(fh, start=1):
                f = line.split()
                if not f or f[0].startswith("#"):
                    continue
                try:
                    if f[0] == "J" and len(f) == 6:
                        j_entries.append((int(f[1]), int(f[2]), f[3], f[4], float(f[5]), n))
                    elif f[0] == "h" and len(f) == 4:
                        h_entries.append((int(f[1]), f[2], float(f[3]), n))
                    else:
                        raise DataFormatError(
                            "expected 'J i j a b value' or 'h i a value'", path=p, line=n
                        )
                except ValueError as exc:
                    raise DataFormatError(f"bad number: {exc}", path=p, line=n) from exc
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"not an ASCII text file: {exc}", path=p) from exc
    if not h_entries:
        raise DataFormatError("no field line 'h i a value': not an adabmDCA params file", path=p)

    def state(tok: str, line: int) -> int:
        if tok.lstrip("-").isdigit() and tok != "-":
            k = int(tok)
            if not 0 <= k < len(tool_alphabet):
                raise DataFormatError(
                    f"state {k} out of range for the tool alphabet {tool_alphabet!r}",
                    path=p,
                    line=line,
                )
            sym = tool_alphabet[k]
        else:
            sym = tok
        sym = sym.upper()
        if sym == "." and alphabet.gap is not None:
            sym = alphabet.gap
        if len(sym) != 1 or sym not in alphabet.symbols:
            raise DataFormatError(
                f"state {tok!r} is not in the alphabet {alphabet.symbols!r}", path=p, line=line
            )
        return alphabet.symbols.index(sym)

    L = 1 + max(max(e[0] for e in h_entries), max((max(e[0], e[1]) for e in j_entries), default=0))
    q = alphabet.q
    h = np.zeros((L, q))
    J = np.zeros((L, L, q, q))
    for i, a, v, n in h_entries:
        if i < 0:
            raise DataFormatError(f"negative site {i}", path=p, line=n)
        h[i, state(a, n)] = v
    for i, j, a, b, v, n in j_entries:
        if i < 0 or j < 0 or i == j:
            raise DataFormatError(f"bad site pair ({i}, {j})", path=p, line=n)
        sa, sb = state(a, n), state(b, n)
        J[i, j, sa, sb] = v
        J[j, i, sb, sa] = v
    return ImportedParameters(h, J, alphabet, "adabmdca", tool_alphabet, {})


def write_adabmdca_params(
    path: str | os.PathLike[str], fields: Any, couplings: Any, *, alphabet: Alphabet = PROTEIN
) -> Path:
    """Export parameters as an adabmDCA 2 ``params.dat`` (letters as states, ``i < j``)."""
    h, J = _check_params(fields, couplings, alphabet)
    L, q = h.shape
    sym = alphabet.symbols
    lines: list[str] = []
    for i in range(L):
        for j in range(i + 1, L):
            for a in range(q):
                lines.extend(
                    f"J {i} {j} {sym[a]} {sym[b]} {float(J[i, j, a, b])!r}" for b in range(q)
                )
    lines.extend(f"h {i} {sym[a]} {float(h[i, a])!r}" for i in range(L) for a in range(q))
    return atomic_write_text(path, "\n".join(lines) + "\n")
