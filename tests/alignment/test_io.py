"""Alignment readers and writers: round trips, insertions, focus mode, filters, malformed files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnpotts.alignment import (
    MultipleSequenceAlignment,
    detect_format,
    example_files,
    read_alignment,
    read_raw_alignment,
    write_a2m,
    write_fasta,
)
from attnpotts.alphabet import PROTEIN, RNA, Alphabet
from attnpotts.errors import DataFormatError, ValidationError

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_|/-."
ids_st = st.text(ID_CHARS, min_size=1, max_size=12).filter(lambda s: s != "//")
desc_st = st.text("abcdefgh XYZ=12", max_size=15).map(str.strip)
MATCH = PROTEIN.symbols  # upper-case residues and '-'
INSERT = "acdefghiklmnpqrstvwy"


@st.composite
def alignments(draw: st.DrawFn) -> tuple[list[str], list[str], list[str]]:
    n = draw(st.integers(1, 6))
    L = draw(st.integers(1, 30))
    ids = draw(st.lists(ids_st, min_size=n, max_size=n, unique=True))
    descs = draw(st.lists(desc_st, min_size=n, max_size=n))
    seqs = draw(st.lists(st.text(MATCH, min_size=L, max_size=L), min_size=n, max_size=n))
    return ids, descs, seqs


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------ round trips
@SETTINGS
@given(data=alignments(), width=st.one_of(st.none(), st.integers(1, 40)), gz=st.booleans())
def test_fasta_round_trip(tmp_path: Path, data, width, gz) -> None:
    ids, descs, seqs = data
    heads = [f"{i} {d}".rstrip() for i, d in zip(ids, descs, strict=True)]
    path = tmp_path / ("a.fasta.gz" if gz else "a.fasta")
    write_fasta(path, (heads, seqs), line_width=width)
    if gz:
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    msa = read_alignment(path)
    assert list(msa.ids) == ids
    assert list(msa.descriptions) == descs
    assert msa.sequences() == seqs
    assert msa.states.dtype == np.int8
    np.testing.assert_array_equal(msa.column_map, np.arange(len(seqs[0])))
    # and the object itself round-trips through both writers
    write_fasta(tmp_path / "b.fa", msa)
    write_a2m(tmp_path / "b.a2m", msa)
    for name in ("b.fa", "b.a2m"):
        again = read_alignment(tmp_path / name)
        np.testing.assert_array_equal(again.states, msa.states)
        assert again.ids == msa.ids


@st.composite
def with_insertions(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """Match strings plus insertions after each match column (same insert columns for A2M)."""
    n = draw(st.integers(1, 5))
    L = draw(st.integers(1, 15))
    matches = draw(st.lists(st.text(MATCH, min_size=L, max_size=L), min_size=n, max_size=n))
    inserts = draw(
        st.lists(
            st.lists(st.text(INSERT, max_size=3), min_size=L + 1, max_size=L + 1),
            min_size=n,
            max_size=n,
        )
    )
    return matches, inserts


@SETTINGS
@given(data=with_insertions())
def test_a2m_and_a3m_drop_insertions(tmp_path: Path, data) -> None:
    matches, inserts = data
    n, L = len(matches), len(matches[0])
    widths = [max(len(inserts[s][k]) for s in range(n)) for k in range(L + 1)]
    a3m, a2m = [], []
    for m, ins in zip(matches, inserts, strict=True):
        a3m.append(ins[0] + "".join(m[k] + ins[k + 1] for k in range(L)))
        pad = [ins[k] + "." * (widths[k] - len(ins[k])) for k in range(L + 1)]
        a2m.append(pad[0] + "".join(m[k] + pad[k + 1] for k in range(L)))
    ids = [f"s{k}/10-99" for k in range(n)]
    _write(tmp_path / "x.a3m", "".join(f">{i}\n{r}\n" for i, r in zip(ids, a3m, strict=True)))
    write_a2m(tmp_path / "x.a2m", (ids, a2m))
    for name in ("x.a3m", "x.a2m"):
        msa = read_alignment(tmp_path / name)
        assert msa.sequences() == matches
        ref = msa.reference
        assert ref is not None and ref.start == 10
        # residue numbers count every residue of the reference record, insertions included
        number, expected = 9, []
        for c in a3m[0]:
            if c.isalpha():
                number += 1
            if not c.islower():
                expected.append(number if c != "-" else -1)
        np.testing.assert_array_equal(ref.residue_numbers, expected)


def test_insertions_keep_mode(tmp_path: Path) -> None:
    path = _write(tmp_path / "lower.fasta", ">a\nacd-\n>b\nAC.E\n")
    with pytest.raises(DataFormatError, match=r"lower\.fasta, line 3.*match columns"):
        read_alignment(path)
    lower = _write(tmp_path / "all.fasta", ">a\nacde\n>b\nac.e\n")
    with pytest.raises(DataFormatError, match=r"all\.fasta, line 1: no match columns"):
        read_alignment(lower)
    msa = read_alignment(path, insertions="keep")
    assert msa.sequences() == ["ACD-", "AC-E"]


@SETTINGS
@given(data=alignments(), dots=st.lists(st.integers(0, 10**6), max_size=20))
def test_dots_for_gaps_read_as_the_same_alignment(tmp_path: Path, data, dots) -> None:
    """Any '-' written as '.' in a file without insertions gives the same alignment, whenever
    some '.' shares a column with a residue or '-' (else the '.' columns are A2M insert columns,
    and are dropped)."""
    _, _, seqs = data
    L = len(seqs[0])
    rows = [list(s) for s in seqs]
    gaps = [(r, c) for r in range(len(rows)) for c in range(L) if rows[r][c] == "-"]
    for k in dots:
        if gaps:
            r, c = gaps[k % len(gaps)]
            rows[r][c] = "."
    text = "".join(f">s{k}\n{''.join(r)}\n" for k, r in enumerate(rows))
    mixed = any(any(r[c] == "." for r in rows) and any(r[c] != "." for r in rows) for c in range(L))
    pure = [c for c in range(L) if all(r[c] == "." for r in rows)]
    if not mixed and len(pure) == L:
        return  # nothing but insert columns: 'no match columns', tested above
    msa = read_alignment(_write(tmp_path / "d.fasta", text))
    expected = seqs if mixed else ["".join(s[c] for c in range(L) if c not in pure) for s in seqs]
    assert msa.sequences() == expected


def test_dots_are_gaps_in_a_file_without_insertions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """'.' as a gap (Clustal/Jalview): no lower case, equal rows that dropping '.' would unequal."""
    path = _write(tmp_path / "dots.fasta", ">q/3-6\nA.CD.E\n>b\nAKC..E\n>c\n.KCDHE\n")
    with caplog.at_level("WARNING", logger="attnpotts.alignment.io"):
        msa = read_alignment(path, reference="q")
    assert msa.sequences() == ["A-CD-E", "AKC--E", "-KCDHE"]
    assert "'.' read as a gap" in caplog.text and "dots.fasta" in caplog.text
    assert msa.reference is not None
    np.testing.assert_array_equal(msa.reference.residue_numbers, [3, -1, 4, 5, -1, 6])
    sto = _write(tmp_path / "dots.sto", "# STOCKHOLM 1.0\nq A.CD\nb AKC.\n//\n")
    assert read_alignment(sto).sequences() == ["A-CD", "AKC-"]
    # A2M padding (consistent '.') still drops the insert column, and no warning is given
    caplog.clear()
    with caplog.at_level("WARNING", logger="attnpotts.alignment.io"):
        assert read_alignment(_write(tmp_path / "pad.a2m", ">a\nAC.D\n>b\nACeD\n")).sequences() == ["ACD", "ACD"]
    assert "read as a gap" not in caplog.text
    # with lower case present the '.' stay insertions, and the error says so
    with pytest.raises(DataFormatError, match=r"'\.' and lower case are insertions"):
        read_alignment(_write(tmp_path / "mixed.a2m", ">a\nAC.Dk\n>b\nACEDk\n"))
    # unequal rows are not guessed at either
    with pytest.raises(DataFormatError, match="match columns"):
        read_alignment(_write(tmp_path / "ragged.fasta", ">a\nAC.D\n>b\nACE.D\n"))


def test_stockholm_interleaved_blocks(tmp_path: Path) -> None:
    text = (
        "# STOCKHOLM 1.0\n#=GF ID test\n#=GS seq1/3-9 DE something\n\n"
        "seq1/3-9  AC.DE\nseq2      a-C.DF\n#=GC RF   xx.xx\n\n"
        "seq1/3-9  FG\nseq2      GH\n//\n"
    )
    msa = read_alignment(_write(tmp_path / "x.sto", text))
    assert msa.ids == ("seq1/3-9", "seq2")
    assert msa.sequences() == ["ACDEFG", "-CDFGH"]
    assert msa.reference is not None
    np.testing.assert_array_equal(msa.reference.residue_numbers, [3, 4, 5, 6, 7, 8])


def test_psicov_and_detection(tmp_path: Path) -> None:
    p = _write(tmp_path / "x.aln", "ACD-\nAC-E\n")
    msa = read_alignment(p)
    assert msa.ids == ("1", "2") and msa.sequences() == ["ACD-", "AC-E"]
    assert detect_format(_write(tmp_path / "noext", "ACDE\n")) == "psicov"
    assert detect_format(_write(tmp_path / "n2", "\n>x\nAC\n")) == "fasta"
    assert detect_format(_write(tmp_path / "n3", "# STOCKHOLM 1.0\n")) == "stockholm"
    gz = tmp_path / "y.align.80"
    gz.write_bytes(gzip.compress(b">a\nAC\n>b\nA-\n"))
    assert detect_format(gz) == "fasta"  # content, through gzip
    assert read_alignment(gz).sequences() == ["AC", "A-"]
    # override: a FASTA file with a misleading extension
    fa = _write(tmp_path / "z.aln", ">a\nAC\n")
    with pytest.raises(DataFormatError, match="looks like FASTA"):
        read_alignment(fa)
    assert read_alignment(fa, format="fasta").sequences() == ["AC"]
    with pytest.raises(DataFormatError, match="Clustal"):
        detect_format(_write(tmp_path / "c.aln", "CLUSTAL W\n\na AC\n"))
    with pytest.raises(ValidationError, match="unknown alignment format"):
        read_alignment(fa, format="nexus")


def test_alphabets(tmp_path: Path) -> None:
    p = _write(tmp_path / "r.fasta", ">a\nACGU-\n>b\nacgt.\n>c\nTTGAN\n")
    msa = read_alignment(p, alphabet=RNA, insertions="keep")
    assert msa.sequences() == ["ACGU-", "ACGU-", "UUGA-"]  # T -> U, N (unknown) -> gap
    strict = Alphabet("ABC")
    q = _write(tmp_path / "s.fasta", ">a\nABC\n>b\nABD\n")
    with pytest.raises(DataFormatError, match=r"s\.fasta, line 4.*'D'"):
        read_alignment(q, alphabet=strict)
    # unknown protein letters (X, B, Z) are gaps, as in plmc and CCMpred
    x = _write(tmp_path / "x.fasta", ">a\nAXBZC\n")
    assert read_alignment(x).sequences() == ["A---C"]


# ------------------------------------------------------------------------ malformed files
MALFORMED = [
    ("a.fasta", "ACDE\n>x\nACDE\n", 1, "before the first"),
    ("b.fasta", ">x\nACDE\n>y\nAC1E\n", 4, "'1'"),
    ("c.fasta", ">x\nACDE\n>y\nACD\n", 3, "match columns"),
    ("d.fasta", ">x\nACDE\n>y\n>z\nACDE\n", 3, "no sequence"),
    ("e.fasta", ">x\nACDE\n> \nACDE\n", 3, "without an identifier"),
    ("f.sto", "ACDE\n", 1, "STOCKHOLM 1.0"),
    ("g.sto", "# STOCKHOLM 1.0\nx ACDE\ny AC DE\n//\n", 3, "two fields"),
    ("h.aln", "ACDE\nAC*E\n", 2, "'*'"),
    ("i.a3m", ">x\nACdDE\n>y\nAC-E\n>z\nACEEE\n", 5, "match columns"),
]


@pytest.mark.parametrize(("name", "text", "line", "what"), MALFORMED)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, name: str, text: str, line: int, what: str
) -> None:
    path = _write(tmp_path / name, text)
    with pytest.raises(DataFormatError, match=what) as info:
        read_alignment(path)
    assert info.value.path is not None and Path(str(info.value.path)).name == name
    assert info.value.line == line
    assert f"{name}, line {line}:" in str(info.value)


def test_stockholm_without_terminator(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.sto", "# STOCKHOLM 1.0\nx ACDE\n")
    with pytest.raises(DataFormatError, match=r"t\.sto.*'//'"):
        read_alignment(path)


@SETTINGS
@given(data=alignments(), where=st.integers(0, 1000), bad=st.sampled_from("0123456789*#!?"))
def test_any_bad_character_is_reported_at_its_line(tmp_path: Path, data, where, bad) -> None:
    ids, _, seqs = data
    lines = []
    for i, s in zip(ids, seqs, strict=True):
        lines += [f">{i}", s]
    seq_lines = [k for k in range(len(lines)) if not lines[k].startswith(">")]
    target = seq_lines[where % len(seq_lines)]
    pos = where % (len(lines[target]) + 1)
    lines[target] = lines[target][:pos] + bad + lines[target][pos:]
    path = _write(tmp_path / "bad.fasta", "\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as info:
        read_alignment(path)
    assert info.value.line == target + 1
    assert f"position {pos + 1}" in str(info.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_alignment(tmp_path / "none.fasta")
    with pytest.raises(DataFormatError, match="empty"):
        read_alignment(_write(tmp_path / "empty", ""))
    with pytest.raises(DataFormatError, match="no '>' record"):
        read_alignment(_write(tmp_path / "e.fasta", "\n\n"))
    (tmp_path / "cut.fasta.gz").write_bytes(gzip.compress(b">a\nACDE\n>b\nACDE\n" * 50)[:-12])
    with pytest.raises(DataFormatError, match="gzip"):
        read_alignment(tmp_path / "cut.fasta.gz")
    (tmp_path / "bin.fasta").write_bytes(b">a\n\xff\xfe\n")
    with pytest.raises(DataFormatError, match="ASCII"):
        read_alignment(tmp_path / "bin.fasta")


# -------------------------------------------------------------- focus mode, filters, maps
def test_focus_mode_and_filters_keep_the_column_map(tmp_path: Path) -> None:
    text = ">q/5-9\nA-CD-E.e\n>b\nAKCD-E..\n>c\n--CDHE..\n>d\n----HE..\n"
    path = _write(tmp_path / "f.a2m", text)
    msa = read_alignment(path)  # the insert column ('.', 'e') is dropped: 6 match columns
    assert (msa.n_sites, msa.n_original_columns) == (6, 6)
    assert msa.sequences() == ["A-CD-E", "AKCD-E", "--CDHE", "----HE"]
    assert read_raw_alignment(path).rows[0] == "A-CD-E.e"
    focus = read_alignment(path, reference="q", focus=True)
    assert focus.reference is not None and focus.reference.residues == "ACDE"
    np.testing.assert_array_equal(focus.column_map, [0, 2, 3, 5])
    np.testing.assert_array_equal(focus.columns, [1, 3, 4, 6])
    np.testing.assert_array_equal(focus.reference.residue_numbers, [5, 6, 7, 8])
    filt = focus.filter_sequences(0.25)  # d has 3/4 gaps in the focus columns
    assert filt.ids == ("q/5-9", "b", "c")
    np.testing.assert_array_equal(filt.row_map, [0, 1, 2])
    # column gap fractions: [0.5, 0.75, 0.25, 0.25, 0.5, 0] -> keep columns 2, 3, 5
    cols = msa.filter_columns(0.25)
    np.testing.assert_array_equal(cols.column_map, [2, 3, 5])
    np.testing.assert_array_equal(cols.select_columns(np.array([0, 2])).column_map, [2, 5])
    both = read_alignment(path, reference="q", focus=True, max_column_gap=0.25, max_sequence_gap=0)
    np.testing.assert_array_equal(both.column_map, [2, 3, 5])
    assert both.ids == ("q/5-9", "b", "c")
    # prefix lookup of the reference (plmc style), and errors
    ref = read_alignment(path, reference="q/").reference
    assert ref is not None and ref.id == "q/5-9"
    with pytest.raises(ValidationError, match="not an id"):
        read_alignment(path, reference="zz")
    with pytest.raises(ValidationError, match="out of range"):
        read_alignment(path, reference=9)
    with pytest.raises(ValidationError, match="no column"):
        msa.select_columns(np.array([1])).filter_columns(0.1)
    with pytest.raises(ValidationError, match="strictly increasing"):
        msa.select_columns(np.array([2, 1]))
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        msa.filter_sequences(1.5)


def test_msa_validation() -> None:
    states = np.zeros((2, 3), dtype=np.int8)
    with pytest.raises(ValueError, match="ids"):
        MultipleSequenceAlignment(("a",), states, PROTEIN, np.arange(3), 3, np.arange(2))
    with pytest.raises(ValueError, match="column_map"):
        MultipleSequenceAlignment(("a", "b"), states, PROTEIN, np.arange(2), 3, np.arange(2))


def test_example_family() -> None:
    ex = example_files("PF00014")
    msa = read_alignment(ex.alignment)
    assert (msa.n_sequences, msa.n_sites, msa.q) == (13600, 53, 21)
    assert len({s.tobytes() for s in msa.states}) == 8871  # README: 8871 unique
    with pytest.raises(ValidationError, match="no example"):
        example_files("PF99999")


@SETTINGS
@given(data=alignments(), block=st.integers(1, 12), gz=st.booleans())
def test_stockholm_and_psicov_generated(tmp_path: Path, data, block: int, gz: bool) -> None:
    ids, _, seqs = data
    L = len(seqs[0])
    parts = ["# STOCKHOLM 1.0", "#=GF ID generated"]
    for s in range(0, L, block):  # interleaved blocks of `block` columns
        parts.append("")
        parts += [f"{i} {q[s : s + block]}" for i, q in zip(ids, seqs, strict=True)]
        parts.append(f"#=GC SS_cons {'.' * len(seqs[0][s : s + block])}")
    parts.append("//")
    sto = tmp_path / ("x.sto.gz" if gz else "x.sto")
    text = "\n".join(parts) + "\n"
    sto.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    msa = read_alignment(sto)
    assert list(msa.ids) == ids and msa.sequences() == seqs
    aln = tmp_path / "x.aln"
    aln.write_text("\n".join(seqs) + "\n")
    assert read_alignment(aln).sequences() == seqs
