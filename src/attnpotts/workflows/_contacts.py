"""The ``contacts`` workflow: DCA of an alignment, scored and evaluated (``dca.run_contacts``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dca.config import ContactsConfig
from ..errors import ValidationError
from ..options import text

__all__ = ["ContactsOptions", "contacts"]

_EVAL = "evaluation (optional)"


@dataclass(frozen=True)
class ContactsOptions(ContactsConfig):
    """Every option of ``attnpotts contacts``: the :class:`ContactsConfig` fields (declared there,
    once) and the inputs: the alignment and what to evaluate the contacts against."""

    alignment: str | None = text(
        None, "path", none=True, flag="",
        help="FASTA (.gz), A2M, A3M, Stockholm or PSICOV alignment",
    )
    structure: str | None = text(
        None, "path", none=True, group=_EVAL, exclusive="distances",
        help="PDB or mmCIF file of the reference",
    )
    distances: str | None = text(
        None, "path", none=True, group=_EVAL, exclusive="distances",
        help="distances TSV (# comments, header 'i j NAME...', columns from 1)",
    )
    chain: str | None = text(
        None, none=True, group=_EVAL, help="chain of --structure (default: the first protein chain)"
    )
    structure_sequence: str | None = text(
        None, "path", none=True, group=_EVAL,
        help="the structure's sequence aligned to the alignment's columns (FASTA or "
        "'NAME CHAIN SEQUENCE' line); default: the alignment's reference (first) sequence",
    )
    distance_column: str | None = text(
        None, none=True, group=_EVAL,
        help="distance column of --distances (default the first) or of --structure "
        "(d_min_heavy, default, or d_cb)",
    )
    def __post_init__(self) -> None:
        super().__post_init__()
        if self.structure is not None and self.distances is not None:
            raise ValidationError(
                "--structure and --distances are two sources of the same distances; give one"
            )

    def contacts_config(self) -> ContactsConfig:
        """The :class:`ContactsConfig` part of these options."""
        names = {f.name for f in dataclasses.fields(ContactsConfig)}
        return ContactsConfig(**{n: getattr(self, n) for n in names})


def contacts(
    options: ContactsOptions, out: str | Path, *, overwrite: bool = False, progress: bool = False
) -> dict[str, Any]:
    """Fit, score and (with a structure or distances) evaluate the alignment of ``options``;
    write the output folder ``out``; return its summary."""
    if options.alignment is None:
        raise ValidationError("an alignment file is required")
    from ..dca.pipeline import run_contacts  # reads and checks every input before torch loads

    return run_contacts(
        options.alignment, out, config=options.contacts_config(), structure=options.structure,
        chain=options.chain, distances=options.distances, distance_column=options.distance_column,
        structure_sequence=options.structure_sequence, progress=progress, overwrite=overwrite,
    )  # fmt: skip
