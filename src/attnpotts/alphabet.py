"""Alphabets: symbols <-> integer states, with the gap and the ``[MASK]`` token named explicitly.

States are ``0 .. q-1``. The mask token used by masked language models is ``q`` (one past the last
state): it is never a state of the Potts model, only an input token of the neural models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataFormatError, ValidationError

__all__ = ["GENERIC_SYMBOLS", "PROTEIN", "RNA", "Alphabet"]

#: Symbols of generic alphabets (synthetic data): amino-acid letters first, then the rest.
GENERIC_SYMBOLS = "ACDEFGHIKLMNPQRSTVWYBJOUXZ"


@dataclass(frozen=True)
class Alphabet:
    """An ordered set of single-character symbols.

    Attributes:
        symbols: one character per state, state ``k`` is ``symbols[k]``.
        gap: the symbol of the gap state, or ``None`` if the alphabet has no gap.
        aliases: extra characters mapped onto states (e.g. ``"."`` onto the gap, ``"U"`` onto ``"T"``).
        unknown: where characters outside the alphabet go: ``"error"``, or ``"gap"`` (common DCA
            practice for ``X``, ``B``, ``Z``).
    """

    symbols: str
    gap: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    unknown: str = "error"

    def __post_init__(self) -> None:
        if len(self.symbols) < 2:
            raise ValidationError(f"an alphabet needs at least 2 symbols, got {self.symbols!r}")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValidationError(f"alphabet symbols must be distinct, got {self.symbols!r}")
        if self.gap is not None and self.gap not in self.symbols:
            raise ValidationError(
                f"gap symbol {self.gap!r} is not in the alphabet {self.symbols!r}"
            )
        if self.unknown not in ("error", "gap"):
            raise ValidationError(f"unknown must be 'error' or 'gap', got {self.unknown!r}")
        if self.unknown == "gap" and self.gap is None:
            raise ValidationError("unknown='gap' needs an alphabet with a gap symbol")

    @property
    def q(self) -> int:
        """Number of states."""
        return len(self.symbols)

    @property
    def mask_token(self) -> int:
        """Integer id of the ``[MASK]`` input token of masked language models (``q``)."""
        return self.q

    @property
    def gap_index(self) -> int | None:
        """State index of the gap, or ``None``."""
        return None if self.gap is None else self.symbols.index(self.gap)

    @classmethod
    def generic(cls, q: int) -> Alphabet:
        """Alphabet of ``q <= 26`` letters for synthetic data (no gap)."""
        if not 2 <= q <= len(GENERIC_SYMBOLS):
            raise ValidationError(
                f"a generic alphabet has 2..{len(GENERIC_SYMBOLS)} symbols, got q={q}; "
                "for more states save sequences as npz only"
            )
        return cls(GENERIC_SYMBOLS[:q])

    def _lookup(self) -> np.ndarray:
        table = np.full(256, -1, dtype=np.int16)
        for k, ch in enumerate(self.symbols):
            table[ord(ch)] = k
            if ch.isalpha():
                table[ord(ch.lower())] = k
        for src, dst in self.aliases.items():
            table[ord(src)] = self.symbols.index(dst)
        if self.unknown == "gap":
            gap = self.symbols.index(self.gap)  # type: ignore[arg-type]
            table[table < 0] = gap
        return table

    def encode(
        self, sequences: list[str] | tuple[str, ...], *, source: object = None
    ) -> np.ndarray:
        """Encode equal-length strings into states ``(M, L) int8``/``int16``.

        Raises:
            DataFormatError: lengths differ or a character is not in the alphabet.
        """
        if len(sequences) == 0:
            raise DataFormatError("no sequences to encode", path=source)
        length = len(sequences[0])
        for n, s in enumerate(sequences):
            if len(s) != length:
                raise DataFormatError(
                    f"sequence {n} has length {len(s)}, the first has {length}; "
                    "aligned sequences must all have the same length",
                    path=source,
                )
        try:
            raw = np.frombuffer("".join(sequences).encode("ascii"), dtype=np.uint8)
        except UnicodeEncodeError as exc:
            raise DataFormatError(f"non-ASCII character in sequences: {exc}", path=source) from exc
        codes = self._lookup()[raw].reshape(len(sequences), length)
        if (codes < 0).any():
            m, i = np.argwhere(codes < 0)[0]
            bad = sequences[m][i]
            raise DataFormatError(
                f"character {bad!r} (sequence {m}, column {i + 1}) is not in the alphabet "
                f"{self.symbols!r}; use another alphabet or unknown='gap'",
                path=source,
            )
        return codes.astype(np.int8 if self.q <= 127 else np.int16)

    def decode(self, states: np.ndarray) -> list[str]:
        """Decode states ``(M, L)`` into strings."""
        states = np.asarray(states)
        if states.ndim != 2:
            raise ValidationError(f"states must be (M, L), got shape {states.shape}")
        if states.size and (states.min() < 0 or states.max() >= self.q):
            raise ValidationError(f"states must lie in 0..{self.q - 1} for this alphabet")
        table = np.frombuffer(self.symbols.encode("ascii"), dtype=np.uint8)
        chars = table[states.astype(np.intp)]
        return [row.tobytes().decode("ascii") for row in chars]


#: Protein alphabet in plmc order: gap first, then the 20 amino acids alphabetically by one-letter
#: code. Unknown residues (X, B, Z, J, O, U) map to the gap, as plmc and CCMpred do.
PROTEIN = Alphabet("-ACDEFGHIKLMNPQRSTVWY", gap="-", aliases={".": "-"}, unknown="gap")

#: RNA alphabet (gap first); T is read as U.
RNA = Alphabet("-ACGU", gap="-", aliases={".": "-", "T": "U", "t": "U"}, unknown="gap")
