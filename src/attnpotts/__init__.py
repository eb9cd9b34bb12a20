"""attnpotts: factored attention learns generalized Potts models.

Rende, Gerace, Laio & Goldt, Phys. Rev. Research 6, 023057 (2024), as a library: generalized Potts
models and their samplers, factored attention and transformers trained by masked language
modelling (= pseudo-likelihood), the exact attention -> Potts mapping, the replica theory of the
generalization error, and direct coupling analysis of protein alignments.
"""

from __future__ import annotations

import os
import sys

__version__ = "0.1.0"

__all__ = ["__version__"]

# torch and numba each bring their own OpenMP runtime. With OpenMP's default spin-waiting, the idle
# threads of one keep the cores busy while the other works: a torch operation right after a numba
# kernel ran 40-100x slower on a 2-core machine (docs/conventions.md, "Threads"). Idle threads that
# sleep avoid it. The runtimes read this when they load, so it only applies if attnpotts is
# imported first; a value the user set is kept.
if "torch" not in sys.modules and "numba" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
