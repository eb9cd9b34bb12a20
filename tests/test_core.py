"""Alphabets, seeds, atomic storage and config merging."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnpotts.alphabet import PROTEIN, RNA, Alphabet
from attnpotts.errors import DataFormatError, ValidationError
from attnpotts.random import as_generator, spawn_seeds, torch_generator
from attnpotts.storage import OUTPUT_MARKER, atomic_output_dir, atomic_write_json, atomic_write_text


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet=PROTEIN.symbols, min_size=7, max_size=7), min_size=1, max_size=20))
def test_protein_encode_decode_round_trip(seqs: list[str]) -> None:
    states = PROTEIN.encode(seqs)
    assert states.shape == (len(seqs), 7)
    assert PROTEIN.decode(states) == seqs


def test_protein_alphabet_conventions() -> None:
    assert PROTEIN.q == 21 and PROTEIN.gap_index == 0 and PROTEIN.mask_token == 21
    # lower case is read as upper case, '.' and unknown residues become gaps
    np.testing.assert_array_equal(PROTEIN.encode(["aC.X"]), PROTEIN.encode(["AC--"]))
    assert RNA.encode(["ACGT"]).tolist() == RNA.encode(["ACGU"]).tolist()


def test_alphabet_errors() -> None:
    strict = Alphabet("ABC")
    with pytest.raises(DataFormatError, match=r"'Z' \(sequence 1, column 2\)"):
        strict.encode(["AB", "AZ"], source="x.fasta")
    with pytest.raises(DataFormatError, match="same length"):
        strict.encode(["AB", "ABC"])
    with pytest.raises(ValidationError, match="distinct"):
        Alphabet("AAB")
    with pytest.raises(ValidationError, match=r"2\.\.26"):
        Alphabet.generic(40)
    with pytest.raises(ValidationError, match=r"0\.\.2"):
        strict.decode(np.array([[3]]))


def test_seeds_are_reproducible_and_independent() -> None:
    a = as_generator(5).normal(size=4)
    np.testing.assert_array_equal(a, as_generator(5).normal(size=4))
    children = spawn_seeds(5, 3)
    draws = [as_generator(c).normal() for c in children]
    assert len(set(draws)) == 3
    assert [as_generator(c).normal() for c in spawn_seeds(5, 3)] == draws
    g1 = torch_generator(7)
    g2 = torch_generator(7)
    import torch

    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    with pytest.raises(ValueError, match="non-negative"):
        as_generator(-1)
    with pytest.raises(TypeError, match="seed must be"):
        as_generator("x")  # type: ignore[arg-type]


def test_atomic_output_dir_leaves_nothing_on_failure(tmp_path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), atomic_output_dir(out) as tmp:
        atomic_write_text(tmp / "partial.txt", "half")
        raise RuntimeError("killed")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_output_dir(out) as tmp:
        atomic_write_json(tmp / "summary.json", {"x": np.float32(1.5), "nan": float("nan")})
    assert json.loads((out / "summary.json").read_text()) == {"x": 1.5, "nan": None}
    with pytest.raises(FileExistsError, match="--overwrite"), atomic_output_dir(out):
        pass
    with atomic_output_dir(out, overwrite=True) as tmp:
        atomic_write_text(tmp / "new.txt", "new")
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize(
    ("code", "env", "expected"),
    [
        ("import attnpotts", None, "passive"),  # idle OpenMP threads sleep (docs/conventions.md)
        ("import attnpotts", "active", "active"),  # the user's choice is kept
        ("import numba, attnpotts", None, "unset"),  # too late to matter: left alone
    ],
)
def test_openmp_wait_policy(code: str, env: str | None, expected: str) -> None:
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env is not None:
        environ["OMP_WAIT_POLICY"] = env
    out = subprocess.run(
        [sys.executable, "-c", f"{code}; import os; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"],
        capture_output=True, text=True, check=True, env=environ,
    )
    assert out.stdout.strip() == expected
