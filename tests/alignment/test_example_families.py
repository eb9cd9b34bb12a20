"""Every protein family shipped in ``attnpotts/data`` reads with the numbers of its README."""

from __future__ import annotations

import numpy as np
import pytest

from attnpotts.alignment import (
    EXAMPLES,
    example_files,
    read_alignment,
    read_distance_table,
    sequence_weights,
)

#: name, sequences, unique sequences, width (the folders' READMEs)
FAMILIES = [
    ("PF00014", 13600, 8871, 53),
    ("PF00076_2X1B", 3658, 3658, 71),
]


def test_every_shipped_family_is_listed() -> None:
    assert sorted(EXAMPLES) == sorted(f[0] for f in FAMILIES)


@pytest.mark.parametrize(("name", "n", "unique", "width"), FAMILIES)
def test_example_family(name: str, n: int, unique: int, width: int) -> None:
    files = example_files(name)
    msa = read_alignment(files.alignment)
    assert (msa.n_sequences, msa.n_sites) == (n, width)
    sw = sequence_weights(msa.states, threshold=0.8)
    assert sw.n_unique == unique
    assert 1.0 <= sw.n_eff <= sw.n_unique
    assert np.isclose(sw.weights.sum(), sw.n_eff)
    table = read_distance_table(files.distances, n_sites=width)
    assert table.n_sites == width
    # every folder states its source and licence
    readme = (files.alignment.parent / "README.md").read_text()
    assert "Source" in readme and "MIT" in readme


def test_structure_files_of_the_family_with_a_structure() -> None:
    files = example_files("PF00076_2X1B")
    assert files.structure is not None and files.structure.is_file()
    assert files.structure_sequence is not None and files.column_map is not None
    aligned = files.structure_sequence.read_text().split()[-1]
    assert len(aligned) == 71
    assert example_files("PF00014").structure is None
