"""Example data shipped with attnpotts (small protein families, MIT licensed)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import ValidationError

__all__ = ["EXAMPLES", "ExampleFiles", "example_files"]

#: Families shipped in ``attnpotts/data``.
EXAMPLES: tuple[str, ...] = ("PF00014",)
_FILES = {"PF00014": ("PF00014_mgap6.fasta.gz", "PF00014.distances.tsv")}


@dataclass(frozen=True)
class ExampleFiles:
    """Paths of one example family: an alignment and its column distances (TSV)."""

    name: str
    alignment: Path
    distances: Path


def example_files(name: str = "PF00014") -> ExampleFiles:
    """Paths of the example family ``name`` (see :data:`EXAMPLES` and its README)."""
    if name not in _FILES:
        raise ValidationError(f"no example {name!r}; available: {list(EXAMPLES)}")
    root = Path(str(resources.files("attnpotts") / "data" / name))
    aln, dist = _FILES[name]
    return ExampleFiles(name, root / aln, root / dist)
