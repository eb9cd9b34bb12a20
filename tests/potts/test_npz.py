"""The one Potts ``.npz`` format: round trips, cross-loading, and files of the old versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attnpotts.alphabet import PROTEIN, Alphabet
from attnpotts.errors import DataFormatError, ShapeError
from attnpotts.formats import load_couplings_npz, save_couplings_npz
from attnpotts.potts import (
    POTTS_NPZ_VERSION,
    ConditionalPotts,
    PottsModel,
    read_potts_npz,
    write_potts_npz,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(DATA / "legacy_expected.npz") as z:
        return {k: z[k] for k in z.files}


def test_old_model_files_load_exactly(expected: dict[str, np.ndarray]) -> None:
    m = ConditionalPotts.load(DATA / "legacy_factored_model.npz")
    assert type(m) is PottsModel and m.beta == 0.7
    np.testing.assert_array_equal(m.couplings, expected["factored_couplings"])
    np.testing.assert_array_equal(m.fields, expected["fields"])
    np.testing.assert_array_equal(m.site_couplings, expected["site"])
    np.testing.assert_array_equal(m.colour_couplings, expected["colour"])
    c = ConditionalPotts.load(DATA / "legacy_conditional_model.npz")
    assert type(c) is ConditionalPotts and c.beta == 1.3
    np.testing.assert_array_equal(c.couplings, expected["couplings"])
    np.testing.assert_array_equal(c.fields, expected["fields"])
    assert read_potts_npz(DATA / "legacy_conditional_model.npz").format_version == 1


def test_old_couplings_files_load_exactly(expected: dict[str, np.ndarray]) -> None:
    f = load_couplings_npz(DATA / "legacy_couplings_protein.npz")
    pad = ((0, 0), (0, 0), (0, 18), (0, 18))
    np.testing.assert_array_equal(f.couplings, np.pad(expected["couplings_sym"], pad))
    np.testing.assert_array_equal(f.fields, np.pad(expected["fields"], ((0, 0), (0, 18))))
    assert f.alphabet is PROTEIN
    np.testing.assert_array_equal(f.columns, [2, 3, 5, 8])
    assert f.reference == "ACD-"
    np.testing.assert_array_equal(f.reference_numbers, [10, 11, 12, -1])
    assert f.metadata == {"tool": "attnpotts plm", "gauge": "zero-sum", "coupling_l2": 0.01}
    r = load_couplings_npz(DATA / "legacy_couplings_rna.npz")
    assert r.alphabet.symbols == "ACG" and r.alphabet.gap is None
    np.testing.assert_array_equal(r.couplings, expected["couplings_sym"])
    np.testing.assert_array_equal(r.columns, [1, 2, 3, 4])
    np.testing.assert_array_equal(r.reference_numbers, [-1] * 4)
    assert r.reference == "" and r.metadata == {}
    # an old couplings file is a Potts model too (beta = 1)
    m = PottsModel.load(DATA / "legacy_couplings_rna.npz")
    assert m.beta == 1.0
    np.testing.assert_array_equal(m.couplings, expected["couplings_sym"])


def test_one_format_for_models_and_couplings(tmp_path: Path, expected: dict[str, np.ndarray]) -> None:
    J, h = expected["couplings_sym"], expected["fields"]
    path = save_couplings_npz(
        tmp_path / "c.npz", J, h, alphabet=Alphabet("ACG"), columns=[3, 4, 7, 9],
        metadata={"tool": "test"},
    )  # fmt: skip
    f = read_potts_npz(path)
    assert f.format_version == POTTS_NPZ_VERSION and f.kind == "ConditionalPotts" and f.beta == 1.0
    assert f.info == {"tool": "test"}
    model = ConditionalPotts.load(path)
    np.testing.assert_array_equal(model.couplings, J)
    np.testing.assert_array_equal(model.fields, h)
    # a model file with an alphabet is a couplings file too
    write_potts_npz(tmp_path / "m.npz", J, h, beta=0.5, kind="PottsModel", alphabet=Alphabet("ACG"))
    back = load_couplings_npz(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.couplings, J)
    np.testing.assert_array_equal(back.columns, [1, 2, 3, 4])
    assert PottsModel.load(tmp_path / "m.npz").beta == 0.5
    # a model file without one is not
    PottsModel(h, J).save(tmp_path / "plain.npz", info={"note": "x"})
    assert read_potts_npz(tmp_path / "plain.npz").info == {"note": "x"}
    with pytest.raises(DataFormatError, match="no alphabet"):
        load_couplings_npz(tmp_path / "plain.npz")


def test_newer_versions_and_foreign_metadata_are_refused(tmp_path: Path) -> None:
    path = PottsModel(None, np.zeros((2, 2, 2, 2))).save(tmp_path / "m.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["metadata"]))
    np.savez(path, **{**arrays, "metadata": np.array(json.dumps({**meta, "format_version": 3}))})
    with pytest.raises(DataFormatError, match="newer"):
        read_potts_npz(path)
    np.savez(path, **{**arrays, "metadata": np.array(json.dumps({**meta, "info": [1]}))})
    with pytest.raises(DataFormatError, match="info"):
        read_potts_npz(path)
    np.savez(path, **{**arrays, "format_version": np.array(2)})
    with pytest.raises(DataFormatError, match="newer"):
        read_potts_npz(path)
    np.savez(path, **{**arrays, "couplings": np.ones((2, 2, 2, 2))})
    with pytest.raises(DataFormatError, match=r"J\[i, i\]"):
        read_potts_npz(path)
    np.savez(path, **{**arrays, "columns": np.array([1, 2, 3])})
    with pytest.raises(DataFormatError, match="columns"):
        read_potts_npz(path)
    np.savez(path, **{**arrays, "alphabet": np.array("ACG"), "gap": np.array("")})
    with pytest.raises(DataFormatError, match="alphabet"):
        read_potts_npz(path)


def test_writer_refuses_inconsistent_arrays(tmp_path: Path) -> None:
    J = np.zeros((3, 3, 2, 2))
    with pytest.raises(ShapeError, match="alphabet"):
        write_potts_npz(tmp_path / "x.npz", J, alphabet=PROTEIN)
    with pytest.raises(ShapeError, match="fields"):
        write_potts_npz(tmp_path / "x.npz", J, np.zeros((3, 3)))
    with pytest.raises(ShapeError, match="reference"):
        write_potts_npz(tmp_path / "x.npz", J, reference="AB")
    assert not list(tmp_path.iterdir())
