"""``attnpotts contacts``: predict residue contacts from a protein alignment (DCA)."""

from __future__ import annotations

import argparse
from typing import Any

from ..options import add_arguments
from ..workflows._contacts import ContactsOptions, contacts
from .common import HelpFormatter, add_common_arguments, resolve_options

__all__ = ["register", "run"]

_EPILOG = """examples:
  attnpotts contacts PF00014.fasta.gz --out runs/pf14
      full Potts model by symmetric pseudo-likelihood (L-BFGS), 80% identity weights,
      lambda_J = 0.02 (L-1)(q-1), lambda_h = 0.01 (EVcouplings/GREMLIN convention), L-BFGS
      until the objective falls by less than 0.2% over 5 iterations (at most 100)
  attnpotts contacts PF00014.fasta.gz --out runs/pf14 --distances PF00014.distances.tsv
      also writes precision at top L, L/2, L/5, L/10 (8 A, |i-j| >= 6) into summary.json
  attnpotts contacts family.a2m --out runs/fam --focus --structure 1ABC.pdb --chain A
  attnpotts contacts PF00076.align.80 --out runs/rrm --structure 2X1B_A.pdb --chain A \\
      --structure-sequence PF00076_domain_sequence.txt   # the PDB chain's row, aligned
  attnpotts contacts family.a3m --out runs/fa --model factored --n-heads 32
  attnpotts contacts family.a3m --out runs/fl --model factored --max-iter 200
      to its plateau (mean top-L precision about 0.91 on the benchmark families, plm 0.93),
      at several times plm's fit time (docs/dca-measurements.md)
  attnpotts contacts family.a3m --out runs/fs --model factored --symmetric
      symmetric couplings (J_ij + J_ji^T) / 2: better on large alignments, worse on small ones
  attnpotts contacts aln.fasta --out runs/c --regularization ccmpred --lambda-j 0.2

output folder: summary.json, config.json, scores.mat (CCMpred), ec.txt (plmc's EC layout
'i A_i j A_j 0 cn', focus-sequence numbering with --focus, else alignment columns), ec.tsv (the
same with the alignment columns kept), couplings.npz (couplings (L, L, q, q), fields (L, q),
column map, conventions), column_map.tsv, contact_map.png
"""


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``contacts`` subcommand to ``sub``: the alignment and one flag per field of
    :class:`~attnpotts.workflows.ContactsOptions`."""
    p = sub.add_parser(
        "contacts",
        help="predict residue contacts from a protein alignment (DCA)",
        description=(
            "Fit a Potts model to a multiple sequence alignment by pseudo-likelihood (full model or "
            "factored attention), score residue pairs (Frobenius norm + APC), and write the "
            "scores, couplings and a contact map; evaluate against a structure or distances."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("alignment", help="FASTA (.gz), A2M, A3M, Stockholm or PSICOV alignment")
    add_common_arguments(p, device=True)
    add_arguments(p, ContactsOptions)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``attnpotts contacts``; print the key numbers; return 0."""
    from ..plotting import start_renderer

    start_renderer()  # matplotlib loads in a helper process while torch loads and the fit runs here
    options = resolve_options(args, ContactsOptions)
    summary = contacts(options, args.out, overwrite=bool(args.overwrite), progress=not args.no_progress)
    conv = summary["convergence"]
    print(
        f"{summary['model']}: N={summary['n_sequences']} (unique {summary['n_unique']}"
        + (f", fitted {summary['n_fitted']}" if summary["n_fitted"] != summary["n_unique"] else "")
        + "), "
        f"N_eff={summary['n_eff']:.1f}, L={summary['n_sites']}; {conv['iterations']} L-BFGS "
        f"iterations, {conv['evaluations']} evaluations ({conv['stop_reason']}), "
        f"|grad|={conv['final_gradient_norm']:.3g}; "
        f"{summary['wall_seconds']:.1f} s"
    )
    if summary.get("warnings"):  # each was printed on stderr when it arose (logged)
        n = len(summary["warnings"])
        print(f"{n} warning{'s' if n > 1 else ''} (printed above; summary.json 'warnings')")
    if "precision" in summary:
        prec = ", ".join(
            f"{k}: {v:.3f}" if v is not None and v == v else f"{k}: n/a"  # undefined (said above)
            for k, v in summary["precision"].items()
        )
        print(f"precision (8 A, |i-j| >= 6): {prec}")
    print(f"results in {args.out}")
    return 0
