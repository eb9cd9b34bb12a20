"""File formats of contact scores and Potts parameters, ours and the peer DCA tools' (no torch).

* :mod:`~attnpotts.formats.contacts`: CCMpred-style score matrices (``.mat``), plmc's EC tables
  (and a TSV keeping the alignment columns), plmc's EC numbering.
* :mod:`~attnpotts.formats.couplings`: fitted couplings with alphabet and column map in the one
  Potts ``.npz`` format (:mod:`attnpotts.potts.npz`).
* :mod:`~attnpotts.formats.plmc`, :mod:`~attnpotts.formats.ccmpred`,
  :mod:`~attnpotts.formats.adabmdca`: the tools' parameter files, imported into
  :class:`ImportedParameters` (canonical layout, attnpotts alphabet order; see
  :mod:`~attnpotts.formats.parameters`) and exported from fields and couplings.
"""

from .adabmdca import ADABMDCA_PROTEIN_ALPHABET, read_adabmdca_params, write_adabmdca_params
from .ccmpred import CCMPRED_ALPHABET, read_ccmpred_raw, write_ccmpred_braw
from .contacts import (
    EC_TSV_HEADER,
    ec_numbering,
    read_ec_table,
    read_score_matrix,
    write_ec_table,
    write_ec_tsv,
    write_score_matrix,
)
from .couplings import NPZ_FORMAT_VERSION, CouplingsFile, load_couplings_npz, save_couplings_npz
from .parameters import ImportedParameters
from .plmc import read_plmc_params

__all__ = [
    "ADABMDCA_PROTEIN_ALPHABET",
    "CCMPRED_ALPHABET",
    "EC_TSV_HEADER",
    "NPZ_FORMAT_VERSION",
    "CouplingsFile",
    "ImportedParameters",
    "ec_numbering",
    "load_couplings_npz",
    "read_adabmdca_params",
    "read_ccmpred_raw",
    "read_ec_table",
    "read_plmc_params",
    "read_score_matrix",
    "save_couplings_npz",
    "write_adabmdca_params",
    "write_ccmpred_braw",
    "write_ec_table",
    "write_ec_tsv",
    "write_score_matrix",
]
