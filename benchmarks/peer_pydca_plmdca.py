"""Run pydca's plmDCA (a PyPI peer, C++ backend with OpenMP) on an alignment; write L x L scores.

Runs in a separate environment with pydca installed (not attnpotts'). pydca 1.23 pins numpy
<= 1.15.4, which does not build on Python 3.11; its code runs with current packages when installed
without its pins (only its sequence back-mapper needs the removed ``Bio.SubsMat``, not used here):

    python3.11 -m venv /tmp/pydca_venv
    /tmp/pydca_venv/bin/pip install numpy scipy biopython numba matplotlib requests setuptools wheel
    /tmp/pydca_venv/bin/pip install --no-deps --no-build-isolation pydca==1.23
    /tmp/pydca_venv/bin/python benchmarks/peer_pydca_plmdca.py ALN.fasta[.gz] OUT.npy [THREADS]

pydca's defaults: 80% identity reweighting, lambda_h = lambda_J = 0.2 (L - 1), at most 100
L-BFGS iterations; score: Frobenius norm of the couplings without the gap state, APC. Prints a
JSON line with the wall time of reading + weights + fit + scores.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
import time

import numpy as np


def main() -> int:
    src, out = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    t0 = time.perf_counter()
    from pydca.plmdca.plmdca import PlmDCA

    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rt") as fh:
        text = fh.read()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "msa.fasta")  # pydca reads a plain FASTA file
        with open(path, "w") as fh:
            fh.write(text)
        model = PlmDCA(path, "protein", seqid=0.8, num_threads=threads)
        pairs = model.compute_sorted_FN_APC()
    L = 1 + max(max(p) for p, _ in pairs)
    scores = np.zeros((L, L))
    for (i, j), s in pairs:
        scores[i, j] = scores[j, i] = s
    np.save(out, scores)
    print(json.dumps({"wall_s": time.perf_counter() - t0, "L": int(L)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
