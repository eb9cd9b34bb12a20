"""Structures -> column distances: hand-built structures, sequence mapping, a shipped family with a PDB file."""

from __future__ import annotations

import math
from pathlib import Path

import gemmi
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnpotts.alignment import (
    align_sequences,
    contact_map,
    distance_maps,
    example_files,
    map_reference,
    read_distance_table,
    read_distances,
    read_structure,
    structure_distances,
    write_distance_table,
)
from attnpotts.errors import DataFormatError, ValidationError


def _atom(
    name: str, element: str, xyz: tuple[float, float, float], altloc: str = "\0"
) -> gemmi.Atom:
    a = gemmi.Atom()
    a.name = name
    a.element = gemmi.Element(element)
    a.pos = gemmi.Position(*xyz)
    a.altloc = altloc
    a.occ = 0.5 if altloc != "\0" else 1.0
    return a


def tiny_structure() -> gemmi.Structure:
    """GLY-ALA-SER with a hydrogen, an alternative conformation and a water (see the test)."""
    spec = [
        ("GLY", [("N", "N", (0, 0, 0)), ("CA", "C", (1, 0, 0)), ("H", "H", (0, 5, 0))]),
        ("ALA", [("CA", "C", (5, 0, 0)), ("CB", "C", (5, 1, 0))]),
        (
            "SER",
            [
                ("CA", "C", (0, 9, 0)),
                ("CB", "C", (0, 8, 0)),
                ("OG", "O", (0, 6, 0), "A"),
                ("OG", "O", (0, 2, 0), "B"),
            ],
        ),
        ("HOH", [("O", "O", (0.5, 0.5, 0))]),
    ]
    st_ = gemmi.Structure()
    st_.cell = gemmi.UnitCell(50, 50, 50, 90, 90, 90)
    model = gemmi.Model(1)
    chain = gemmi.Chain("B")
    for k, (name, atoms) in enumerate(spec, start=1):
        res = gemmi.Residue()
        res.name = name
        res.seqid = gemmi.SeqId(10 + k, " ")
        res.het_flag = "H" if name == "HOH" else "A"
        for spec_atom in atoms:
            res.add_atom(_atom(*spec_atom))  # type: ignore[arg-type]
        chain.add_residue(res)
    model.add_chain(chain)
    st_.add_model(model)
    st_.setup_entities()
    return st_


@pytest.fixture(params=["pdb", "cif"])
def tiny_file(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    st_ = tiny_structure()
    if request.param == "pdb":
        path = tmp_path / "tiny.pdb"
        st_.write_pdb(str(path))
    else:
        path = tmp_path / "tiny.cif"
        st_.make_mmcif_document().write_file(str(path))
    return path


def test_distances_by_hand(tiny_file: Path) -> None:
    chain = read_structure(tiny_file)
    assert chain.chain == "B" and chain.sequence == "GAS"  # water skipped
    np.testing.assert_array_equal(chain.residue_numbers, [11, 12, 13])
    mapping = map_reference("G-AS", chain)
    np.testing.assert_array_equal(mapping.residue_index, [0, -1, 1, 2])
    np.testing.assert_array_equal(mapping.residue_numbers, [11, -1, 12, 13])
    assert mapping.identity == 1.0
    d = distance_maps(chain, mapping.residue_index)
    heavy, cb = d["d_min_heavy"], d["d_cb"]
    # GLY-SER: N(0,0,0) to OG altloc A (0,6,0); the hydrogen (0,5,0) and altloc B (0,2,0) ignored
    assert heavy[0, 3] == pytest.approx(6.0)
    # GLY uses C-alpha (1,0,0) for C-beta; ALA C-beta (5,1,0)
    assert cb[0, 2] == pytest.approx(math.sqrt(17))
    assert cb[2, 3] == pytest.approx(math.sqrt(25 + 49))
    # GLY-ALA heavy: CA(1,0,0) to CA(5,0,0)
    assert heavy[0, 2] == pytest.approx(4.0)
    assert np.isnan(heavy[1]).all() and np.isnan(cb[:, 1]).all()
    np.testing.assert_allclose(heavy, heavy.T, equal_nan=True)
    contacts = contact_map(heavy, cutoff=5.0)
    assert contacts[0, 2] and not contacts[0, 3] and not contacts[1].any()
    assert not contact_map(heavy, cutoff=5.0, min_separation=3)[0, 2]


def test_chain_errors(tiny_file: Path, tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"no chain 'Z'.*'B'"):
        read_structure(tiny_file, chain="Z")
    bad = tmp_path / "bad.pdb"
    bad.write_text("HELLO\n")
    with pytest.raises(DataFormatError):
        read_structure(bad)
    # a file gemmi does not recognise at all: the message says what to give instead
    odd = tmp_path / "family.sto"
    odd.write_text("# STOCKHOLM 1.0\na ACDE\n//\n")
    with pytest.raises(DataFormatError, match=r"gemmi cannot read.*PDB or mmCIF.*--distances"):
        read_structure(odd)
    chain = read_structure(tiny_file)
    with pytest.raises(ValidationError, match="only gaps"):
        map_reference("---", chain)


def test_align_sequences_with_mismatch_and_missing_residue() -> None:
    np.testing.assert_array_equal(align_sequences("ACDEF", "MMACDEFLL"), [2, 3, 4, 5, 6])
    # a point mutation: still aligned position by position
    np.testing.assert_array_equal(align_sequences("ACDEFGHIK", "MMACDQFGHIKLL"), np.arange(2, 11))
    # a residue missing from the structure (unobserved loop): it maps to -1
    got = align_sequences("ACDEFGHIKLM", "WWACDEGHIKLMWW")
    np.testing.assert_array_equal(got, [2, 3, 4, 5, -1, 6, 7, 8, 9, 10, 11])
    # reference longer than the structure at both ends (disordered termini)
    np.testing.assert_array_equal(
        align_sequences("PPACDEFGHPP", "ACDEFGH"), [-1, -1, *range(7), -1, -1]
    )


# ------------------------------------------------------------------------------ TSV format
@settings(max_examples=30, deadline=None)
@given(L=st.integers(3, 12), seed=st.integers(0, 2**16))
def test_distance_table_round_trip(
    tmp_path_factory: pytest.TempPathFactory, L: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    a = np.round(rng.uniform(1, 20, size=(L, L)), 3)
    a = np.triu(a, 1) + np.triu(a, 1).T
    a[rng.integers(0, L)] = np.nan  # one column without a residue: its pairs are absent
    a = np.where(np.isnan(a) | np.isnan(a.T), np.nan, a)
    b = 2 * a
    path = tmp_path_factory.mktemp("tsv") / "d.tsv"
    write_distance_table(path, {"x": a, "y": b}, comment="made\nby a test")
    table = read_distance_table(path, n_sites=L)
    assert table.names == ("x", "y") and table.comments == ("made", "by a test")
    iu = np.triu_indices(L, 1)
    np.testing.assert_allclose(table.get()[iu], a[iu], equal_nan=True)
    np.testing.assert_allclose(
        read_distances(path, column="y", n_sites=L)[iu], b[iu], equal_nan=True
    )


BAD_TSV = [
    ("# c\nx y d\n1 2 3\n", 2, "header"),
    ("i\tj\td\n1\t2\n", 2, "expected 3 fields"),
    ("i\tj\td\n1\t2\tfoo\n", 2, "not a number"),
    ("i\tj\td\n0\t2\t1.0\n", 2, "start at 1"),
    ("# only\ni j d\n", 2, "no distance lines"),
]


@pytest.mark.parametrize(("text", "line", "what"), BAD_TSV)
def test_malformed_distance_tables(tmp_path: Path, text: str, line: int, what: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=what) as info:
        read_distance_table(path)
    assert info.value.line == line and "bad.tsv" in str(info.value)


def test_unknown_distance_column(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("i\tj\td\n1\t2\t3.0\n")
    with pytest.raises(ValidationError, match=r"no distance column 'd_cb'.*'d'"):
        read_distances(path, column="d_cb")


# ------------------------------------------------------------------ a family with a structure
def test_shipped_structure_distances_reproduced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PF00076 with chain A of PDB 2X1B (shipped): our pipeline reproduces its distance table."""
    files = example_files("PF00076_2X1B")
    assert files.structure is not None and files.structure_sequence is not None
    assert files.column_map is not None
    folder = files.name
    aligned = files.structure_sequence.read_text().split()[-1]
    L = len(aligned)
    result = structure_distances(files.structure, aligned, chain="A")
    assert result.mapping.identity == 1.0
    # write in the distance-table format, read back, compare with the shipped table
    ours = tmp_path / "ours.tsv"
    write_distance_table(ours, result.distances, comment=f"{folder} recomputed")
    mine = read_distance_table(ours, n_sites=L)
    ref = read_distance_table(files.distances, n_sites=L)
    assert mine.names == ref.names == ("d_min_heavy", "d_cb")
    iu = np.triu_indices(L, 1)
    worst = {}
    for name in ref.names:
        a, b = mine.maps[name][iu], ref.maps[name][iu]
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))  # same pairs
        worst[name] = float(np.nanmax(np.abs(a - b)))
        # the shipped table is rounded to 3 decimals: at most half a unit in the last place
        assert worst[name] <= 0.0005 + 1e-9
        # and before our rounding too
        raw = result.distances[name][iu]
        assert float(np.nanmax(np.abs(raw - b))) <= 0.0005 + 1e-9
    # the column map of the folder agrees with ours
    cmap = [ln.split("\t") for ln in files.column_map.read_text().splitlines()]
    numbers = [int(r[3]) if r[3] != "-" else -1 for r in cmap[2:]]
    np.testing.assert_array_equal(result.mapping.residue_numbers, numbers)
    with capsys.disabled():
        print(f"\n{folder}: max |diff| {worst} over {int(np.isfinite(b).sum())} pairs")
