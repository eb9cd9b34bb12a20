"""adabmDCA's ``params.dat``: lines ``J i j a b value`` and ``h i a value``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..alphabet import PROTEIN, Alphabet
from ..errors import DataFormatError
from ..storage import atomic_write_text
from .parameters import ImportedParameters, _check_params

__all__ = ["ADABMDCA_PROTEIN_ALPHABET", "read_adabmdca_params", "write_adabmdca_params"]

#: adabmDCA's protein state order (gap first), used for integer states.
ADABMDCA_PROTEIN_ALPHABET = "-ACDEFGHIKLMNPQRSTVWY"


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
