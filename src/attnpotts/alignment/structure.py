"""Protein structures -> residue distances in alignment columns, and the distances TSV format.

Pipeline: read a PDB or mmCIF file with gemmi (hydrogens removed, first alternative conformation
kept, only amino-acid residues), align the chain's observed sequence to the ungapped reference
sequence (the reference as it appears in the alignment), map every alignment column where the
reference has a residue to a residue of the chain, and compute per pair of columns

* ``d_min_heavy``: the minimum distance between heavy (non-hydrogen) atoms of the two residues;
* ``d_cb``: the distance between C-beta atoms (C-alpha for glycine).

Columns without a residue in the structure get ``NaN`` distances. A contact is
``distance < cutoff`` (8 A by default).

The distances TSV format (that of the shipped example families, ``attnpotts/data``): comment lines starting with ``#``,
a header line ``i j NAME...``, then one line per pair ``i < j`` of 1-based column numbers with one
value per distance column; absent pairs are unknown.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from ..errors import DataFormatError, ShapeError, ValidationError
from ..storage import atomic_write_text

__all__ = [
    "DISTANCE_KINDS",
    "ChainStructure",
    "ColumnMapping",
    "DistanceTable",
    "StructureDistances",
    "align_sequences",
    "contact_map",
    "distance_maps",
    "map_reference",
    "read_distance_table",
    "read_distances",
    "read_structure",
    "structure_distances",
    "write_distance_table",
]

#: Names of the distance maps computed from a structure.
DISTANCE_KINDS: tuple[str, ...] = ("d_min_heavy", "d_cb")
#: Default contact cutoff in Angstrom.
DEFAULT_CUTOFF = 8.0
_MATCH, _MISMATCH, _GAP = 2, -1, -2


@dataclass(frozen=True, eq=False)
class ChainStructure:
    """Amino-acid residues of one chain with their heavy atoms.

    Attributes:
        chain: chain name.
        residue_numbers: ``(R,)`` author residue numbers.
        insertion_codes: ``R`` insertion codes (" " when none).
        residue_names: ``R`` three-letter residue names.
        sequence: one-letter sequence of the ``R`` observed residues (``X`` if unknown).
        atom_coords: ``(A, 3)`` heavy-atom coordinates, grouped by residue.
        atom_residue: ``(A,)`` residue index of each atom (non-decreasing).
        cb_coords: ``(R, 3)`` C-beta (C-alpha for glycine) coordinates, NaN when missing.
        source: the file read.
    """

    chain: str
    residue_numbers: np.ndarray
    insertion_codes: tuple[str, ...]
    residue_names: tuple[str, ...]
    sequence: str
    atom_coords: np.ndarray
    atom_residue: np.ndarray
    cb_coords: np.ndarray
    source: str

    @property
    def n_residues(self) -> int:
        """Number of residues ``R``."""
        return len(self.sequence)


#: Largest structure file read (bytes; the largest mmCIF files in the PDB are a few hundred MB).
MAX_STRUCTURE_BYTES = 2 * 1024**3


def read_structure(
    path: str | os.PathLike[str], *, chain: str | None = None, model: int = 0
) -> ChainStructure:
    """Read one chain of a PDB or mmCIF file (gzipped too) with gemmi.

    Hydrogens are removed, only the first alternative conformation of each atom is kept (as
    ``gemmi.Structure.remove_alternative_conformations``), and only amino-acid residues count
    (water, ions and ligands are skipped; modified residues such as MSE are kept).

    Args:
        chain: chain name; the first chain with amino acids by default.
        model: 0-based model index (NMR ensembles).

    Raises:
        DataFormatError: gemmi cannot read the file, or it has no such chain or no amino acids,
            or it is not a regular file, too large, or has names that are not UTF-8 text.
    """
    from .io import check_input_file

    p = check_input_file(path, "a structure file (PDB or mmCIF)")
    if p.stat().st_size > MAX_STRUCTURE_BYTES:
        raise DataFormatError(
            f"larger than {MAX_STRUCTURE_BYTES} bytes, too large for a structure file", path=p
        )
    try:
        return _read_structure(p, chain, model)
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"a residue, chain or atom name is not UTF-8 text ({exc.reason} at byte {exc.start})",
            path=p,
        ) from None


def _read_structure(p: Path, chain: str | None, model: int) -> ChainStructure:
    import gemmi

    try:
        st = gemmi.read_structure(str(p))
    except (RuntimeError, ValueError) as exc:
        raise DataFormatError(
            f"gemmi cannot read this structure: {exc}; give a PDB or mmCIF file (.pdb, .ent, "
            ".cif, .mmcif, optionally .gz), or the distances as a table with --distances",
            path=p,
        ) from exc
    if len(st) == 0:
        raise DataFormatError("the structure has no model", path=p)
    if not 0 <= model < len(st):
        raise ValidationError(f"model {model} out of range: {p} has {len(st)} model(s)")
    st.remove_hydrogens()
    st.remove_alternative_conformations()
    mdl = st[model]

    def amino(res: gemmi.Residue) -> bool:
        info = gemmi.find_tabulated_residue(res.name)
        return info is not None and info.is_amino_acid()

    names = [ch.name for ch in mdl]
    if chain is None:
        candidates = [ch for ch in mdl if any(amino(r) for r in ch)]
        if not candidates:
            raise DataFormatError("no chain with amino-acid residues", path=p)
        ch = candidates[0]
    else:
        found = [c for c in mdl if c.name == chain]
        if not found:
            raise DataFormatError(f"no chain {chain!r}; the file has chains {names}", path=p)
        ch = found[0]
    nums: list[int] = []
    icodes: list[str] = []
    rnames: list[str] = []
    letters: list[str] = []
    coords: list[list[float]] = []
    owner: list[int] = []
    cb: list[list[float]] = []
    for res in ch:
        if not amino(res):
            continue
        k = len(nums)
        nums.append(int(res.seqid.num or 0))
        icodes.append(res.seqid.icode)
        rnames.append(res.name)
        info = gemmi.find_tabulated_residue(res.name)
        letter = info.one_letter_code.upper() if info is not None else "X"
        letters.append(letter if letter.strip() and letter != "?" else "X")
        want = "CA" if res.name == "GLY" else "CB"
        pos = [np.nan, np.nan, np.nan]
        for atom in res:
            if atom.element.name in ("H", "D"):
                continue
            xyz = [atom.pos.x, atom.pos.y, atom.pos.z]
            coords.append(xyz)
            owner.append(k)
            if atom.name == want and np.isnan(pos[0]):
                pos = xyz
        cb.append(pos)
    if not nums:
        raise DataFormatError(f"chain {ch.name!r} has no amino-acid residue", path=p)
    return ChainStructure(
        chain=ch.name,
        residue_numbers=np.asarray(nums, dtype=np.int64),
        insertion_codes=tuple(icodes),
        residue_names=tuple(rnames),
        sequence="".join(letters),
        atom_coords=np.asarray(coords, dtype=np.float64).reshape(-1, 3),
        atom_residue=np.asarray(owner, dtype=np.int64),
        cb_coords=np.asarray(cb, dtype=np.float64),
        source=str(p),
    )


# ---------------------------------------------------------------------------- sequence mapping
@numba.njit(cache=True)
def _semiglobal(a: np.ndarray, b: np.ndarray, match: int, mismatch: int, gap: int) -> np.ndarray:
    # pragma: no cover - compiled. Overlap alignment: end gaps in either sequence are free.
    n, m = a.size, b.size
    score = np.zeros((n + 1, m + 1), dtype=np.int64)
    move = np.zeros((n + 1, m + 1), dtype=np.int8)  # 0 diag, 1 up (gap in b), 2 left (gap in a)
    for i in range(1, n + 1):
        move[i, 0] = 1
    for j in range(1, m + 1):
        move[0, j] = 2
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d = score[i - 1, j - 1] + (match if a[i - 1] == b[j - 1] else mismatch)
            u = score[i - 1, j] + gap
            left = score[i, j - 1] + gap
            if d >= u and d >= left:
                score[i, j] = d
                move[i, j] = 0
            elif u >= left:
                score[i, j] = u
                move[i, j] = 1
            else:
                score[i, j] = left
                move[i, j] = 2
    # free trailing gaps: best cell in the last row or column
    bi, bj = n, m
    best = score[n, m]
    for i in range(n + 1):
        if score[i, m] > best:
            best, bi, bj = score[i, m], i, m
    for j in range(m + 1):
        if score[n, j] > best:
            best, bi, bj = score[n, j], n, j
    out = np.full(n, -1, dtype=np.int64)
    i, j = bi, bj
    while i > 0 and j > 0:
        mv = move[i, j]
        if mv == 0:
            out[i - 1] = j - 1
            i -= 1
            j -= 1
        elif mv == 1:
            i -= 1
        else:
            j -= 1
    return out


def align_sequences(query: str, target: str) -> np.ndarray:
    """Map each residue of ``query`` to a residue of ``target`` (or -1).

    An exact unique occurrence of ``query`` in ``target`` is used directly; otherwise an overlap
    alignment (free end gaps, match +2, mismatch -1, gap -2). Returns ``(len(query),)`` indices.
    """
    if not query or not target:
        raise ValidationError("cannot align an empty sequence")
    pos = target.find(query)
    if pos >= 0 and target.find(query, pos + 1) < 0:
        return np.arange(pos, pos + len(query), dtype=np.int64)
    a = np.frombuffer(query.encode("ascii"), dtype=np.uint8)
    b = np.frombuffer(target.encode("ascii"), dtype=np.uint8)
    return np.asarray(_semiglobal(a, b, _MATCH, _MISMATCH, _GAP))


@dataclass(frozen=True, eq=False)
class ColumnMapping:
    """Alignment columns -> residues of a chain.

    Attributes:
        residue_index: ``(L,)`` index into the chain's residues, -1 where the column has no
            residue (reference gap, or residue not observed in the structure).
        residue_numbers: ``(L,)`` author residue numbers, -1 where unmapped.
        n_mapped: number of mapped columns.
        n_identical: mapped columns whose residue matches the reference letter.
    """

    residue_index: np.ndarray
    residue_numbers: np.ndarray
    n_mapped: int
    n_identical: int

    @property
    def identity(self) -> float:
        """Fraction of mapped columns with the reference's residue."""
        return self.n_identical / self.n_mapped if self.n_mapped else 0.0


def map_reference(
    aligned_reference: str, structure: ChainStructure, gap: str = "-"
) -> ColumnMapping:
    """Map the columns of an aligned reference sequence (length ``L``) onto a chain's residues.

    ``aligned_reference`` is the reference row as it appears in the alignment's columns (upper
    case residues and ``gap``; ``.`` is also read as a gap). The chain's observed sequence is
    aligned to the ungapped reference with :func:`align_sequences`.

    Raises:
        ValidationError: no residue of the reference could be mapped.
    """
    ref = aligned_reference.replace(".", gap).upper()
    cols = np.array([k for k, c in enumerate(ref) if c != gap], dtype=np.int64)
    if cols.size == 0:
        raise ValidationError("the aligned reference has no residue (only gaps)")
    ungapped = "".join(ref[k] for k in cols)
    to_res = align_sequences(ungapped, structure.sequence)
    index = np.full(len(ref), -1, dtype=np.int64)
    index[cols] = to_res
    mapped = index >= 0
    if not mapped.any():
        raise ValidationError(
            f"no residue of the reference could be aligned to chain {structure.chain!r} of "
            f"{structure.source}; check the chain and the reference sequence"
        )
    identical = sum(1 for k in np.flatnonzero(mapped) if structure.sequence[index[k]] == ref[k])
    numbers = np.where(mapped, structure.residue_numbers[np.maximum(index, 0)], -1)
    return ColumnMapping(index, numbers, int(mapped.sum()), int(identical))


# ------------------------------------------------------------------------------------ distances
def _residue_min_distances(structure: ChainStructure, residues: np.ndarray) -> np.ndarray:
    """``(K, K)`` minimum heavy-atom distances between the given residues (indices into chain)."""
    k = residues.size
    out = np.full((k, k), np.nan)
    starts = np.searchsorted(structure.atom_residue, residues, side="left")
    stops = np.searchsorted(structure.atom_residue, residues, side="right")
    sel = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)])
    if sel.size == 0:
        return out
    xyz = structure.atom_coords[sel]
    counts = stops - starts
    has = counts > 0
    bounds = np.concatenate([[0], np.cumsum(counts)])
    seg_starts = bounds[:-1][has]
    for a in np.flatnonzero(has):
        block = structure.atom_coords[starts[a] : stops[a]]  # (n_a, 3)
        d2 = ((block[:, None, :] - xyz[None, :, :]) ** 2).sum(-1).min(axis=0)  # (A_sel,)
        out[a, has] = np.sqrt(np.minimum.reduceat(d2, seg_starts))
    return out


def distance_maps(structure: ChainStructure, residue_index: np.ndarray) -> dict[str, np.ndarray]:
    """Distance maps ``(L, L)`` between the residues ``residue_index: (L,)`` (-1: unmapped -> NaN).

    Returns:
        ``{"d_min_heavy": ..., "d_cb": ...}`` in Angstrom, symmetric, zero diagonal for mapped
        columns, NaN wherever a column is unmapped (or the residue lacks a C-beta/C-alpha).
    """
    idx = np.asarray(residue_index, dtype=np.int64)
    if idx.ndim != 1:
        raise ShapeError(f"residue_index must be (L,), got shape {idx.shape}")
    if idx.size and idx.max() >= structure.n_residues:
        raise ValidationError(f"residue_index out of range for {structure.n_residues} residues")
    L = idx.size
    mapped = np.flatnonzero(idx >= 0)
    heavy = np.full((L, L), np.nan)
    cb = np.full((L, L), np.nan)
    if mapped.size:
        res = idx[mapped]
        heavy[np.ix_(mapped, mapped)] = _residue_min_distances(structure, res)
        pos = structure.cb_coords[res]
        cb[np.ix_(mapped, mapped)] = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    return {"d_min_heavy": heavy, "d_cb": cb}


@dataclass(frozen=True, eq=False)
class StructureDistances:
    """Distances between alignment columns derived from a structure."""

    mapping: ColumnMapping
    distances: dict[str, np.ndarray]
    structure: ChainStructure


def structure_distances(
    path: str | os.PathLike[str], aligned_reference: str, *, chain: str | None = None
) -> StructureDistances:
    """Read a structure, map ``aligned_reference`` (length ``L``) onto it, compute distance maps."""
    st = read_structure(path, chain=chain)
    mapping = map_reference(aligned_reference, st)
    return StructureDistances(mapping, distance_maps(st, mapping.residue_index), st)


def contact_map(
    distances: np.ndarray, *, cutoff: float = DEFAULT_CUTOFF, min_separation: int = 0
) -> np.ndarray:
    """Boolean contacts ``distance < cutoff`` and ``|i - j| >= min_separation`` (NaN: no contact)."""
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ShapeError(f"distances must be (L, L), got shape {d.shape}")
    if cutoff <= 0:
        raise ValidationError(f"cutoff must be positive, got {cutoff}")
    with np.errstate(invalid="ignore"):
        c = np.nan_to_num(d, nan=np.inf) < cutoff
    i, j = np.indices(d.shape)
    return c & (np.abs(i - j) >= min_separation)


# ------------------------------------------------------------------------ distances TSV format
@dataclass(frozen=True, eq=False)
class DistanceTable:
    """A distances TSV file: named ``(L, L)`` maps in 1-based column numbering (NaN: absent)."""

    names: tuple[str, ...]
    maps: dict[str, np.ndarray]
    comments: tuple[str, ...]

    @property
    def n_sites(self) -> int:
        """Number of columns ``L`` of the maps."""
        return int(next(iter(self.maps.values())).shape[0])

    def get(self, column: str | None = None) -> np.ndarray:
        """The map named ``column`` (the first distance column by default)."""
        name = self.names[0] if column is None else column
        if name not in self.maps:
            raise ValidationError(f"no distance column {name!r}; the file has {list(self.names)}")
        return self.maps[name]


#: Largest distances TSV read (bytes): a few hundred thousand pairs take a few MB.
MAX_DISTANCES_BYTES = 256 * 1024**2
#: Largest memory of the ``(L, L)`` maps a distances TSV may ask for (bytes).
MAX_DISTANCE_MAP_BYTES = 1024**3


def read_distance_table(
    path: str | os.PathLike[str], *, n_sites: int | None = None
) -> DistanceTable:
    """Read a distances TSV file (``#`` comments, header ``i j NAME...``, 1-based ``i j``).

    Every distance must be finite and non-negative, ``i != j``, and a pair given twice (as
    ``i j`` or ``j i``) must repeat the same values; anything else is refused, never fixed.

    Args:
        n_sites: size ``L`` of the maps (e.g. the alignment's columns: larger column numbers are
            refused); by default the largest column number in the file.

    Raises:
        DataFormatError: malformed header or line, a bad value (names the file and line), a file
            that is not UTF-8 text, too large, or maps too large for memory.
    """
    from .io import read_bounded

    p = Path(path)
    raw_bytes = read_bounded(p, MAX_DISTANCES_BYTES, what="a distances TSV file")
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"not UTF-8 text (byte {exc.start}); a distances file is a tab-separated text file",
            path=p,
        ) from None
    comments: list[str] = []
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, int, list[float]]] = []
    seen: dict[tuple[int, int], tuple[int, list[float]]] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
            continue
        if "\x00" in line:
            raise DataFormatError("NUL byte in a text line (a binary file?)", path=p, line=n)
        fields = line.split()
        if header is None:
            if len(fields) < 3 or fields[0] != "i" or fields[1] != "j":
                raise DataFormatError(
                    f"expected a header 'i j NAME...' (tab separated), got {line[:60]!r}",
                    path=p,
                    line=n,
                )
            if len(set(fields)) != len(fields):
                raise DataFormatError(f"repeated column name in the header {fields}", path=p, line=n)
            header = fields
            header_line = n
            continue
        if len(fields) != len(header):
            raise DataFormatError(
                f"expected {len(header)} fields like the header, got {len(fields)}",
                path=p,
                line=n,
            )
        try:
            i, j = int(fields[0]), int(fields[1])
            vals = [float(v) for v in fields[2:]]
        except ValueError as exc:
            raise DataFormatError(f"not a number: {exc}", path=p, line=n) from exc
        if i < 1 or j < 1:
            raise DataFormatError(f"column numbers start at 1, got i={i} j={j}", path=p, line=n)
        if i == j:
            raise DataFormatError(
                f"a distance of column {i} to itself (i == j); list pairs i != j only",
                path=p,
                line=n,
            )
        if n_sites is not None and max(i, j) > n_sites:
            raise DataFormatError(
                f"column {max(i, j)} exceeds n_sites={n_sites} (the alignment's columns)",
                path=p,
                line=n,
            )
        bad = [f for f, v in zip(header[2:], vals, strict=True) if not (math.isfinite(v) and v >= 0)]
        if bad:
            raise DataFormatError(
                f"distance {bad[0]} must be a finite number >= 0, got "
                f"{vals[header.index(bad[0]) - 2]!r}; leave the pair out if it is unknown",
                path=p,
                line=n,
            )
        key = (min(i, j), max(i, j))
        if key in seen:
            first_line, first_vals = seen[key]
            if first_vals != vals:
                raise DataFormatError(
                    f"pair ({key[0]}, {key[1]}) is given twice with different distances (lines "
                    f"{first_line} and {n}); keep one",
                    path=p,
                    line=n,
                )
            continue
        seen[key] = (n, vals)
        rows.append((i, j, vals))
    if header is None:
        raise DataFormatError("no header line 'i j NAME...' found", path=p)
    if not rows:
        raise DataFormatError("no distance lines after the header", path=p, line=header_line)
    L = n_sites if n_sites is not None else max(max(i, j) for i, j, _ in rows)
    names = tuple(header[2:])
    need = L * L * 8 * len(names)
    if need > MAX_DISTANCE_MAP_BYTES:
        raise DataFormatError(
            f"column numbers up to {L} would need {len(names)} map(s) of {L} x {L} "
            f"({need / 1024**3:.1f} GiB); columns are numbered in the alignment (from 1): check "
            "the file",
            path=p,
        )
    ii = np.array([r[0] for r in rows]) - 1
    jj = np.array([r[1] for r in rows]) - 1
    table = np.array([r[2] for r in rows], dtype=np.float64)  # (pairs, n_names)
    maps: dict[str, np.ndarray] = {}
    for k, name in enumerate(names):
        m = np.full((L, L), np.nan)
        m[ii, jj] = table[:, k]
        m[jj, ii] = table[:, k]
        maps[name] = m
    return DistanceTable(names, maps, tuple(comments))


def read_distances(
    path: str | os.PathLike[str], *, column: str | None = None, n_sites: int | None = None
) -> np.ndarray:
    """One ``(L, L)`` distance map from a distances TSV (``column`` by name; the first by default)."""
    return read_distance_table(path, n_sites=n_sites).get(column)


def write_distance_table(
    path: str | os.PathLike[str],
    maps: Mapping[str, np.ndarray],
    *,
    comment: str = "",
    decimals: int = 3,
) -> Path:
    """Write ``(L, L)`` maps as a distances TSV (pairs ``i < j`` where every map is finite)."""
    if not maps:
        raise ValidationError("no distance map to write")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in maps.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ShapeError(f"maps must all be (L, L) of one size, got {sorted(shapes)}")
    L = next(iter(shapes))[0]
    i, j = np.triu_indices(L, k=1)
    ok = np.ones(i.size, dtype=bool)
    for a in arrays.values():
        ok &= np.isfinite(a[i, j])
    lines = [f"# {c}" for c in comment.splitlines()] if comment else []
    lines.append("\t".join(["i", "j", *arrays]))
    cols = [a[i[ok], j[ok]] for a in arrays.values()]
    for n, (a, b) in enumerate(zip(i[ok] + 1, j[ok] + 1, strict=True)):
        lines.append("\t".join([str(a), str(b), *(f"{c[n]:.{decimals}f}" for c in cols)]))
    return atomic_write_text(path, "\n".join(lines) + "\n")
