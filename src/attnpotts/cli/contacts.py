"""``attnpotts contacts``: predict residue contacts from a protein alignment (DCA)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from ..dca.fit import (
    PLM_CHECK_EVERY,
    PLM_MAX_ITER,
    PLM_REGULARIZATION,
    PLM_SCORE_GAP,
    PLM_TOLERANCE,
)
from ..dca.pipeline import ContactsConfig, run_contacts
from ..dca.regularization import CONVENTIONS, DEFAULT_REGULARIZATION
from .common import add_common_arguments, resolve_config

__all__ = ["register", "run"]

_EPILOG = """examples:
  attnpotts contacts PF00014.fasta.gz --out runs/pf14
      full Potts model by symmetric pseudo-likelihood (L-BFGS), 80% identity weights,
      lambda_J = 0.03 (L-1)(q-1), lambda_h = 0.01 (EVcouplings/GREMLIN convention), L-BFGS
      until the objective falls by less than 1% over 10 iterations (at most 100)
  attnpotts contacts PF00014.fasta.gz --out runs/pf14 --distances PF00014.distances.tsv
      also writes precision at top L, L/2, L/5, L/10 (8 A, |i-j| >= 6) into summary.json
  attnpotts contacts family.a2m --out runs/fam --focus --structure 1ABC.pdb --chain A
  attnpotts contacts PF00076.align.80 --out runs/rrm --structure 2X1B_A.pdb --chain A \
      --structure-sequence PF00076_domain_sequence.txt   # the PDB chain's row, aligned
  attnpotts contacts family.a3m --out runs/fa --model factored --n-heads 32
  attnpotts contacts aln.fasta --out runs/c --regularization ccmpred --lambda-j 0.2

output folder: summary.json, config.json, scores.mat (CCMpred), ec.txt (plmc's EC layout
'i A_i j A_j 0 cn', focus-sequence numbering with --focus, else alignment columns), ec.tsv (the
same with the alignment columns kept), couplings.npz (couplings (L, L, q, q), fields (L, q), column map, conventions),
column_map.tsv, contact_map.png
"""


def _defaults() -> dict[str, Any]:
    # lambda_j / max_iter / lbfgs_history / score_gap stay None: their defaults depend on --model
    # (ContactsConfig resolves them)
    return {k: v for k, v in dataclasses.asdict(ContactsConfig()).items() if k not in ("seed", "device")} | {
        "device": None, "lambda_j": None, "max_iter": None, "lbfgs_history": None, "score_gap": None
    }


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``contacts`` subcommand to ``sub`` (the subparsers of ``attnpotts``)."""
    p = sub.add_parser(
        "contacts",
        help="predict residue contacts from a protein alignment (DCA)",
        description=(
            "Fit a Potts model to a multiple sequence alignment by pseudo-likelihood (full model or "
            "factored attention), score residue pairs (Frobenius norm + APC), and write the "
            "scores, couplings and a contact map; evaluate against a structure or distances."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("alignment", help="FASTA (.gz), A2M, A3M, Stockholm or PSICOV alignment")
    add_common_arguments(p, device=True)
    d = ContactsConfig()
    g = p.add_argument_group("model and fit")
    g.add_argument("--model", choices=["plm", "factored"], default=None, help="default plm")
    g.add_argument("--regularization", choices=list(CONVENTIONS), default=None,
                   help=f"L2 convention (default {d.regularization})")
    g.add_argument("--lambda-j", dest="lambda_j", type=float, default=None,
                   help=f"coupling L2 in that convention (default {PLM_REGULARIZATION.lambda_j} plm, "
                   f"{DEFAULT_REGULARIZATION.lambda_j} factored, in the evcouplings convention)")
    g.add_argument("--lambda-h", dest="lambda_h", type=float, default=None,
                   help=f"field L2 in that convention (default {d.lambda_h})")
    g.add_argument("--max-iter", dest="max_iter", type=int, default=None,
                   help=f"cap on the L-BFGS iterations (default {PLM_MAX_ITER} plm, which stops sooner "
                   f"when the objective falls by less than {PLM_TOLERANCE:g} over {PLM_CHECK_EVERY} "
                   "iterations (chosen by leave-one-family-out); 600 factored)")
    g.add_argument("--lbfgs-history", dest="lbfgs_history", type=int, default=None,
                   help="L-BFGS memory (default 5 plm, 20 factored)")
    g.add_argument("--n-heads", dest="n_heads", type=int, default=None,
                   help=f"factored attention heads (default {d.n_heads})")
    g.add_argument("--key-dim", dest="key_dim", type=int, default=None,
                   help=f"factored attention query/key width (default {d.key_dim})")
    g.add_argument("--kernel", choices=["auto", "sparse", "dense", "dense-bf16"], default=None,
                   help="coupling contraction (default auto: sparse on CPU, dense on CUDA)")
    g.add_argument("--dtype", choices=["float32", "float64"], default=None, help="default float32")
    g.add_argument("--score-gap", dest="score_gap", choices=["exclude", "include"], default=None,
                   help=f"keep the gap state in the Frobenius score (plmc) or leave it out (CCMpred); "
                   f"default {PLM_SCORE_GAP} for plm, exclude for factored; summary.json reports "
                   "the precision of both")
    a = p.add_argument_group("alignment")
    a.add_argument("--identity-threshold", dest="identity_threshold", type=float, default=None,
                   help=f"sequence weights identity threshold (default {d.identity_threshold})")
    a.add_argument("--focus", action="store_const", const=True, default=None,
                   help="keep only the columns where the reference sequence has a residue")
    a.add_argument("--reference", default=None, help="reference sequence id (prefix); default the first")
    a.add_argument("--max-column-gap", dest="max_column_gap", type=float, default=None,
                   help="drop columns with a larger gap fraction")
    e = p.add_argument_group("evaluation (optional)")
    src = e.add_mutually_exclusive_group()
    src.add_argument("--structure", default=None, help="PDB or mmCIF file of the reference")
    src.add_argument("--distances", default=None,
                     help="distances TSV (# comments, header 'i j NAME...', columns from 1)")
    e.add_argument("--chain", default=None, help="chain of --structure (default: the first protein chain)")
    e.add_argument("--structure-sequence", dest="structure_sequence", default=None,
                   help="the structure's sequence aligned to the alignment's columns (FASTA or "
                   "'NAME CHAIN SEQUENCE' line); default: the alignment's reference (first) sequence")
    e.add_argument("--distance-column", dest="distance_column", default=None,
                   help="distance column of --distances (default the first) or of --structure "
                   "(d_min_heavy, default, or d_cb)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``attnpotts contacts``; print the key numbers; return 0."""
    defaults = _defaults()
    cfg = resolve_config(args, defaults)
    if cfg.get("device") is None:
        cfg["device"] = "cpu"
    config = ContactsConfig(**cfg)
    summary = run_contacts(
        args.alignment,
        args.out,
        config=config,
        structure=args.structure,
        chain=args.chain,
        distances=args.distances,
        distance_column=args.distance_column,
        structure_sequence=args.structure_sequence,
        progress=not args.no_progress,
        overwrite=bool(args.overwrite),
    )
    conv = summary["convergence"]
    print(
        f"{summary['model']}: N={summary['n_sequences']} (unique {summary['n_unique']}), "
        f"N_eff={summary['n_eff']:.1f}, L={summary['n_sites']}; {conv['iterations']} L-BFGS "
        f"iterations, {conv['evaluations']} evaluations ({conv['stop_reason']}), "
        f"|grad|={conv['final_gradient_norm']:.3g}; "
        f"{summary['wall_seconds']:.1f} s"
    )
    for warning in summary.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    if "precision" in summary:
        prec = ", ".join(f"{k}: {v:.3f}" for k, v in summary["precision"].items())
        print(f"precision (8 A, |i-j| >= 6): {prec}")
    print(f"results in {args.out}")
    return 0
