"""The ``contacts`` workflow: DCA of an alignment, scored and evaluated (``dca.run_contacts``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..dca.fit import (
    PLM_CHECK_EVERY,
    PLM_MAX_ITER,
    PLM_REGULARIZATION,
    PLM_SCORE_GAP,
    PLM_TOLERANCE,
)
from ..dca.pipeline import ContactsConfig, run_contacts
from ..dca.regularization import CONVENTIONS, DEFAULT_REGULARIZATION
from ..errors import ValidationError
from ..options import boolean, choice, integer, number, text, validate
from .resources import memory_limit

__all__ = ["ContactsOptions", "contacts"]

_FIT, _ALN, _EVAL = "model and fit", "alignment", "evaluation (optional)"
_C = ContactsConfig  # its class attributes are the defaults: one value for both


@dataclass(frozen=True)
class ContactsOptions:
    """Every option of ``attnpotts contacts``: the inputs and the :class:`ContactsConfig` fields
    (same names and defaults; ``lambda_j``, ``max_iter``, ``lbfgs_history`` and ``score_gap``
    default to the estimator's, which depend on ``model``)."""

    alignment: str | None = text(
        None, "path", none=True, flag="",
        help="FASTA (.gz), A2M, A3M, Stockholm or PSICOV alignment",
    )
    model: Literal["plm", "factored"] = choice(_C.model, ("plm", "factored"), group=_FIT, help="model")
    regularization: str = choice(
        _C.regularization, CONVENTIONS, group=_FIT, help="L2 convention"
    )
    lambda_j: float | None = number(
        None, 0, none=True, group=_FIT,
        help=f"coupling L2 in that convention (default {PLM_REGULARIZATION.lambda_j} plm, "
        f"{DEFAULT_REGULARIZATION.lambda_j} factored, in the evcouplings convention)",
    )
    lambda_h: float = number(_C.lambda_h, 0, group=_FIT, help="field L2 in that convention")
    max_iter: int | None = integer(
        None, 1, none=True, group=_FIT,
        help=f"cap on the L-BFGS iterations (default {PLM_MAX_ITER} plm, which stops sooner when "
        f"the objective falls by less than {PLM_TOLERANCE:g} over {PLM_CHECK_EVERY} iterations, "
        "chosen by leave-one-family-out; 600 factored)",
    )
    lbfgs_history: int | None = integer(
        None, 1, none=True, group=_FIT, help="L-BFGS memory (default 5 plm, 20 factored)"
    )
    n_heads: int = integer(_C.n_heads, 1, group=_FIT, help="factored attention heads")
    key_dim: int = integer(_C.key_dim, 1, group=_FIT, help="factored attention query/key width")
    kernel: str = choice(
        _C.kernel, ("auto", "sparse", "dense", "dense-bf16"), group=_FIT,
        help="coupling contraction (default auto: sparse on CPU, dense on CUDA)",
    )
    dtype: Literal["float32", "float64"] = choice(
        _C.dtype, ("float32", "float64"), group=_FIT, help="precision of the fit"
    )
    score_gap: Literal["exclude", "include"] | None = choice(
        None, ("exclude", "include"), none=True, group=_FIT,
        help=f"keep the gap state in the Frobenius score (plmc) or leave it out (CCMpred); "
        f"default {PLM_SCORE_GAP} for plm, exclude for factored; summary.json reports the "
        "precision of both",
    )
    identity_threshold: float = number(
        _C.identity_threshold, 0, 1, low_open=True, group=_ALN,
        help="sequence weights identity threshold",
    )
    focus: bool = boolean(
        _C.focus, group=_ALN,
        help="keep only the columns where the reference sequence has a residue",
    )
    reference: str | None = text(
        None, none=True, group=_ALN, help="reference sequence id (prefix); default the first"
    )
    max_column_gap: float | None = number(
        None, 0, 1, none=True, group=_ALN, help="drop columns with a larger gap fraction"
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
    device: str = text("cpu", flag="", help="torch device: cpu, cuda, cuda:1, ...")
    seed: int = integer(0, 0, 2**63 - 1, flag="", help="seed of the factored model's initial factors")
    memory_limit_gb: float = memory_limit()

    def __post_init__(self) -> None:
        validate(self)
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
    return run_contacts(
        options.alignment, out, config=options.contacts_config(), structure=options.structure,
        chain=options.chain, distances=options.distances, distance_column=options.distance_column,
        structure_sequence=options.structure_sequence, progress=progress, overwrite=overwrite,
    )  # fmt: skip
