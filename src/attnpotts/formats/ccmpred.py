"""CCMpred raw parameters: the msgpack ``.braw`` (CCMpred, CCMpredPy) and the old text ``.raw``."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..alphabet import PROTEIN, Alphabet
from ..errors import DataFormatError
from ..potts.layout import pair_position, unpack_pairs
from ..storage import atomic_write_bytes
from .parameters import ImportedParameters, _check_params, _reorder, _state_map

__all__ = ["CCMPRED_ALPHABET", "read_ccmpred_raw", "write_ccmpred_braw"]

#: CCMpred's state order (gap last).
CCMPRED_ALPHABET = "ARNDCQEGHILKMFPSTWYV-"


class _PairBlocks:
    """The ``(q, q)`` blocks of the pairs ``i < j`` as read, in the packed layout ``(P, q, q)``."""

    def __init__(self, n_sites: int, n_states: int, path: Path) -> None:
        P = n_sites * (n_sites - 1) // 2
        self.n_sites, self.path = n_sites, path
        self.packed = np.zeros((P, n_states, n_states))
        self.given = np.zeros(P, dtype=bool)
        self.seen = 0

    def add(self, i: int, j: int, block: np.ndarray, line: int | None = None) -> None:
        """Store ``J[i, j] = block`` (``0 <= i < j < L``, checked by the caller); once per pair."""
        k = pair_position(i, j, self.n_sites)
        if self.given[k]:
            raise DataFormatError(f"pair ({i}, {j}) is given twice", path=self.path, line=line)
        self.packed[k], self.given[k] = block, True
        self.seen += 1

    def couplings(self) -> np.ndarray:
        """Symmetric ``J (L, L, q, q)`` (pairs never given stay zero)."""
        return unpack_pairs(self.packed, self.n_sites)


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
    blocks = _PairBlocks(L, n_alpha, p)
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
        blocks.add(i, j, block.reshape(n_alpha, n_alpha))
    if blocks.seen != L * (L - 1) // 2:
        raise DataFormatError(
            f"x_pair has {blocks.seen} pairs, expected ncol (ncol - 1) / 2 = {L * (L - 1) // 2}",
            path=p,
        )
    meta = {"meta": x.get("meta")} if "meta" in x else {}
    return h, blocks.couplings(), meta


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
    blocks = _PairBlocks(L, n_alpha, p)
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
        blocks.add(i, j, np.asarray(block), line=n + 1)
        n += 1 + n_alpha
    if blocks.seen != L * (L - 1) // 2:
        raise DataFormatError(f"{blocks.seen} pair blocks, expected {L * (L - 1) // 2}", path=p)
    return h, blocks.couplings(), meta


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
