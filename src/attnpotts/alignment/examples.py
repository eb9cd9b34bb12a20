"""Example data shipped with attnpotts (small protein families, MIT licensed; see each README)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import ValidationError

__all__ = ["EXAMPLES", "ExampleFiles", "example_files"]

#: Families shipped in ``attnpotts/data``.
EXAMPLES: tuple[str, ...] = ("PF00014", "PF00076_2X1B")
#: name -> (alignment, distances, structure, aligned structure sequence, column map); None: absent
_FILES: dict[str, tuple[str, str, str | None, str | None, str | None]] = {
    "PF00014": ("PF00014_mgap6.fasta.gz", "PF00014.distances.tsv", None, None, None),
    "PF00076_2X1B": (
        "PF00076.align.80.gz",
        "PF00076_2X1B.distances.tsv",
        "2X1B_A.pdb",
        "PF00076_domain_sequence.txt",
        "PF00076_2X1B.column_map.tsv",
    ),
}


@dataclass(frozen=True)
class ExampleFiles:
    """Paths of one example family.

    ``alignment`` and ``distances`` (column distances, TSV) always exist; families with a PDB
    structure also give ``structure`` (one chain), ``structure_sequence`` (the chain's sequence
    aligned to the alignment's columns) and ``column_map`` (column -> residue number); else None.
    """

    name: str
    alignment: Path
    distances: Path
    structure: Path | None = None
    structure_sequence: Path | None = None
    column_map: Path | None = None


def example_files(name: str = "PF00014") -> ExampleFiles:
    """Paths of the example family ``name`` (see :data:`EXAMPLES` and its README)."""
    if name not in _FILES:
        raise ValidationError(f"no example {name!r}; available: {list(EXAMPLES)}")
    root = Path(str(resources.files("attnpotts") / "data" / name))
    aln, dist, pdb, seq, cmap = _FILES[name]
    return ExampleFiles(
        name,
        root / aln,
        root / dist,
        None if pdb is None else root / pdb,
        None if seq is None else root / seq,
        None if cmap is None else root / cmap,
    )
