"""Synthetic data sets: config validation, sampling, the folder format and atomic writing."""

from __future__ import annotations

import json

import numpy as np
import pytest

import attnpotts.storage as storage
from attnpotts.alphabet import Alphabet
from attnpotts.errors import UnreachableTargetError, ValidationError
from attnpotts.sampling import SampleConfig, SampledDataset, sample_dataset

SMALL = {
    "n_sites": 8, "n_states": 4, "target_distance": None, "beta": 0.6, "n_train": 60,
    "n_test": 25, "n_chains": 10, "pilot_sweeps": 40,
}  # fmt: skip


def test_config_validation_and_round_trips(tmp_path) -> None:
    c = SampleConfig(**SMALL)
    assert SampleConfig.from_dict(c.to_dict()) == c
    path = tmp_path / "c.toml"
    path.write_text(c.to_toml())
    assert SampleConfig.from_toml(path) == c
    with pytest.raises(ValidationError, match=r"unknown sample option\(s\) n_seqs"):
        SampleConfig.from_dict({"n_seqs": 3})
    with pytest.raises(ValidationError, match="n_train"):
        SampleConfig(n_train=-5)
    with pytest.raises(ValidationError, match="target_distance"):
        SampleConfig(target_distance=1.2)
    with pytest.raises(ValidationError, match="method"):
        SampleConfig(method="hmc")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="mean_degree"):
        SampleConfig(n_sites=3, mean_degree=5)


@pytest.mark.parametrize("method", ["gibbs", "parallel_tempering"])
def test_sample_dataset_is_deterministic_and_well_formed(method) -> None:
    c = SampleConfig(**SMALL, method=method, n_temperatures=4)
    ds = sample_dataset(c)
    assert ds.train.shape == (60, 8) and ds.test.shape == (25, 8)
    assert ds.train.dtype == np.int8 and ds.train.max() < 4
    again = sample_dataset(c)
    np.testing.assert_array_equal(ds.train, again.train)
    np.testing.assert_array_equal(ds.test, again.test)
    m = ds.manifest
    assert m["seed"] == 0 and m["config"] == c.to_dict()
    assert m["sampler"]["thin"] >= 1 and m["model"]["beta"] == 0.6
    dg = m["diagnostics"]
    for key in ("tau_sweeps", "energy_split_rhat", "acceptance_rate", "conditional_entropy"):
        assert np.isfinite(dg[key])
    # thinning by 2 tau: kept samples of a chain are close to uncorrelated
    assert dg["tau_overlap_per_kept_sample"] < 3
    json.dumps(m)  # JSON-serialisable
    other = sample_dataset(SampleConfig(**{**SMALL, "seed": 1}))
    assert not np.array_equal(ds.train, other.train)


def test_given_burn_in_and_thin_are_used() -> None:
    ds = sample_dataset(SampleConfig(**SMALL, burn_in=7, thin=3))
    s = ds.manifest["sampler"]
    assert s["thin"] == 3 and s["burn_in_sweeps"] == 40 + 7 and s["thin_rule"] == "given"


def test_save_load_round_trip_and_folder_format(tmp_path) -> None:
    ds = sample_dataset(SampleConfig(**SMALL))
    out = ds.save(tmp_path / "data")
    names = {p.name for p in out.iterdir()}
    assert names == {
        ".attnpotts-output",
        "model.npz",
        "sequences.npz",
        "train.fasta",
        "test.fasta",
        "summary.json",
        "config.json",
    }
    back = SampledDataset.load(out)
    np.testing.assert_array_equal(back.train, ds.train)
    np.testing.assert_array_equal(back.test, ds.test)
    assert back.model.allclose(ds.model, rtol=0, atol=0) and back.manifest == ds.manifest
    lines = (out / "train.fasta").read_text().splitlines()
    np.testing.assert_array_equal(Alphabet.generic(4).encode(lines[1::2]), ds.train)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["seed"] == 0 and "numpy" in cfg["environment"]
    with pytest.raises(FileExistsError, match="overwrite"):
        ds.save(out)
    ds.save(out, overwrite=True)


def test_no_fasta_beyond_26_colours(tmp_path) -> None:
    ds = sample_dataset(SampleConfig(**{**SMALL, "n_states": 30, "n_train": 10, "n_test": 2}))
    names = {p.name for p in ds.save(tmp_path / "d").iterdir()}
    assert "train.fasta" not in names and "sequences.npz" in names


def test_a_failed_save_leaves_nothing(tmp_path, monkeypatch) -> None:
    ds = sample_dataset(SampleConfig(**SMALL))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("attnpotts.sampling.dataset.atomic_write_json", boom)
    with pytest.raises(OSError, match="disk full"):
        ds.save(tmp_path / "data")
    assert list(tmp_path.iterdir()) == []
    assert storage.atomic_write_json is not boom


def test_unreachable_target_is_refused() -> None:
    with pytest.raises(UnreachableTargetError, match="not reachable"):
        sample_dataset(SampleConfig(**{**SMALL, "target_distance": 0.9}))


def test_model_file(tmp_path) -> None:
    ds = sample_dataset(SampleConfig(**SMALL))
    path = ds.model.with_beta(0.3).save(tmp_path / "m.npz")
    c = SampleConfig(**{**SMALL, "beta": None, "model_file": str(path)})
    ds2 = sample_dataset(c)
    assert ds2.model.beta == 0.3 and ds2.model.allclose(ds.model.with_beta(0.3))
    assert ds2.manifest["model"]["model_file"] == str(path)
