from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnpotts.errors import DataFormatError, ValidationError
from attnpotts.experiments import ExperimentSpec, RunSpec, load_spec, thaw


def _spec(**kw: object) -> ExperimentSpec:
    base: dict[str, object] = {
        "name": "demo",
        "task": "toy_stats",
        "seed": 7,
        "params": {"n": 10, "loc": 0.0, "scale": 1.0, "model": {"kind": "factored", "depth": 1}},
        "sweep": {"loc": [0.0, 1.5], "model.depth": [1, 2, 3]},
        "n_seeds": 2,
    }
    base.update(kw)
    return ExperimentSpec(**base)  # type: ignore[arg-type]


def test_expand_order_params_and_seeds() -> None:
    spec = _spec()
    runs = spec.expand()
    assert spec.n_runs == len(runs) == 2 * 3 * 2
    # last sweep key varies fastest, replicate fastest of all
    combos = [(r.params["loc"], r.params["model"]["depth"], r.replicate) for r in runs]
    expected = [(loc, d, rep) for loc in (0.0, 1.5) for d in (1, 2, 3) for rep in range(2)]
    assert combos == expected
    assert [r.index for r in runs] == list(range(12))
    # unswept params are kept, nested tables merged
    assert all(r.params["n"] == 10 and r.params["model"]["kind"] == "factored" for r in runs)
    # seeds are exactly SeedSequence(seed).spawn(n)[k]
    children = np.random.SeedSequence(7).spawn(12)
    for run, child in zip(runs, children, strict=True):
        np.testing.assert_array_equal(
            run.seed_sequence.generate_state(4), child.generate_state(4)
        )
    assert len({r.run_id for r in runs}) == 12


def test_run_id_is_content_hash() -> None:
    a = RunSpec("toy_stats", {"a": 1, "b": {"c": 2.5}}, 3, (4,), index=4, experiment="x")
    b = RunSpec("toy_stats", {"b": {"c": 2.5}, "a": 1}, 3, (4,), index=9, experiment="y")
    assert a.run_id == b.run_id  # key order, index and experiment name do not matter
    assert a.run_id.startswith("toy_stats-") and len(a.run_id) == len("toy_stats-") + 12
    assert RunSpec("toy_stats", {"a": 1, "b": {"c": 2.5}}, 3, (5,)).run_id != a.run_id
    assert RunSpec("toy_stats", {"a": 2, "b": {"c": 2.5}}, 3, (4,)).run_id != a.run_id
    assert RunSpec("toy_stats", {"a": 1, "b": {"c": 2.5}}, 4, (4,)).run_id != a.run_id
    assert RunSpec("toy_slow", {"a": 1, "b": {"c": 2.5}}, 3, (4,)).run_id != a.run_id
    # the hash is SHA-256 of canonical JSON (sorted keys, no spaces): recompute it by hand, so an
    # accidental change of the scheme (which would orphan every stored result) shows
    canonical = (
        '{"params":{"a":1,"b":{"c":2.5}},"run_id_version":1,'
        '"seed":{"entropy":3,"spawn_key":[4]},"task":"toy_stats"}'
    )
    assert a.config_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert RunSpec.from_dict(a.to_dict()) == RunSpec(
        "toy_stats", {"a": 1, "b": {"c": 2.5}}, 3, (4,), index=4, experiment="x"
    )


def test_params_are_frozen() -> None:
    run = _spec().expand()[0]
    with pytest.raises(TypeError):
        run.params["n"] = 3  # type: ignore[index]
    assert isinstance(thaw(run.params)["model"], dict)


def test_toml_round_trip(tmp_path: Path) -> None:
    spec = _spec(description="a sweep")
    path = spec.dump(tmp_path / "spec.toml")
    again = load_spec(path)
    assert again == spec
    assert [r.run_id for r in again.expand()] == [r.run_id for r in spec.expand()]


def test_stored_hash_mismatch_is_detected() -> None:
    d = RunSpec("toy_stats", {"a": 1}, 0, (0,)).to_dict()
    d["params"]["a"] = 2
    with pytest.raises(DataFormatError, match="does not match"):
        RunSpec.from_dict(d)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "bad name"}, "experiment name"),
        ({"task": ""}, "task name"),
        ({"seed": -1}, "non-negative"),
        ({"n_seeds": 0}, "n_seeds"),
        ({"params": {"x": None}}, "TOML cannot store null"),
        ({"params": {"x": math.nan}}, "finite"),
        ({"params": {"x": object()}}, "type object"),
        ({"sweep": {"loc": []}}, "non-empty list"),
        ({"sweep": {"loc": [1, 1]}}, "twice"),
        ({"sweep": {"n.x": [1]}}, "not a table"),
        ({"sweep": {"a..b": [1]}}, "empty component"),
    ],
)
def test_invalid_specs(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        _spec(**kwargs)


def test_unknown_toml_key_and_bad_toml(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text('name = "a"\ntask = "t"\nsweeps = {}\n')
    with pytest.raises(ValidationError, match=r"unknown experiment key.*sweeps"):
        load_spec(p)
    p.write_text("name = \n")
    with pytest.raises(DataFormatError, match="invalid TOML"):
        load_spec(p)
    p.write_text('task = "t"\n')
    with pytest.raises(ValidationError, match="lacks name"):
        load_spec(p)


_keys = st.text(alphabet="abcxyz_", min_size=1, max_size=5)
_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(params=st.dictionaries(_keys, _values, max_size=4), seed=st.integers(0, 2**32))
def test_toml_round_trip_property(params: dict[str, object], seed: int) -> None:
    spec = ExperimentSpec(name="p", task="toy_stats", seed=seed, params=params)
    again = ExperimentSpec.from_toml(spec.to_toml())
    assert again == spec
    assert again.expand()[0].run_id == spec.expand()[0].run_id


def test_frozen_params_equality_and_hash() -> None:
    from attnpotts.experiments import freeze

    a = freeze({"a": 1, "b": {"c": [1, 2]}})
    b = freeze({"b": {"c": [1, 2]}, "a": 1.0})
    assert a == b and hash(a) == hash(b)
    assert a == {"a": 1, "b": {"c": [1, 2]}}
    assert a != freeze({"a": 2, "b": {"c": [1, 2]}})
    import pickle

    assert pickle.loads(pickle.dumps(a)) == a
