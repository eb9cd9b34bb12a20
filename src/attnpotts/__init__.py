"""attnpotts: factored attention learns generalized Potts models.

Rende, Gerace, Laio & Goldt, Phys. Rev. Research 6, 023057 (2024), as a library: generalized Potts
models and their samplers, factored attention and transformers trained by masked language
modelling (= pseudo-likelihood), the exact attention -> Potts mapping, the replica theory of the
generalization error, and direct coupling analysis of protein alignments.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
