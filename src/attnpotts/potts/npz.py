"""The one ``.npz`` file format of Potts parameters: one writer, one reader.

Models (:meth:`ConditionalPotts.save <attnpotts.potts.ConditionalPotts.save>`) and fitted DCA
couplings (:func:`attnpotts.formats.save_couplings_npz`) are written by :func:`write_potts_npz`
and read by :func:`read_potts_npz`. Format ``attnpotts.potts``, version 2 (uncompressed ``.npz``,
no pickles; arrays in the canonical layout of :mod:`attnpotts.potts.layout`):

======================== ================ ==================================================
array                    shape, dtype     meaning
======================== ================ ==================================================
``couplings``            (L, L, q, q) f8  ``J[i, j, s_i, s_j]``, ``J[i, i] = 0``
``fields``               (L, q) f8        ``h[i, s_i]``
``metadata``             () str           JSON object: ``format``, ``format_version``,
                                          ``kind`` (``PottsModel``: symmetric, energies;
                                          ``ConditionalPotts``: any couplings), ``beta``,
                                          ``n_sites``, ``n_states``, the energy convention,
                                          the layout, ``info`` (free JSON: tool, gauge,
                                          regularisation, weights...)
``site_couplings``       (K, L, L) f8     optional factor ``Jsite`` (with ``colour_couplings``)
``colour_couplings``     (K, q, q) f8     optional factor ``Ucol``; ``J = sum_k Jsite_k (x) Ucol_k``
``alphabet``, ``gap``    () str           optional: state ``a`` is ``alphabet[a]``; the gap
                                          symbol (``""`` if none)
``columns``              (L,) i8          optional: 1-based columns of the original alignment
``reference``            () str           optional: reference residues at the columns
``reference_numbers``    (L,) i8          optional: reference residue numbers (``-1``: gap)
======================== ================ ==================================================

Version 1 files still load: models written by ``PottsModel.save`` (the same arrays without the
alignment entries, metadata version 1) and couplings written by ``save_couplings_npz`` (an extra
``format_version`` array, the metadata JSON holding only the conventions, ``beta = 1``).

The reader checks every array's name, dtype, shape and size from the file's headers before it
reads anything (at most ``max_bytes``), never unpickles, and refuses non-finite values, non-zero
self-couplings, factors whose product is not the couplings, and metadata that contradicts the
arrays, each with a :class:`~attnpotts.errors.DataFormatError` naming the file and the problem.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..alphabet import PROTEIN, Alphabet
from ..errors import DataFormatError, ShapeError, ValidationError
from ..storage import atomic_savez, inspect_npz, to_jsonable
from .layout import check_couplings_shape, couplings_from_factors

__all__ = [
    "MAX_MODEL_BYTES",
    "POTTS_NPZ_FORMAT",
    "POTTS_NPZ_VERSION",
    "PottsFile",
    "read_potts_npz",
    "write_potts_npz",
]

#: Value of ``format`` in the metadata.
POTTS_NPZ_FORMAT = "attnpotts.potts"
#: Version written by :func:`write_potts_npz` (1 and 2 are read).
POTTS_NPZ_VERSION = 2
#: Largest arrays :func:`read_potts_npz` reads by default (bytes as float64; 8 GiB).
MAX_MODEL_BYTES = 8 * 1024**3
#: The two model classes a file may name as its ``kind``.
KINDS = ("PottsModel", "ConditionalPotts")

_FLOATS = ("fields", "couplings", "site_couplings", "colour_couplings")
_TEXTS = ("metadata", "alphabet", "gap", "reference")
_INTEGERS = ("columns", "reference_numbers")
#: ``format_version`` as an array: only in version 1 couplings files.
_ARRAYS = (*_FLOATS, *_TEXTS, *_INTEGERS, "format_version")
_MAX_TEXT_BYTES = 4 * 1024**2
_ENERGY = "H(s) = -sum_{i<j} J[i,j,s_i,s_j] - sum_i h[i,s_i]; P ~ exp(-beta H)"
_LAYOUT = {"fields": "(L, q)", "couplings": "(L, L, q, q) indexed [i, j, s_i, s_j]"}


@dataclass(frozen=True, eq=False)
class PottsFile:
    """Contents of a Potts ``.npz`` file (arrays float64, in the canonical layout).

    Attributes:
        couplings: ``(L, L, q, q)``.
        fields: ``(L, q)``.
        beta: inverse temperature (``1`` for DCA couplings: log-potentials).
        kind: ``"PottsModel"`` or ``"ConditionalPotts"``.
        site_couplings, colour_couplings: ``(K, L, L)`` and ``(K, q, q)`` factors, or ``None``.
        alphabet: the states' alphabet, or ``None`` (a model without one).
        columns: ``(L,)`` 1-based original alignment columns, or ``None``.
        reference: reference residues at the columns (``""`` if none).
        reference_numbers: ``(L,)`` reference residue numbers (``-1`` at gaps), or ``None``.
        info: the free metadata (conventions of the fit).
        format_version: the version the file was written in.
    """

    couplings: np.ndarray
    fields: np.ndarray
    beta: float = 1.0
    kind: str = "ConditionalPotts"
    site_couplings: np.ndarray | None = None
    colour_couplings: np.ndarray | None = None
    alphabet: Alphabet | None = None
    columns: np.ndarray | None = None
    reference: str = ""
    reference_numbers: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    format_version: int = POTTS_NPZ_VERSION


# ------------------------------------------------------------------------------------ writer
def write_potts_npz(
    path: str | os.PathLike[str],
    couplings: Any,
    fields: Any = None,
    *,
    beta: float = 1.0,
    kind: str = "ConditionalPotts",
    site_couplings: Any = None,
    colour_couplings: Any = None,
    alphabet: Alphabet | None = None,
    columns: Any = None,
    reference: str = "",
    reference_numbers: Any = None,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write Potts parameters to ``path`` exactly as given (atomic; layout in the module doc).

    Args:
        couplings: ``(L, L, q, q)`` couplings (float64 on disk).
        fields: ``(L, q)`` fields, ``None`` for zero.
        beta: inverse temperature.
        kind: the class the file loads as by default (``"PottsModel"``, ``"ConditionalPotts"``).
        site_couplings, colour_couplings: optional factors ``(K, L, L)``, ``(K, q, q)``.
        alphabet: optional alphabet of the ``q`` states.
        columns: optional ``(L,)`` 1-based original alignment columns (with an alignment,
            default ``1..L`` when an alphabet is given).
        reference: reference residues at the columns (``""`` for none).
        reference_numbers: ``(L,)`` reference residue numbers (``-1``: gap; default all ``-1``).
        info: free JSON-able metadata (tool, gauge, regularisation, weights...).

    Raises:
        ShapeError, ValidationError: inconsistent arrays (nothing is written).
    """
    J = np.asarray(couplings, dtype=np.float64)
    L, q = check_couplings_shape(J)
    h = np.zeros((L, q)) if fields is None else np.asarray(fields, dtype=np.float64)
    if h.shape != (L, q):
        raise ShapeError(f"fields must have shape {(L, q)}, got {h.shape}")
    if kind not in KINDS:
        raise ValidationError(f"kind must be one of {KINDS}, got {kind!r}")
    arrays: dict[str, np.ndarray] = {"fields": h, "couplings": J}
    meta: dict[str, Any] = {
        "format": POTTS_NPZ_FORMAT,
        "format_version": POTTS_NPZ_VERSION,
        "kind": kind,
        "n_sites": L,
        "n_states": q,
        "beta": float(beta),
        "energy_convention": _ENERGY,
        "layout": _LAYOUT,
        "factored": site_couplings is not None,
    }
    if (site_couplings is None) != (colour_couplings is None):
        raise ValidationError("give both site_couplings and colour_couplings, or neither")
    if site_couplings is not None:
        site = np.asarray(site_couplings, dtype=np.float64)
        colour = np.asarray(colour_couplings, dtype=np.float64)
        if site.ndim != 3 or colour.ndim != 3 or site.shape[1:] != (L, L) or colour.shape[1:] != (q, q):
            raise ShapeError(
                f"factors must be (K, {L}, {L}) and (K, {q}, {q}), got {site.shape} and {colour.shape}"
            )
        arrays.update(site_couplings=site, colour_couplings=colour)
        meta["n_components"] = int(site.shape[0])
    if alphabet is not None:
        if q != alphabet.q:
            raise ShapeError(f"couplings have q = {q} states, the alphabet {alphabet.q}")
        arrays.update(alphabet=np.array(alphabet.symbols), gap=np.array(alphabet.gap or ""))
    if alphabet is not None or columns is not None:
        cols = np.arange(1, L + 1) if columns is None else np.asarray(columns, dtype=np.int64)
        if cols.shape != (L,) or (cols.size and cols.min() < 1):
            raise ValidationError(f"columns must be ({L},) 1-based column numbers")
        arrays["columns"] = cols.astype(np.int64)
    if reference and len(reference) != L:
        raise ShapeError(f"reference has {len(reference)} residues for {L} columns")
    if reference or reference_numbers is not None or "columns" in arrays:
        nums = (
            np.full(L, -1, dtype=np.int64)
            if reference_numbers is None
            else np.asarray(reference_numbers, dtype=np.int64)
        )
        if nums.shape != (L,):
            raise ShapeError(f"reference_numbers must have shape ({L},), got {nums.shape}")
        arrays.update(reference=np.array(reference), reference_numbers=nums)
    meta["info"] = to_jsonable(dict(info or {}))
    arrays["metadata"] = np.array(json.dumps(meta, allow_nan=False))
    return atomic_savez(path, **arrays)


# ------------------------------------------------------------------------------------ reader
def _check_header(
    header: dict[str, tuple[tuple[int, ...], np.dtype[Any]]], path: Path, max_bytes: int
) -> None:
    """Refuse arrays that are missing, unexpected, of a wrong dtype, shape or size (headers only)."""
    for key in ("fields", "couplings", "metadata"):
        if key not in header:
            raise DataFormatError(f"missing array {key!r}; not an attnpotts Potts file", path=path)
    extra = sorted(set(header) - set(_ARRAYS))
    if extra:
        raise DataFormatError(f"unexpected array(s) {extra}; not an attnpotts Potts file", path=path)
    for key, (shape, dtype) in header.items():
        if key in _TEXTS:
            if dtype.kind != "U" or shape != () or dtype.itemsize > _MAX_TEXT_BYTES:
                raise DataFormatError(f"{key} must be one text string", path=path)
        elif key in _FLOATS:
            if dtype.kind != "f" or dtype.itemsize not in (4, 8):
                raise DataFormatError(
                    f"array {key!r} has dtype {dtype}; expected float64 (or float32)", path=path
                )
        elif dtype.kind not in "iu" or dtype.itemsize > 8:
            raise DataFormatError(f"array {key!r} has dtype {dtype}; expected integers", path=path)
    J, h = header["couplings"][0], header["fields"][0]
    if len(J) != 4 or J[0] != J[1] or J[2] != J[3] or h != (J[0], J[2]):
        raise DataFormatError(
            f"couplings {J} and fields {h} must have shapes (L, L, q, q) and (L, q)", path=path
        )
    L, q = h
    if ("site_couplings" in header) != ("colour_couplings" in header):
        raise DataFormatError("site_couplings and colour_couplings come together", path=path)
    if "site_couplings" in header:
        S, C = header["site_couplings"][0], header["colour_couplings"][0]
        if len(S) != 3 or len(C) != 3 or S[1:] != (L, L) or C[1:] != (q, q) or S[0] != C[0]:
            raise DataFormatError(
                f"factors {S} and {C} must be (K, L, L) and (K, q, q) with L={L}, q={q}", path=path
            )
    for key in _INTEGERS:
        if key in header and header[key][0] != (L,):
            raise DataFormatError(f"{key} has shape {header[key][0]}, expected ({L},)", path=path)
    if "format_version" in header and header["format_version"][0] != ():
        raise DataFormatError("format_version must be one integer", path=path)
    need = sum(8 * int(np.prod(s)) for k, (s, _) in header.items() if k in _FLOATS or k in _INTEGERS)
    if need > max_bytes:
        raise DataFormatError(
            f"the arrays take {need / 1024**3:.2f} GiB as float64, above the limit of "
            f"{max_bytes / 1024**3:.2f} GiB (max_bytes); is this the right file?",
            path=path,
        )


def _metadata(arrays: dict[str, np.ndarray], path: Path) -> tuple[dict[str, Any], int]:
    """The metadata object and the file's format version (legacy layouts recognised)."""
    try:
        meta = json.loads(str(arrays["metadata"]))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"metadata is not valid JSON ({exc})", path=path) from exc
    if not isinstance(meta, dict):
        raise DataFormatError("metadata must be a JSON object", path=path)
    if "format_version" in arrays:  # version 1 couplings file: metadata = the conventions only
        version = int(arrays["format_version"])
        if version > 1:
            raise DataFormatError(
                f"format version {version} of a couplings file is newer than this attnpotts "
                "reads (1); upgrade attnpotts",
                path=path,
            )
        return {"kind": "ConditionalPotts", "beta": 1.0, "info": meta}, 1
    if meta.get("format") != POTTS_NPZ_FORMAT:
        raise DataFormatError(f"metadata format is not {POTTS_NPZ_FORMAT!r}", path=path)
    version = meta.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DataFormatError(f"metadata format_version {version!r} is not a version", path=path)
    if version > POTTS_NPZ_VERSION:
        raise DataFormatError(
            f"format version {version} is newer than this attnpotts reads "
            f"({POTTS_NPZ_VERSION}); upgrade attnpotts",
            path=path,
        )
    if meta.get("kind") not in KINDS:
        raise DataFormatError(f"metadata kind {meta.get('kind')!r} is not a Potts model class", path=path)
    beta = meta.get("beta")
    if isinstance(beta, bool) or not isinstance(beta, int | float) or not np.isfinite(beta) or beta < 0:
        raise DataFormatError(f"metadata beta must be a finite number >= 0, got {beta!r}", path=path)
    L, q = arrays["fields"].shape
    if (meta.get("n_sites"), meta.get("n_states")) != (L, q):
        raise DataFormatError(
            f"metadata says L={meta.get('n_sites')}, q={meta.get('n_states')} but the arrays "
            f"have L={L}, q={q}",
            path=path,
        )
    info = meta.get("info", {})
    if not isinstance(info, dict):
        raise DataFormatError("metadata info must be a JSON object", path=path)
    return {"kind": meta["kind"], "beta": float(beta), "info": info}, version


def _alphabet(arrays: dict[str, np.ndarray], q: int, path: Path) -> Alphabet | None:
    if "alphabet" not in arrays:
        return None
    symbols = str(arrays["alphabet"])
    gap = str(arrays["gap"]) if "gap" in arrays else ""
    if len(symbols) != q:
        raise DataFormatError(f"alphabet {symbols!r} has {len(symbols)} symbols for q = {q}", path=path)
    try:
        if symbols == PROTEIN.symbols and gap == PROTEIN.gap:
            return PROTEIN
        if gap:
            return Alphabet(symbols, gap=gap, aliases={".": gap}, unknown="gap")
        return Alphabet(symbols)
    except ValidationError as exc:
        raise DataFormatError(f"invalid alphabet ({exc})", path=path) from None


def _check_values(f: PottsFile, path: Path) -> None:
    """Finite values, zero self-couplings, couplings equal to the product of the factors."""
    for name in _FLOATS:
        x = getattr(f, name)
        if x is not None and not np.all(np.isfinite(x)):
            raise DataFormatError(f"{name} contain NaN or infinite values", path=path)
    L = f.couplings.shape[0]
    if np.abs(f.couplings[np.arange(L), np.arange(L)]).max(initial=0.0) != 0.0:
        raise DataFormatError("self-couplings J[i, i] must be zero", path=path)
    if f.site_couplings is not None and f.colour_couplings is not None:
        J = couplings_from_factors(f.site_couplings, f.colour_couplings)
        scale = max(1.0, float(np.abs(J).max(initial=0.0)))
        if not np.allclose(J, f.couplings, rtol=0, atol=1e-9 * scale):
            raise DataFormatError(
                "the stored couplings are not the product of the stored factors "
                "site_couplings x colour_couplings",
                path=path,
            )
    if f.columns is not None and f.columns.size and f.columns.min() < 1:
        raise DataFormatError("columns must be 1-based column numbers", path=path)
    if f.reference and len(f.reference) != L:
        raise DataFormatError(f"reference has {len(f.reference)} residues for L = {L}", path=path)


def read_potts_npz(path: str | os.PathLike[str], *, max_bytes: int = MAX_MODEL_BYTES) -> PottsFile:
    """Read a Potts ``.npz`` file of any version (module doc), validated.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not a Potts file, or inconsistent (names the file and the problem).
    """
    p = Path(path)
    header = inspect_npz(p)
    _check_header(header, p, max_bytes)
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile/ValueError/zlib.error on a corrupt file
        raise DataFormatError(f"not a readable .npz file ({exc})", path=p) from exc
    meta, version = _metadata(arrays, p)
    q = arrays["fields"].shape[1]

    def floats(key: str) -> np.ndarray | None:
        return arrays[key].astype(np.float64, copy=False) if key in arrays else None

    def integers(key: str) -> np.ndarray | None:
        return arrays[key].astype(np.int64, copy=False) if key in arrays else None

    f = PottsFile(
        couplings=arrays["couplings"].astype(np.float64, copy=False),
        fields=arrays["fields"].astype(np.float64, copy=False),
        beta=meta["beta"],
        kind=meta["kind"],
        site_couplings=floats("site_couplings"),
        colour_couplings=floats("colour_couplings"),
        alphabet=_alphabet(arrays, q, p),
        columns=integers("columns"),
        reference=str(arrays["reference"]) if "reference" in arrays else "",
        reference_numbers=integers("reference_numbers"),
        info=meta["info"],
        format_version=version,
    )
    _check_values(f, p)
    return f
