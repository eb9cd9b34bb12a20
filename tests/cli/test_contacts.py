"""``attnpotts contacts`` end to end: outputs, column map, precision, errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from attnpotts.alignment import example_files
from attnpotts.cli.main import main
from attnpotts.formats import load_couplings_npz, read_ec_table, read_score_matrix
from attnpotts.potts import ExactPotts, PottsModel

EDGES = [(0, 6), (1, 8), (2, 9), (3, 9)]
L_SYN = 10


def _synthetic_family(tmp: Path, *, extra_gap_column: bool = False) -> tuple[Path, Path]:
    """An alignment sampled exactly from a planted Potts model (letters A, C, D) + distances."""
    rng = np.random.default_rng(3)
    q = 3
    J = np.zeros((L_SYN, L_SYN, q, q))
    for i, j in EDGES:
        block = rng.normal(0.0, 1.5, (q, q))
        J[i, j], J[j, i] = block, block.T
    exact = ExactPotts(PottsModel(rng.normal(0, 0.3, (L_SYN, q)), J))
    idx = rng.choice(exact.probabilities.size, size=3000, p=exact.probabilities)
    letters = np.array(list("ACD"))
    rows = ["".join(letters[s]) for s in exact.states[idx]]
    if extra_gap_column:  # an all-gap first column that --max-column-gap removes
        rows = ["-" + r for r in rows]
    # distinct names; sequence k is the reference when it is first
    text = "".join(f">seq{k}/1-{L_SYN}\n{r}\n" for k, r in enumerate(rows))
    aln = tmp / "family.fasta"
    aln.write_text(text)
    shift = 1 if extra_gap_column else 0
    lines = ["# synthetic: planted pairs at 5 A, all others at 12 A", "i\tj\td"]
    for i in range(L_SYN):
        for j in range(i + 1, L_SYN):
            d = 5.0 if (i, j) in EDGES else 12.0
            lines.append(f"{i + 1 + shift}\t{j + 1 + shift}\t{d}")
    dist = tmp / "family.distances.tsv"
    dist.write_text("\n".join(lines) + "\n")
    return aln, dist


def test_contacts_writes_every_output_with_column_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aln, dist = _synthetic_family(tmp_path, extra_gap_column=True)
    out = tmp_path / "out"
    rc = main(
        [
            "contacts",
            str(aln),
            "--out",
            str(out),
            "--distances",
            str(dist),
            "--max-column-gap",
            "0.5",
            "--max-iter",
            "40",
            "--identity-threshold",
            "1.0",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "precision" in printed
    for name in (
        "summary.json",
        "config.json",
        "scores.mat",
        "ec.txt",
        "ec.tsv",
        "couplings.npz",
        "column_map.tsv",
        "contact_map.png",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_sequences"] == 3000 and summary["n_sites"] == L_SYN
    assert summary["n_original_columns"] == L_SYN + 1
    assert 0 < summary["n_eff"] <= 3000 and summary["wall_seconds"] > 0
    assert set(summary["precision"]) == {"L", "L/2", "L/5", "L/10"}
    assert summary["precision"]["L/5"] == 1.0  # top-2 pairs at separation >= 6 are planted
    assert set(summary["precision_by_score"]) == {"gap_excluded", "gap_included"}
    conv = summary["convergence"]
    assert {"iterations", "final_gradient_norm", "stop_reason"} <= set(conv)
    assert summary["conventions"]["regularization"]["given"]["convention"] == "evcouplings"
    # the column map: fitted column k is original column k + 1 (the gap column was dropped)
    rows = [ln.split("\t") for ln in (out / "column_map.tsv").read_text().splitlines()[2:]]
    assert [int(r[1]) for r in rows] == list(range(2, L_SYN + 2))
    ecs = read_ec_table(out / "ec.txt")
    i, _, j, _, _ = ecs[0]
    assert (i - 2, j - 2) in EDGES  # EC table in original columns
    S = read_score_matrix(out / "scores.mat")
    assert S.shape == (L_SYN, L_SYN)
    npz = load_couplings_npz(out / "couplings.npz")
    assert npz.couplings.shape == (L_SYN, L_SYN, 21, 21)
    assert list(npz.columns) == list(range(2, L_SYN + 2))
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["max_iter"] == 40 and "environment" in config


def test_ec_files_numbered_by_the_focus_sequence(tmp_path: Path) -> None:
    """With --focus, ec.txt uses the focus sequence's residue numbers (plmc's focus mode) and
    ec.tsv keeps the original alignment columns next to them."""
    aln, _ = _synthetic_family(tmp_path, extra_gap_column=True)
    text = aln.read_text().replace(f">seq0/1-{L_SYN}\n", f">seq0/101-{100 + L_SYN}\n", 1)
    aln.write_text(text)
    out = tmp_path / "focus"
    rc = main(["contacts", str(aln), "--out", str(out), "--focus", "--max-iter", "40"])
    assert rc == 0
    first = (out / "ec.txt").read_text().splitlines()[0].split()
    assert len(first) == 6 and first[4] == "0"
    i, j = int(first[0]), int(first[2])
    assert (i - 101, j - 101) in EDGES  # residue numbers of the focus sequence
    assert first[1] in "ACD" and first[3] in "ACD"
    header, top = (out / "ec.tsv").read_text().splitlines()[:2]
    assert header.split("\t")[:6] == ["i", "A_i", "j", "A_j", "column_i", "column_j"]
    row = top.split("\t")
    assert (int(row[0]), int(row[2])) == (i, j)
    assert (int(row[4]), int(row[5])) == (i - 101 + 2, j - 101 + 2)  # original columns
    summary = json.loads((out / "summary.json").read_text())
    assert "focus sequence" in summary["conventions"]["columns"]


def test_degenerate_alignment_warns_on_stderr_and_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Few sequences and a constant column are fitted, but said (never silently accepted)."""
    rng = np.random.default_rng(3)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    rows = letters[rng.integers(0, 20, size=(5, 10))]
    rows[:, 4] = "W"  # a constant column
    aln = tmp_path / "few.fasta"
    aln.write_text("".join(f">s{k}\n{''.join(r)}\n" for k, r in enumerate(rows)))
    out = tmp_path / "out"
    assert main(["contacts", str(aln), "--out", str(out), "--max-iter", "3"]) == 0
    err = capsys.readouterr().err
    warnings = json.loads((out / "summary.json").read_text())["warnings"]
    for text in ("few effective sequences", "constant"):
        assert any(text in w for w in warnings), warnings
        assert err.count(text) == 1, err  # once, when it arose


def test_contacts_counts_every_empty_sequence_not_the_distinct_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Duplicates are collapsed before the fit; the warnings still count the user's rows."""
    rng = np.random.default_rng(4)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    rows = ["".join(r) for r in letters[rng.integers(0, 20, size=(30, 8))]]
    rows += ["-" * 8, "-" * 8, "X" * 8]  # three rows without a residue, one distinct sequence
    aln = tmp_path / "empty_rows.fasta"
    aln.write_text("".join(f">s{k}\n{r}\n" for k, r in enumerate(rows)))
    out = tmp_path / "out"
    assert main(["contacts", str(aln), "--out", str(out), "--max-iter", "3", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "3 sequence(s) without any residue" in " ".join(summary["warnings"])
    assert summary["n_sequences"] == 33 and summary["n_unique"] == 31
    assert "warning: alignment" in capsys.readouterr().err


def test_fit_progress_is_plain_lines_with_iterations_objective_and_eta(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a terminal (pytest captures stderr): plain progress lines, no escape codes."""
    from attnpotts.dca.pipeline import ContactsConfig, run_contacts

    rng = np.random.default_rng(4)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY-"))
    aln = tmp_path / "a.fasta"
    rows = letters[rng.integers(0, 21, size=(60, 8))]
    aln.write_text("".join(f">s{k}\n{''.join(r)}\n" for k, r in enumerate(rows)))
    run_contacts(aln, tmp_path / "out", config=ContactsConfig(max_iter=4), progress=True)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("contacts plm")]
    assert lines and "iterations" in lines[-1] and "\x1b" not in err and "\r" not in err
    assert "4/4" in lines[-1] or "/4" in lines[-1]


def test_factored_contacts_record_their_start_and_iteration_cap(tmp_path: Path) -> None:
    """The default factored fit starts from the mean-field map; summary.json says so, and the
    iteration cap the start and the alignment's N_eff imply."""
    from attnpotts.dca import factored_iterations
    from attnpotts.dca.pipeline import ContactsConfig, run_contacts

    rng = np.random.default_rng(5)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY-"))
    aln = tmp_path / "a.fasta"
    rows = letters[rng.integers(0, 21, size=(60, 10))]
    aln.write_text("".join(f">s{k}\n{''.join(r)}\n" for k, r in enumerate(rows)))
    cfg = ContactsConfig(model="factored", n_heads=2, key_dim=3)
    assert cfg.max_iter is None  # resolved by the start and N_eff at fit time
    run_contacts(aln, tmp_path / "out", config=cfg)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["conventions"]["model"].endswith("mean-field start")
    assert summary["convergence"]["max_iterations"] == factored_iterations(summary["n_eff"])


def test_contacts_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    aln, dist = _synthetic_family(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("keep")
    rc = main(["contacts", str(aln), "--out", str(out), "--max-iter", "2"])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "contacts",
                str(aln),
                "--out",
                str(tmp_path / "o2"),
                "--distances",
                str(dist),
                "--structure",
                "x.pdb",
            ]
        )
    rc = main(["contacts", str(aln), "--out", str(tmp_path / "o3"), "--memory-limit-gb", "0.0001"])
    err = capsys.readouterr().err
    assert rc == 2 and "factored" in err and "GiB" in err
    bad = tmp_path / "bad.tsv"
    bad.write_text("i\tj\td\n1\t200\t3.0\n")
    rc = main(
        [
            "contacts",
            str(aln),
            "--out",
            str(tmp_path / "o4"),
            "--distances",
            str(bad),
            "--max-iter",
            "2",
        ]
    )
    assert rc == 2 and "columns" in capsys.readouterr().err
    # two columns: refused before the fit (the score's APC needs three), nothing written
    tiny = tmp_path / "tiny.fasta"
    tiny.write_text(">a\nAC\n>b\nAD\n>c\nCD\n")
    rc = main(["contacts", str(tiny), "--out", str(tmp_path / "o5")])
    err = capsys.readouterr().err
    assert rc == 2 and "2 column(s)" in err and "at least 3" in err and "iterations" not in err
    assert not (tmp_path / "o5").exists()


@pytest.mark.slow
def test_pf00014_precision_end_to_end(tmp_path: Path) -> None:
    """The default command on the shipped PF00014 reaches plmc's top-L precision there (0.981)."""
    ex = example_files("PF00014")
    out = tmp_path / "pf14"
    rc = main(["contacts", str(ex.alignment), "--out", str(out), "--distances", str(ex.distances)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_sequences"] == 13600 and summary["n_sites"] == 53
    assert summary["precision"]["L"] >= 0.98
    # the default score keeps the gap state (plmc's); the other is reported alongside
    assert summary["precision"] == summary["precision_by_score"]["gap_included"]
    assert summary["warnings"] == []


def test_contacts_with_a_structure_and_its_aligned_sequence(tmp_path: Path) -> None:
    files = example_files("PF00076_2X1B")
    assert files.structure is not None and files.structure_sequence is not None
    with gzip.open(files.alignment, "rt") as fh:
        lines = fh.read().splitlines()[:400]  # 200 records, fast fit
    aln = tmp_path / "small.fasta"
    aln.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    rc = main(
        [
            "contacts",
            str(aln),
            "--out",
            str(out),
            "--structure",
            str(files.structure),
            "--chain",
            "A",
            "--structure-sequence",
            str(files.structure_sequence),
            "--max-iter",
            "3",
            "--distance-column",
            "d_min_heavy",
        ]
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    dist = summary["distances"]
    assert dist["chain"] == "A" and dist["identity_to_reference"] == 1.0
    assert dist["mapped_columns"] > 60
    assert set(summary["precision"]) == {"L", "L/2", "L/5", "L/10"}
    assert not [w for w in summary["warnings"] if "structure" in w or "distance" in w]


def test_contacts_warns_before_the_fit_when_the_structure_is_another_proteins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mapped through a reference sequence of another protein, the structure covers 6 of 67
    columns and no scored pair has a distance: said (with the fix), and precision prints n/a."""
    files = example_files("PF00076_2X1B")
    assert files.structure is not None
    with gzip.open(files.alignment, "rt") as fh:
        lines = fh.read().splitlines()[:400]  # the first record (the reference) is not 2X1B's
    aln = tmp_path / "small.fasta"
    aln.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    argv = ["contacts", str(aln), "--out", str(out), "--structure", str(files.structure),
            "--chain", "A", "--max-iter", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    covered, unscored = summary["warnings"][:2]
    assert "covers only 6 of the reference's 67 residue columns" in covered
    assert "--structure-sequence" in covered and "--reference" in covered
    assert "precision is undefined" in unscored
    assert summary["precision"]["L"] is None and "L: n/a" in captured.out
    assert captured.err.index("covers only") < captured.err.index("plm fit")  # before the fit


def test_distance_warnings_of_a_partial_or_different_structure() -> None:
    from attnpotts.dca.pipeline import _distance_warnings

    D = np.full((10, 10), np.nan)
    D[0, 9] = D[9, 0] = 5.0  # one scored pair (|i - j| = 9)
    same = {"reference_residue_columns": 10, "mapped_columns": 10, "identity_to_reference": 1.0}
    assert _distance_warnings(D, same) == [] and _distance_warnings(None, {}) == []
    assert _distance_warnings(D, {"source": "t.tsv", "distance": "d"}) == []  # a table: no mapping
    other = dict(same, identity_to_reference=0.4)
    assert "only 40% of the 10 residues" in _distance_warnings(D, other)[0]
    half = dict(same, mapped_columns=4)
    assert "covers only 4 of the reference's 10" in _distance_warnings(D, half)[0]
    D[0, 9] = D[9, 0] = np.nan
    assert "precision is undefined" in _distance_warnings(D, same)[0]


def test_fit_defaults_follow_the_model() -> None:
    """Without --max-iter / --lbfgs-history / --score-gap each model gets its estimator's defaults."""
    from attnpotts.dca import (
        FACTORED_LBFGS_HISTORY,
        PLM_MAX_ITER,
        PLM_SCORE_GAP,
        FactoredDCA,
        PlmDCA,
    )
    from attnpotts.dca.pipeline import ContactsConfig
    from attnpotts.errors import ValidationError

    plm, fac = ContactsConfig(), ContactsConfig(model="factored")
    assert (plm.max_iter, plm.lbfgs_history) == (PlmDCA().max_iter, PlmDCA().lbfgs_history) == (PLM_MAX_ITER, 5)
    assert plm.score_gap == PlmDCA().score_gap == PLM_SCORE_GAP
    assert fac.score_gap == FactoredDCA().score_gap
    assert ContactsConfig(score_gap="exclude").estimator().score_gap == "exclude"
    assert (plm.collapse, fac.collapse) == (PlmDCA().collapse, FactoredDCA().collapse)
    from attnpotts.workflows import ContactsOptions

    assert ContactsOptions(model="factored").collapse == fac.collapse

    # the options are a ContactsConfig: their None defaults resolve per model the same way
    assert ContactsOptions().score_gap == plm.score_gap
    assert ContactsOptions(model="factored").max_iter == fac.max_iter
    assert (fac.max_iter, fac.lbfgs_history) == (FactoredDCA().max_iter, FactoredDCA().lbfgs_history)
    assert (fac.max_iter, fac.lbfgs_history) == (None, FACTORED_LBFGS_HISTORY)  # None: per start
    assert fac.lbfgs_history != plm.lbfgs_history  # the factored default, not plm's
    est = ContactsConfig(model="factored", max_iter=7, lbfgs_history=3).estimator()
    assert (est.max_iter, est.lbfgs_history) == (7, 3)
    from attnpotts.options import defaults

    field_defaults = defaults(ContactsOptions)  # what the flags and TOML keys start from
    assert field_defaults["max_iter"] is None and field_defaults["lbfgs_history"] is None
    with pytest.raises(ValidationError, match="lbfgs_history"):
        ContactsConfig(lbfgs_history=0)


def test_contacts_warns_when_the_fit_stops_far_from_convergence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aln, _ = _synthetic_family(tmp_path)
    out = tmp_path / "out"
    assert main(["contacts", str(aln), "--out", str(out), "--max-iter", "1"]) == 0
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["warnings"]) == 1 and "far from convergence" in summary["warnings"][0]
    assert summary["convergence"]["far_from_convergence"] is True
    # said once, when it arose, in the commands' own form (no timestamps, no logger names)
    assert err.count("the fit stopped far from convergence") == 1
    assert "attnpotts contacts: warning: plm fit: the fit stopped far from convergence" in err


def test_contacts_symmetric_factored_fit(tmp_path: Path) -> None:
    """``--symmetric`` reaches the fitted model (``J[i, j, a, b] = J[j, i, b, a]``) and the config;
    the default keeps the paper's couplings."""
    from attnpotts.alignment import read_alignment
    from attnpotts.dca import FACTORED_SYMMETRIC, FactoredDCA
    from attnpotts.dca.pipeline import ContactsConfig

    rng = np.random.default_rng(6)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY-"))
    aln = tmp_path / "a.fasta"
    rows = letters[rng.integers(0, 21, size=(50, 8))]
    aln.write_text("".join(f">s{k}\n{''.join(r)}\n" for k, r in enumerate(rows)))
    out = tmp_path / "out"
    args = ["contacts", str(aln), "--out", str(out), "--model", "factored", "--n-heads", "2",
            "--key-dim", "3", "--max-iter", "3"]
    assert main([*args, "--symmetric"]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["symmetric"] is True
    assert "symmetric couplings" in json.loads((out / "summary.json").read_text())["conventions"]["model"]
    assert ContactsConfig().symmetric is FACTORED_SYMMETRIC is FactoredDCA().symmetric is False
    est = ContactsConfig(model="factored", symmetric=True, n_heads=2, key_dim=3, max_iter=3).estimator()
    assert isinstance(est, FactoredDCA) and est.symmetric
    est.fit(read_alignment(aln))
    J = est.couplings_
    np.testing.assert_allclose(J, J.transpose(1, 0, 3, 2), atol=1e-6)


def test_contacts_collapse_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--collapse`` reaches the fit and the outputs: plm fits every distinct sequence by default,
    ``--collapse neighbours`` one row per group of neighbours (summary ``n_fitted``, the same
    ``N_eff``); config.json records the resolved choice; a bad value names the choices."""
    rng = np.random.default_rng(7)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY-"))
    base = rng.integers(0, 21, size=(8, 12))
    rows = base[rng.integers(0, 8, size=64)]
    rows[::2, 0] = (rows[::2, 0] + 1) % 21  # neighbours at 11/12 identity
    aln = tmp_path / "a.fasta"
    aln.write_text("".join(f">s{k}\n{''.join(letters[r])}\n" for k, r in enumerate(rows)))
    args = ["contacts", str(aln), "--max-iter", "2", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "exact")]) == 0
    assert main([*args, "--out", str(tmp_path / "merged"), "--collapse", "neighbours"]) == 0
    exact = json.loads((tmp_path / "exact" / "summary.json").read_text())
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert exact["n_fitted"] == exact["n_unique"] == merged["n_unique"]
    assert merged["n_fitted"] < merged["n_unique"] and merged["n_eff"] == pytest.approx(exact["n_eff"])
    assert json.loads((tmp_path / "exact" / "config.json").read_text())["config"]["collapse"] == "duplicates"
    assert merged["conventions"]["weights"]["collapse"] == "neighbours"
    assert f"fitted {merged['n_fitted']}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # argparse's own refusal of a bad choice
        main([*args, "--out", str(tmp_path / "bad"), "--collapse", "clusters"])
    assert exit_info.value.code == 2 and "duplicates" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
