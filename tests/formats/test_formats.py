"""Exchange formats: score matrices, EC tables, npz couplings, plmc / CCMpred / adabmDCA imports.

The plmc and CCMpred files are generated here from the layouts in those tools' C sources
(plmc ``OutputParametersFull``, CCMpred ``write_raw_msgpack`` / ``write_raw``), independently of
the readers under test.
"""

from __future__ import annotations

import csv
import gzip
import re
import struct
from pathlib import Path

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnpotts.alphabet import PROTEIN, RNA, Alphabet
from attnpotts.errors import DataFormatError, ShapeError, ValidationError
from attnpotts.formats import (
    CCMPRED_ALPHABET,
    EC_TSV_HEADER,
    ec_numbering,
    load_couplings_npz,
    read_adabmdca_params,
    read_ccmpred_raw,
    read_ec_table,
    read_plmc_params,
    read_score_matrix,
    save_couplings_npz,
    write_adabmdca_params,
    write_ccmpred_braw,
    write_ec_table,
    write_ec_tsv,
    write_score_matrix,
)

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def random_params(L: int, q: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric couplings ``(L, L, q, q)`` with zero diagonal blocks, fields ``(L, q)``."""
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(L, L, q, q))
    J = 0.5 * (J + J.transpose(1, 0, 3, 2))
    J[np.arange(L), np.arange(L)] = 0
    return rng.normal(size=(L, q)), J


def permutation_to(tool: str, alphabet: Alphabet) -> np.ndarray:
    """``perm[k]`` = attnpotts state of the tool's state ``k``."""
    return np.array([alphabet.symbols.index(c) for c in tool])


# ------------------------------------------------------------------ score matrix, EC table
def test_score_matrix_round_trip(tmp_path: Path) -> None:
    S = np.random.default_rng(0).normal(size=(7, 7))
    write_score_matrix(tmp_path / "s.mat", S)
    np.testing.assert_allclose(read_score_matrix(tmp_path / "s.mat"), S, rtol=1e-10)
    # what readers of CCMpred's .mat do (numpy.loadtxt) gives the matrix back
    np.testing.assert_allclose(np.loadtxt(tmp_path / "s.mat"), S, rtol=1e-10)
    # CCMpred's own layout (io.c write_matrix: "%.20e\t" per value, a trailing tab) reads
    ccm = "".join("".join(f"{v:.20e}\t" for v in row) + "\n" for row in S)
    (tmp_path / "ccm.mat").write_text(ccm)
    np.testing.assert_array_equal(read_score_matrix(tmp_path / "ccm.mat"), S)
    (tmp_path / "bad.mat").write_text("1 2\n3\n")
    with pytest.raises(DataFormatError, match=r"bad\.mat, line 2"):
        read_score_matrix(tmp_path / "bad.mat")


#: plmc's ``-c`` line (plm.c: ``"%d %c %d %c 0 %f\\n"``): i A_i j A_j 0 cn, single spaces.
PLMC_EC_LINE = re.compile(r"^(\d+) (\S) (\d+) (\S) 0 (-?\d+\.\d{6})$")


def test_ec_file_has_plmcs_exact_layout(tmp_path: Path) -> None:
    S = np.array([[0, 1, 5, 2], [1, 0, 3, 4], [5, 3, 0, 0], [2, 4, 0, 0]], dtype=float)
    S[0, 3] = S[3, 0] = 1.9999999  # printed with plmc's 6 decimals
    write_ec_table(tmp_path / "ec.txt", S, numbers=np.array([3, 5, 6, 10]), residues="ACDE")
    lines = (tmp_path / "ec.txt").read_text().splitlines()
    assert len(lines) == 6
    parsed = [PLMC_EC_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert lines[0] == "3 A 6 D 0 5.000000"
    assert lines[1] == "5 C 10 E 0 4.000000"
    assert lines[3] == "3 A 10 E 0 2.000000"
    # the reader: 6 fields, i < j, by decreasing score
    rows = read_ec_table(tmp_path / "ec.txt")
    assert rows[0] == (3, "A", 6, "D", 5.0)
    assert [r[-1] for r in rows] == [5, 4, 3, 2, 1, 0]
    assert all(i < j for i, _, j, _, _ in rows)
    # default numbering 1..L with plmc's "-" residues
    write_ec_table(tmp_path / "plain.txt", S)
    assert (tmp_path / "plain.txt").read_text().splitlines()[0] == "1 - 3 - 0 5.000000"
    with pytest.raises(ValidationError, match="1-based"):
        write_ec_table(tmp_path / "x.txt", S, numbers=np.arange(4))
    with pytest.raises(ShapeError, match="letters"):
        write_ec_table(tmp_path / "x.txt", S, residues="AC")


def test_ec_file_read_as_evcouplings_reads_it(tmp_path: Path) -> None:
    """EVcouplings reads plmc's EC file as space-separated columns i A_i j A_j fn cn."""
    S = np.random.default_rng(1).normal(size=(6, 6))
    S = S + S.T
    write_ec_table(tmp_path / "ec.txt", S, numbers=np.arange(11, 17), residues="MKVLAG")
    table = np.genfromtxt(
        tmp_path / "ec.txt",
        delimiter=" ",
        dtype=None,
        encoding="ascii",
        names=["i", "A_i", "j", "A_j", "fn", "cn"],
    )
    assert table.shape == (15,)
    assert set(table["fn"].tolist()) == {0}
    iu = np.triu_indices(6, 1)
    np.testing.assert_allclose(np.sort(table["cn"]), np.sort(S[iu]), atol=5e-7)
    # cn belongs to the pair it names: numbers 11.. map back to 0-based sites
    np.testing.assert_allclose(table["cn"], S[table["i"] - 11, table["j"] - 11], atol=5e-7)
    assert "".join(table["A_i"][table["i"] == 11][:1]) == "M"


def test_ec_numbering_follows_the_focus_sequence() -> None:
    cols = np.array([2, 3, 5])
    nums, res, scheme = ec_numbering(cols, np.array([40, 41, 42]), "MKV")
    assert scheme == "focus" and nums.tolist() == [40, 41, 42] and res == "MKV"
    # a reference with a gap at a fitted column is no focus sequence: alignment columns, "-"
    nums, res, scheme = ec_numbering(cols, np.array([40, -1, 41]), "M-K")
    assert scheme == "column" and nums.tolist() == [2, 3, 5] and res == "---"
    assert ec_numbering(cols)[2] == "column"


def test_ec_tsv_keeps_the_alignment_columns(tmp_path: Path) -> None:
    S = np.array([[0, 1, 5], [1, 0, 3], [5, 3, 0]], dtype=float)
    write_ec_tsv(
        tmp_path / "ec.tsv", S, columns=np.array([2, 3, 5]), numbers=[40, 41, 42], residues="MKV"
    )
    with open(tmp_path / "ec.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert tuple(rows[0]) == EC_TSV_HEADER
    assert rows[0] == {
        "i": "40", "A_i": "M", "j": "42", "A_j": "V", "column_i": "2", "column_j": "5",
        "score": "5.0",
    }
    assert [float(r["score"]) for r in rows] == [5.0, 3.0, 1.0]


# ---------------------------------------------------------------------------- npz couplings
@SETTINGS
@given(L=st.integers(1, 5), seed=st.integers(0, 1000), rna=st.booleans())
def test_npz_round_trip(tmp_path: Path, L: int, seed: int, rna: bool) -> None:
    alphabet = RNA if rna else PROTEIN
    h, J = random_params(L, alphabet.q, seed)
    cols = np.sort(np.random.default_rng(seed).choice(50, size=L, replace=False)) + 1
    ref = "".join(alphabet.symbols[1 + k % (alphabet.q - 1)] for k in range(L))
    path = save_couplings_npz(
        tmp_path / "c.npz",
        J,
        h,
        alphabet=alphabet,
        columns=cols,
        reference=ref,
        metadata={"tool": "test", "lambda_J": 0.01},
    )
    f = load_couplings_npz(path)
    np.testing.assert_array_equal(f.couplings, J)
    np.testing.assert_array_equal(f.fields, h)
    np.testing.assert_array_equal(f.columns, cols)
    assert f.alphabet.symbols == alphabet.symbols and f.reference == ref
    assert f.metadata == {"tool": "test", "lambda_J": 0.01}


def test_npz_errors(tmp_path: Path) -> None:
    h, J = random_params(3, 21, 0)
    with pytest.raises(ShapeError, match="q = 4"):
        save_couplings_npz(tmp_path / "x.npz", J[:, :, :4, :4], h[:, :4])
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(DataFormatError, match="missing"):
        load_couplings_npz(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError):
        load_couplings_npz(tmp_path / "junk.npz")


# ----------------------------------------------------------------------------------- plmc
def write_plmc(
    path: Path,
    h: np.ndarray,
    J: np.ndarray,
    alphabet: str,
    *,
    n_seqs: int = 3,
    n_skipped: int = 1,
    dtype: str = "<f4",
) -> None:
    """plmc's OutputParametersFull, field by field (h, J already in the tool's state order)."""
    L, q = h.shape
    out = [struct.pack("<5i", L, q, n_seqs, n_skipped, 7)]
    out.append(np.array([0.2, 0.01, 16.0, 0.0, 2.5], dtype=dtype).tobytes())
    out.append(alphabet.encode("ascii"))
    out.append(np.arange(1, n_seqs + n_skipped + 1, dtype=dtype).tobytes())
    out.append(("A" * L).encode("ascii"))
    out.append(np.arange(11, 11 + L, dtype="<i4").tobytes())
    out.append(np.full((L, q), 1.0 / q, dtype=dtype).tobytes())  # f_i
    out.append(h.astype(dtype).tobytes())  # h_i, row-major [i, a]
    blocks = [J[i, j] for i in range(L - 1) for j in range(i + 1, L)]
    fij = np.full((len(blocks), q, q), 1.0 / q**2)
    out.append(fij.astype(dtype).tobytes())
    out.append(np.asarray(blocks, dtype=dtype).reshape(-1).tobytes())  # [i<j, a_i, a_j]
    path.write_bytes(b"".join(out))


@SETTINGS
@given(L=st.integers(1, 6), seed=st.integers(0, 10_000), double=st.booleans())
def test_plmc_import_reorders_states(tmp_path: Path, L: int, seed: int, double: bool) -> None:
    q = PROTEIN.q
    tool = "".join(np.random.default_rng(seed).permutation(list(PROTEIN.symbols)))
    h_tool, J_tool = random_params(L, q, seed)
    dtype = "<f8" if double else "<f4"
    h_tool = h_tool.astype(dtype).astype(np.float64)
    J_tool = J_tool.astype(dtype).astype(np.float64)
    write_plmc(tmp_path / "p.params", h_tool, J_tool, tool, dtype=dtype)
    got = read_plmc_params(tmp_path / "p.params")
    perm = permutation_to(tool, PROTEIN)
    for a in range(q):
        np.testing.assert_array_equal(got.fields[:, perm[a]], h_tool[:, a])
        for b in range(q):
            np.testing.assert_array_equal(got.couplings[:, :, perm[a], perm[b]], J_tool[:, :, a, b])
    assert got.tool_alphabet == tool
    assert got.metadata["offsets"] == list(range(11, 11 + L))
    assert got.metadata["n_eff"] == pytest.approx(2.5)
    assert got.metadata["precision"] == ("float64" if double else "float32")
    got.to_potts_model()  # symmetric, usable as a Potts model


def test_plmc_gapignore_alphabet_without_gap(tmp_path: Path) -> None:
    tool = PROTEIN.symbols[1:]  # plmc --gapignore writes the 20 amino acids only
    h, J = random_params(3, 20, 4)
    write_plmc(tmp_path / "g.params", h, J, tool)
    got = read_plmc_params(tmp_path / "g.params")
    assert np.all(got.fields[:, 0] == 0) and np.all(got.couplings[:, :, 0] == 0)
    np.testing.assert_allclose(got.fields[:, 1:], h.astype("<f4"))


@SETTINGS
@given(cut=st.integers(0, 10_000))
def test_plmc_truncated_or_foreign_files(tmp_path: Path, cut: int) -> None:
    h, J = random_params(3, 21, 1)
    write_plmc(tmp_path / "p.params", h, J, PROTEIN.symbols)
    data = (tmp_path / "p.params").read_bytes()
    cut = cut % len(data)
    (tmp_path / "t.params").write_bytes(data[:cut])
    with pytest.raises(DataFormatError, match=r"t\.params"):
        read_plmc_params(tmp_path / "t.params")


def test_plmc_unknown_letter(tmp_path: Path) -> None:
    h, J = random_params(2, 5, 1)
    write_plmc(tmp_path / "r.params", h, J, "-ACGU")
    with pytest.raises(DataFormatError, match="not in the attnpotts alphabet"):
        read_plmc_params(tmp_path / "r.params", alphabet=Alphabet("-ACG", gap="-"))
    got = read_plmc_params(tmp_path / "r.params", alphabet=RNA)
    np.testing.assert_allclose(got.fields, h.astype("<f4"))


# --------------------------------------------------------------------------------- CCMpred
def ccmpred_layout(h: np.ndarray, J: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """attnpotts PROTEIN-order parameters -> CCMpred's (gauge: gap field 0)."""
    perm = permutation_to(CCMPRED_ALPHABET, PROTEIN)
    hc = h[:, perm]
    return hc - hc[:, -1:], J[:, :, perm][:, :, :, perm]


def braw_bytes(hc: np.ndarray, Jc: np.ndarray, *, floats: bool = True) -> bytes:
    L = hc.shape[0]
    pairs = {
        f"{i}/{j}": {"i": i, "j": j, "x": Jc[i, j].ravel().tolist()}
        for i in range(L)
        for j in range(i + 1, L)
    }
    obj = {"format": "ccm-1", "ncol": L, "x_single": hc[:, :20].ravel().tolist(), "x_pair": pairs}
    return msgpack.packb(obj, use_single_float=floats)


@SETTINGS
@given(L=st.integers(1, 5), seed=st.integers(0, 10_000), gz=st.booleans())
def test_ccmpred_braw_import(tmp_path: Path, L: int, seed: int, gz: bool) -> None:
    h, J = random_params(L, 21, seed)
    h[:, 0] = 0.0  # CCMpred has no gap field: compare in that gauge
    hc, Jc = ccmpred_layout(h, J)
    data = braw_bytes(hc, Jc, floats=False)
    path = tmp_path / ("x.braw.gz" if gz else "x.braw")
    path.write_bytes(gzip.compress(data) if gz else data)
    got = read_ccmpred_raw(path)
    np.testing.assert_allclose(got.fields, h, atol=1e-12)
    np.testing.assert_allclose(got.couplings, J, atol=1e-12)
    # the library writer produces the same content
    write_ccmpred_braw(tmp_path / "y.braw", h, J)
    again = read_ccmpred_raw(tmp_path / "y.braw")
    np.testing.assert_allclose(again.couplings, J, atol=1e-12)
    np.testing.assert_allclose(again.fields, h, atol=1e-12)


def raw_lines(hc: np.ndarray, Jc: np.ndarray, pairs: list[tuple[int, int]]) -> list[str]:
    """CCMpred's text ``.raw``: the field lines, then ``# i j`` and the block of each pair."""
    lines = ["\t".join(f"{v:.17g}" for v in row[:20]) for row in hc]
    for i, j in pairs:
        lines.append(f"# {i} {j}")
        lines += ["\t".join(f"{v:.17g}" for v in row) for row in Jc[i, j]]
    return lines


def test_ccmpred_text_raw(tmp_path: Path) -> None:
    h, J = random_params(3, 21, 9)
    h[:, 0] = 0.0
    hc, Jc = ccmpred_layout(h, J)
    lines = raw_lines(hc, Jc, [(0, 1), (0, 2), (1, 2)])
    lines.append('#>META> {"x": 1}')
    (tmp_path / "x.raw").write_text("\n".join(lines) + "\n")
    got = read_ccmpred_raw(tmp_path / "x.raw")
    np.testing.assert_allclose(got.couplings, J, atol=1e-14)
    np.testing.assert_allclose(got.fields, h, atol=1e-14)
    assert got.metadata["meta"] == {"x": 1}
    bad = [*lines[:4], "1 2 3", *lines[5:]]
    (tmp_path / "bad.raw").write_text("\n".join(bad) + "\n")
    with pytest.raises(DataFormatError, match=r"bad\.raw, line 5"):
        read_ccmpred_raw(tmp_path / "bad.raw")


def test_ccmpred_malformed_msgpack(tmp_path: Path) -> None:
    h, J = random_params(3, 21, 2)
    hc, Jc = ccmpred_layout(h, J)
    obj = msgpack.unpackb(braw_bytes(hc, Jc))
    del obj["x_pair"]["0/2"]
    (tmp_path / "a.braw").write_bytes(msgpack.packb(obj))
    with pytest.raises(DataFormatError, match="2 pairs"):
        read_ccmpred_raw(tmp_path / "a.braw")
    obj["format"] = "ccm-2"
    (tmp_path / "b.braw").write_bytes(msgpack.packb(obj))
    with pytest.raises(DataFormatError, match="ccm-1"):
        read_ccmpred_raw(tmp_path / "b.braw")
    (tmp_path / "c.braw").write_bytes(braw_bytes(hc, Jc)[:-7])
    with pytest.raises(DataFormatError, match=r"c\.braw"):
        read_ccmpred_raw(tmp_path / "c.braw")


def test_ccmpred_pair_given_twice_is_refused(tmp_path: Path) -> None:
    # a repeated pair with another one missing keeps the count of pairs right
    h, J = random_params(3, 21, 4)
    hc, Jc = ccmpred_layout(h, J)
    obj = msgpack.unpackb(braw_bytes(hc, Jc))
    obj["x_pair"]["0/2"] = {**obj["x_pair"]["0/1"]}
    (tmp_path / "a.braw").write_bytes(msgpack.packb(obj))
    with pytest.raises(DataFormatError, match=r"pair \(0, 1\) is given twice"):
        read_ccmpred_raw(tmp_path / "a.braw")
    lines = raw_lines(hc, Jc, [(0, 1), (0, 1), (1, 2)])
    (tmp_path / "x.raw").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"x\.raw, line 26: pair \(0, 1\) is given twice"):
        read_ccmpred_raw(tmp_path / "x.raw")


# -------------------------------------------------------------------------------- adabmDCA
@SETTINGS
@given(L=st.integers(2, 5), seed=st.integers(0, 10_000), integer_states=st.booleans())
def test_adabmdca_round_trip(tmp_path: Path, L: int, seed: int, integer_states: bool) -> None:
    h, J = random_params(L, 21, seed)
    path = tmp_path / "params.dat"
    write_adabmdca_params(path, h, J)
    if integer_states:  # the old format: states as integers of the tool's alphabet
        tool = "-ACDEFGHIKLMNPQRSTVWY"
        text = path.read_text().splitlines()
        out = []
        for line in text:
            f = line.split()
            if f[0] == "J":
                f[3], f[4] = str(tool.index(f[3])), str(tool.index(f[4]))
            else:
                f[2] = str(tool.index(f[2]))
            out.append(" ".join(f))
        path.write_text("\n".join(out) + "\n")
    got = read_adabmdca_params(path)
    np.testing.assert_array_equal(got.fields, h)
    np.testing.assert_array_equal(got.couplings, J)


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("J 0 1 A C 0.5\nh 0 A x\n", 2, "bad number"),
        ("J 0 1 A C 0.5\nK 0 A 1\n", 2, "expected"),
        ("J 0 0 A C 0.5\nh 0 A 1\n", 1, "pair"),
        ("J 0 1 A O 0.5\nh 0 A 1\n", 1, "not in the alphabet"),
        ("J 0 1 A 99 0.5\nh 0 A 1\n", 1, "out of range"),
    ],
)
def test_adabmdca_malformed(tmp_path: Path, text: str, line: int, what: str) -> None:
    path = tmp_path / "p.dat"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=what) as info:
        read_adabmdca_params(path)
    assert info.value.line == line and "p.dat" in str(info.value)


def test_exporters_refuse_asymmetric_couplings(tmp_path: Path) -> None:
    h, J = random_params(3, 21, 0)
    J[0, 1, 2, 3] += 1.0
    with pytest.raises(ValidationError, match="symmetric"):
        write_adabmdca_params(tmp_path / "a.dat", h, J)
    with pytest.raises(ValidationError, match="symmetric"):
        write_ccmpred_braw(tmp_path / "a.braw", h, J)


def test_moved_names_still_answer_from_evaluation() -> None:
    import attnpotts.evaluation as evaluation
    import attnpotts.formats as formats

    for name in ("save_couplings_npz", "load_couplings_npz", "read_plmc_params", "write_ec_table"):
        assert getattr(evaluation, name) is getattr(formats, name)
        assert name not in evaluation.__all__
    with pytest.raises(AttributeError, match="no attribute"):
        _ = evaluation.not_a_name
