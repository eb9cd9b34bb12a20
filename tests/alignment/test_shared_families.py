"""(slow) Every alignment of ../shared/data/proteins reads with the numbers of its README."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnpotts.alignment import read_alignment, read_distance_table, sequence_weights

PROTEINS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "proteins"

#: folder, alignment, sequences, unique sequences (None: not given), width (README tables)
FAMILIES = [
    ("PF00014", "PF00014_mgap6.fasta.gz", 13600, 8871, 53),
    ("PF00035", "PF00035_full.fasta", 35979, 18462, 67),
    ("PF00200", "PF00200.fasta", 19035, 8804, 76),
    ("PF00595", "PF00595_mgap6.fasta.gz", 36690, 15299, 82),
    ("PF13354", "PF13354_wo_ref_seqs.fasta.gz", 7515, None, 202),
    ("PF00072_1MVO", "PF00072.align.80", 15260, None, 119),
    ("PF00076_2X1B", "PF00076.align.80", 3658, None, 71),
    ("PF00550_1T8K", "PF00550.align.80", 6130, None, 72),
]


@pytest.mark.slow
@pytest.mark.parametrize(("folder", "name", "n", "unique", "width"), FAMILIES)
def test_shared_family(folder: str, name: str, n: int, unique: int | None, width: int) -> None:
    path = PROTEINS / folder / name
    if not path.is_file():
        pytest.skip(f"shared protein data not found at {PROTEINS} (the ../shared checkout)")
    msa = read_alignment(path)
    assert (msa.n_sequences, msa.n_sites) == (n, width)
    sw = sequence_weights(msa.states, threshold=0.8)
    if unique is not None:
        assert sw.n_unique == unique
    assert 1.0 <= sw.n_eff <= sw.n_unique
    assert np.isclose(sw.weights.sum(), sw.n_eff)
    table = read_distance_table(PROTEINS / folder / f"{folder}.distances.tsv", n_sites=width)
    assert table.n_sites == width
