"""The contact-prediction pipeline: alignment -> weights -> fit -> scores -> outputs.

:func:`run_contacts` reads an alignment, computes sequence weights, fits a :class:`PlmDCA` or a
:class:`FactoredDCA`, scores pairs (Frobenius norm of the zero-sum-gauged blocks without the gap
state, then APC), optionally evaluates against a structure or a distances TSV, and writes an
output folder atomically. Every output carries the map back to the original alignment columns.

Output folder (``OUT_FILES``):

* ``summary.json``: ``n_sequences``, ``n_unique``, ``n_fitted`` (rows fitted), ``n_eff``, ``n_sites``, ``n_states``,
  ``wall_seconds`` (whole run, reading included), ``model``, ``convergence`` (iterations, final
  gradient norm, stop reason, last relative objective decrease), ``warnings`` (e.g. a fit that
  ran out of iterations far from convergence), ``conventions`` (weights, regularisation with its equivalents in
  every convention, gauge, score), ``memory_estimate_gib`` and, with distances,
  ``precision`` (``"L"``, ``"L/2"``, ``"L/5"``, ``"L/10"`` at 8 A and ``|i - j| >= 6``) and
  ``precision_table`` (separations 6, 12, 24);
* ``config.json``: the resolved configuration, seed and versions;
* ``scores.mat``: CCMpred-style ``L x L`` score matrix (rows/columns = the fitted columns, listed
  in ``column_map.tsv``);
* ``ec.txt``: EC file in plmc's layout ``i A_i j A_j 0 cn`` by decreasing score, numbered by the
  focus sequence's residues when it covers every fitted column (``--focus``), else by the
  original alignment columns (1-based) with ``-`` residues (:func:`attnpotts.formats.ec_numbering`);
* ``ec.tsv``: the same pairs with a header, the original alignment columns kept as columns;
* ``couplings.npz``: couplings ``(L, L, q, q)`` and fields ``(L, q)`` as fitted (the layout of
  :func:`attnpotts.formats.save_couplings_npz`, with the column map and the conventions);
  for factored attention whose ``J`` would take more than half the memory limit (``L`` of
  several hundred), ``factors.npz`` instead (attention ``(H, L, L)``, values ``(H, q, q)``,
  fields, ``symmetric``; ``J[i, j, a, b] = sum_h attention[h, i, j] values[h, a, b]``, and with
  ``symmetric`` true (``--symmetric``) the mean of that and ``J[j, i, b, a]``) and
  ``summary["couplings_file"] = "factors.npz"``;
* ``column_map.tsv``: fitted column (1-based) -> original column (1-based), reference residue,
  reference residue number;
* ``contact_map.png``: top-``L`` predictions over the true contacts (if known).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ShapeError, ValidationError
from .config import ContactsConfig

__all__ = ["OUT_FILES", "ContactsConfig", "read_aligned_reference", "run_contacts"]

logger = logging.getLogger(__name__)

#: Files written by :func:`run_contacts` (``contact_map.png`` always; distances optional).
OUT_FILES = (
    "summary.json",
    "config.json",
    "scores.mat",
    "ec.txt",
    "ec.tsv",
    "couplings.npz",
    "column_map.tsv",
    "contact_map.png",
)

CONTACT_CUTOFF = 8.0
MIN_SEPARATION = 6


def read_aligned_reference(path: str | os.PathLike[str]) -> str:
    """Read an aligned reference sequence: FASTA (first record) or a line whose last field is it.

    The second form is that of the ``*_domain_sequence.txt`` files (``PFAM PDB_CHAIN SEQUENCE``).
    """
    from ..errors import DataFormatError
    from ..storage import read_bounded

    p = Path(path)
    raw = read_bounded(p, 64 * 1024**2, what="a structure-sequence file")
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"is not UTF-8 text ({exc.reason} at byte {exc.start}), expected a "
                              "structure-sequence file (FASTA or 'NAME CHAIN SEQUENCE')", path=p) from None
    lines = [ln.strip() for ln in content.splitlines() if ln.strip()]
    if not lines:
        raise DataFormatError("empty reference sequence file", path=p)
    if lines[0].startswith(">"):
        seq = []
        for ln in lines[1:]:
            if ln.startswith(">"):
                break
            seq.append(ln)
        text = "".join(seq)
    else:
        text = lines[0].split()[-1]
    if not text:
        raise DataFormatError("no sequence found", path=p, line=1)
    return text


def _true_distances(
    msa: Any,
    structure: str | os.PathLike[str] | None,
    chain: str | None,
    distances: str | os.PathLike[str] | None,
    distance_column: str | None,
    aligned_reference: str | None = None,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """``(L, L)`` distances between the fitted columns, and a description of their source."""
    from ..alignment import read_distance_table, structure_distances

    if structure is not None and distances is not None:
        raise ValidationError("give either a structure or a distances table, not both")
    if structure is not None:
        if aligned_reference is not None:
            if len(aligned_reference) != msa.n_original_columns:
                raise ShapeError(
                    f"the structure's aligned sequence has {len(aligned_reference)} columns, the "
                    f"alignment {msa.n_original_columns}; it must be aligned to the same columns"
                )
            ref = "".join(aligned_reference[int(c)] for c in msa.column_map)
        elif msa.reference is None:
            raise ValidationError("mapping a structure needs a reference sequence in the alignment")
        else:
            ref = msa.reference.residues
        sd = structure_distances(structure, ref, chain=chain)
        name = distance_column or "d_min_heavy"
        if name not in sd.distances:
            raise ValidationError(f"no distance kind {name!r}; choose one of {sorted(sd.distances)}")
        info = {
            "source": os.fspath(structure),
            "chain": sd.structure.chain,
            "distance": name,
            "reference_residue_columns": sum(c not in "-." for c in ref),
            "mapped_columns": sd.mapping.n_mapped,
            "identity_to_reference": sd.mapping.identity,
        }
        return sd.distances[name], info
    if distances is not None:
        table = read_distance_table(distances, n_sites=None)
        D_full = table.get(distance_column)
        n_orig = int(msa.n_original_columns)
        if D_full.shape[0] > n_orig:
            raise ShapeError(
                f"{distances} numbers columns up to {D_full.shape[0]}, the alignment has {n_orig}; "
                "the table must be numbered in the alignment's columns (from 1)"
            )
        D = np.full((n_orig, n_orig), np.nan)
        D[: D_full.shape[0], : D_full.shape[0]] = D_full
        cols = np.asarray(msa.column_map, dtype=np.int64)
        info = {"source": os.fspath(distances), "distance": distance_column or table.names[0]}
        return D[np.ix_(cols, cols)], info
    return None, {}


#: Below these, a structure mapped through the reference sequence is likely another protein's.
MIN_MAPPED_FRACTION, MIN_MAPPED_IDENTITY = 0.5, 0.9


def _distance_warnings(D: np.ndarray | None, info: dict[str, Any]) -> list[str]:
    """What makes the precision against these distances meaningless or partial, said before the
    fit: a structure that covers few of the reference's columns or differs from it, and no pair
    the precision could count."""
    if D is None:
        return []
    notes = []
    n_ref, n_mapped = info.get("reference_residue_columns"), info.get("mapped_columns")
    fix = ("if the chain is not the reference sequence's own protein, give the chain's row aligned "
           "to the alignment (--structure-sequence) or choose the reference (--reference ID)")
    if n_ref and n_mapped is not None and n_mapped < MIN_MAPPED_FRACTION * n_ref:
        notes.append(f"the structure covers only {n_mapped} of the reference's {n_ref} residue "
                     f"columns; {fix}")
    elif n_mapped and info["identity_to_reference"] < MIN_MAPPED_IDENTITY:
        notes.append(f"only {info['identity_to_reference']:.0%} of the {n_mapped} residues mapped "
                     f"to the structure match the reference sequence; {fix}")
    L = D.shape[0]
    i, j = np.triu_indices(L, k=MIN_SEPARATION)
    if not np.isfinite(D[i, j]).any():
        notes.append(f"no pair of fitted columns with |i - j| >= {MIN_SEPARATION} has a known "
                     "distance, so the precision is undefined (null in summary.json)")
    return notes


def run_contacts(
    alignment: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    config: ContactsConfig | None = None,
    structure: str | os.PathLike[str] | None = None,
    chain: str | None = None,
    distances: str | os.PathLike[str] | None = None,
    distance_column: str | None = None,
    structure_sequence: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    extra_config: dict[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Predict contacts from ``alignment`` and write the output folder ``out`` (see module doc).

    ``progress``: show the fit's iterations with objective and ETA on stderr.

    Args:
        alignment: FASTA (``.gz``), A2M, A3M, Stockholm or PSICOV file.
        out: output folder (assembled under a temporary name, renamed when complete).
        config: options (:class:`ContactsConfig`).
        structure, chain: a PDB/mmCIF file and chain to evaluate against (reference mapped).
        distances, distance_column: a distances TSV (columns numbered from 1 in the alignment).
        structure_sequence: file with the structure's sequence aligned to the alignment's columns
            (FASTA, or ``*_domain_sequence.txt``); default: the alignment's reference sequence.
        overwrite: replace an existing non-empty ``out``.
        extra_config: more entries for ``config.json`` (e.g. the CLI's arguments).

    Returns:
        The summary written to ``summary.json``.
    """
    from ..alignment import data_warnings, read_alignment
    from ..evaluation import precision_at, precision_table
    from ..formats import (
        ec_numbering,
        save_couplings_npz,
        write_ec_table,
        write_ec_tsv,
        write_score_matrix,
    )
    from ..storage import atomic_output_dir, atomic_write_json, atomic_write_text, environment_info

    t0 = time.perf_counter()
    cfg = ContactsConfig() if config is None else config
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"output folder {out} exists and is not empty; choose another --out or pass --overwrite")
    msa = read_alignment(
        alignment, reference=cfg.reference, focus=cfg.focus, max_column_gap=cfg.max_column_gap
    )
    aligned_ref = None if structure_sequence is None else read_aligned_reference(structure_sequence)
    D, dist_info = _true_distances(msa, structure, chain, distances, distance_column, aligned_ref)
    distance_notes = _distance_warnings(D, dist_info)
    for note in distance_notes:
        logger.warning("%s: %s", dist_info["source"], note)
    from .fit import prepare_data  # torch: loaded once every input has been read and checked

    data = prepare_data(msa, identity_threshold=cfg.identity_threshold)
    # degenerate data (one sequence, tiny N_eff, constant or empty columns): said before the fit
    data_notes = data_warnings(msa.states, gap_index=data.gap_index, n_eff=data.n_eff)
    for note in data_notes:
        logger.warning("alignment %s: %s", os.fspath(alignment), note)
    from ..training import IterationProgress

    callbacks = [IterationProgress(f"contacts {cfg.model}")] if progress else []
    est = cfg.estimator().fit(data, callbacks=callbacks)
    scores = est.scores_
    L = msa.n_sites
    columns = msa.columns  # (L,) 1-based original columns
    ref_res = msa.reference.residues if msa.reference is not None else "-" * L
    ref_num = (
        np.asarray(msa.reference.residue_numbers) if msa.reference is not None else np.full(L, -1)
    )
    # plmc numbers ECs by the focus sequence only in focus mode; so do we (--focus)
    ec_numbers, ec_residues, ec_scheme = (
        ec_numbering(columns, ref_num, ref_res) if cfg.focus else ec_numbering(columns)
    )
    ec_scheme_text = (
        "residue numbers of the focus sequence"
        if ec_scheme == "focus"
        else "original 1-based alignment columns (no --focus)"
    )
    conventions = {
        "weights": {
            "scheme": "inverse number of neighbours at >= identity_threshold identity (self included); "
            "N_eff = sum of weights; duplicates collapsed into weights"
            + ("; each group of neighbours fitted as its leader with the group's weight"
               if cfg.collapse == "neighbours" else ""),
            "identity_threshold": cfg.identity_threshold,
            "collapse": cfg.collapse,
        },
        "regularization": est.regularization_,
        "model": "full Potts, symmetric pseudo-likelihood" if cfg.model == "plm" else (
            f"factored attention (softmax, H={cfg.n_heads}, d={cfg.key_dim}"
            f"{', symmetric couplings' if cfg.symmetric else ''}), MLM on all positions, "
            f"{getattr(est, 'start_', 'random')} start"
        ),
        "gauge_of_couplings_npz": "as fitted (no gauge fixing); scores use the zero-sum gauge",
        "score": "Frobenius norm of zero-sum-gauged J[i, j] "
        + ("without the gap state" if cfg.score_gap == "exclude" else "with the gap state (plmc)")
        + ", then APC",
        "contact": f"distance < {CONTACT_CUTOFF} A, |i - j| >= {MIN_SEPARATION} (fitted columns)",
        "columns": "scores.mat, couplings.npz: fitted columns in order; ec.txt, ec.tsv: "
        + ec_scheme_text
        + "; ec.tsv also the original 1-based columns; column_map.tsv: the map",
    }
    summary: dict[str, Any] = {
        "alignment": os.fspath(alignment),
        "model": cfg.model,
        "n_sequences": int(msa.n_sequences),
        "n_unique": int(est.n_unique_),
        "n_fitted": int(est.n_fitted_),
        "n_eff": float(est.n_eff_),
        "n_sites": int(L),
        "n_states": int(msa.q),
        "n_original_columns": int(msa.n_original_columns),
        "reference": None if msa.reference is None else msa.reference.id,
        "convergence": est.convergence_dict(),
        # distances that cannot score the fit, degenerate data (alignment.data_warnings), then a
        # fit stopped by its iteration budget far from convergence (ConvergenceReport)
        "warnings": [*distance_notes, *data_notes, *(w for w in (est.convergence_.warning,) if w)],
        "memory_estimate_gib": est.memory_estimate_.total_gib,
        "conventions": conventions,
    }
    if D is not None:
        summary["distances"] = dist_info
        summary["precision"] = precision_at(
            scores, D, cutoff=CONTACT_CUTOFF, min_separation=MIN_SEPARATION
        )
        summary["precision_table"] = precision_table(scores, D, cutoff=CONTACT_CUTOFF)
        # both common scores, so results compare with plmc (gap kept) and CCMpred (gap left out)
        summary["precision_by_score"] = {
            f"gap_{name}d": precision_at(
                est.scores_for(ex), D,
                cutoff=CONTACT_CUTOFF, min_separation=MIN_SEPARATION,
            )
            for name, ex in (("exclude", msa.alphabet.gap_index), ("include", None))
        }
    resolved = dataclasses.asdict(cfg)
    config_record = {
        "config": resolved,
        "seed": cfg.seed,
        "inputs": {
            "alignment": os.fspath(alignment),
            "structure": None if structure is None else os.fspath(structure),
            "chain": chain,
            "distances": None if distances is None else os.fspath(distances),
            "distance_column": distance_column,
            "structure_sequence": None if structure_sequence is None else os.fspath(structure_sequence),
        },
        "environment": environment_info(),
    }
    if extra_config:
        config_record.update(extra_config)
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        write_score_matrix(tmp / "scores.mat", scores)
        write_ec_table(tmp / "ec.txt", scores, numbers=ec_numbers, residues=ec_residues)
        write_ec_tsv(
            tmp / "ec.tsv", scores, columns=columns, numbers=ec_numbers, residues=ec_residues
        )
        metadata = {"tool": "attnpotts contacts", **{k: v for k, v in conventions.items() if k != "regularization"},
                    "regularization": est.regularization_["given"]}
        if _couplings_fit(cfg, L, int(msa.q)):
            save_couplings_npz(
                tmp / "couplings.npz",
                est.couplings_,
                est.fields_,
                alphabet=msa.alphabet,
                columns=columns,
                reference=ref_res,
                reference_numbers=ref_num,
                metadata=metadata,
            )
        else:  # factored attention too long for J in memory: its factors define J
            _save_factors(tmp / "factors.npz", est, columns, metadata)
            summary["couplings_file"] = "factors.npz"
        lines = ["# fitted column (1-based) -> original alignment column (1-based), reference residue, "
                 "reference residue number (-1: gap)", "column\toriginal_column\treference_residue\treference_number"]
        lines += [f"{k + 1}\t{int(columns[k])}\t{ref_res[k]}\t{int(ref_num[k])}" for k in range(L)]
        atomic_write_text(tmp / "column_map.tsv", "\n".join(lines) + "\n")
        _write_figure(tmp / "contact_map.png", scores, D, title=f"{Path(alignment).name} ({cfg.model})")
        summary["wall_seconds"] = time.perf_counter() - t0
        atomic_write_json(tmp / "config.json", config_record)
        atomic_write_json(tmp / "summary.json", summary)
    if D is not None:
        logger.info("precision: %s", summary["precision"])
    if not math.isfinite(summary["wall_seconds"]):  # pragma: no cover - defensive
        raise ValidationError("wall time is not finite")
    return summary


def _couplings_fit(cfg: ContactsConfig, n_sites: int, n_states: int) -> bool:
    """Whether ``couplings.npz`` is written: always for plm; for factored attention when ``J``
    (float64, and the writer's copy) takes at most half the memory limit."""
    if cfg.model == "plm":
        return True
    return 2 * 8 * n_sites**2 * n_states**2 <= 0.5 * cfg.memory_limit_gb * 1024**3


def _save_factors(path: Path, est: Any, columns: np.ndarray, metadata: dict[str, Any]) -> None:
    """``factors.npz``: ``attention (H, L, L)``, ``values (H, q, q)``, ``fields (L, q)``,
    ``columns``, ``symmetric``; ``J[i, j, a, b] = sum_h attention[h, i, j] values[h, a, b]``, or
    with ``symmetric`` its symmetric part ``(J[i, j, a, b] + J[j, i, b, a]) / 2``."""
    import io
    import json

    import torch

    from ..storage import atomic_write_bytes

    model = est.model_
    with torch.no_grad():
        A = model.attention_matrices().detach().cpu().numpy()
        V = model.value_matrices().detach().cpu().numpy()
    buf = io.BytesIO()
    np.savez_compressed(buf, attention=A, values=V, fields=est.fields_, columns=np.asarray(columns),
                        symmetric=np.array(bool(model.symmetric)),
                        metadata=np.array(json.dumps(metadata, default=str)))
    atomic_write_bytes(path, buf.getvalue())


def _write_figure(path: Path, scores: np.ndarray, D: np.ndarray | None, *, title: str) -> None:
    """The contact map, drawn by the helper process if the caller started one
    (:func:`attnpotts.plotting.start_renderer`)."""
    from ..plotting import render_png
    from ..storage import atomic_write_bytes

    png = render_png("plot_contact_map", scores, D, top=scores.shape[0], cutoff=CONTACT_CUTOFF,
                     min_separation=MIN_SEPARATION, title=title)
    atomic_write_bytes(path, png)
