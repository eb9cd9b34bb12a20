"""Run EVcouplings' mean-field DCA (a PyPI peer) on an alignment; write the L x L CN score matrix.

Runs in a separate environment that has ``evcouplings`` installed (not attnpotts'):
    /tmp/peers_venv/bin/python benchmarks/peer_evcouplings_meanfield.py ALN.fasta[.gz] OUT.npy
Prints a JSON line with the wall time of reading + weights + fit.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import time

import numpy as np


def main() -> int:
    src, out = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    from evcouplings.align import Alignment
    from evcouplings.couplings.mean_field import MeanFieldDCA

    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rt") as fh:
        aln = Alignment.from_file(io.StringIO(fh.read()), format="fasta")
    model = MeanFieldDCA(aln).fit(theta=0.8, pseudo_count=0.5)
    L = aln.L
    scores = np.zeros((L, L))
    ecs = model.ecs
    pos = {int(v): k for k, v in enumerate(model.index_list)}
    for i, j, cn in zip(ecs["i"], ecs["j"], ecs["cn"], strict=True):
        a, b = pos[int(i)], pos[int(j)]
        scores[a, b] = scores[b, a] = cn
    np.save(out, scores)
    print(json.dumps({"wall_s": time.perf_counter() - t0, "L": int(L), "N": int(aln.N)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
