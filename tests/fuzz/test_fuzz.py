"""Fuzz suite: every reader and every command's TOML config, on generated and mutated inputs.

Each case is classified as a *clean error* (an :class:`~attnpotts.errors.AttnPottsError` or
``FileNotFoundError`` with a message) or *accepted*. A test fails on anything else: another
exception (a traceback for the user), a case running past its time limit (a hang), or an accepted
input that breaks a stated rule (the ``_check_*`` oracles: e.g. accepted distances are finite,
non-negative and symmetric with no ``i == j``; an accepted checkpoint holds exactly the tensors
it was written with; an accepted option keeps the type it was written with).

The base inputs are real files mutated byte-wise (the shipped PF00014 alignment and distances)
or small files written here (a Potts model, a checkpoint, a structure, a sampled data folder).
The default run tries a few hundred cases (``FAST``); ``pytest -m slow`` more than 10,000.
All cases are derandomized: the same cases on every run.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import shutil
import signal
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnpotts.alignment import read_alignment, read_distance_table, read_structure
from attnpotts.alignment.examples import example_files
from attnpotts.alphabet import PROTEIN
from attnpotts.cli.main import build_parser
from attnpotts.errors import AttnPottsError
from attnpotts.options import option_specs
from attnpotts.potts import ConditionalPotts, PottsModel
from attnpotts.sampling import SampledDataset

CLEAN = (AttnPottsError, FileNotFoundError)
#: Seconds one case may take (the slowest readers take milliseconds).
TIME_LIMIT_S = 10.0
#: Cases per input kind in the default run and in the slow suite.
FAST, SLOW = 30, 600
_COUNT = {"fast": FAST, "slow": SLOW}


class Hang(BaseException):
    """A case ran past :data:`TIME_LIMIT_S` (a BaseException, so no reader can swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"case ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def classify(
    counts: Counter[tuple[str, str]],
    kind: str,
    run: Callable[[], Any],
    check: Callable[[Any], None] | None = None,
) -> str:
    """Run one case; count it; fail on a traceback, a hang or a wrong acceptance."""
    with time_limit(TIME_LIMIT_S):
        try:
            result = run()
        except CLEAN as exc:
            assert str(exc).strip(), f"{kind}: an error without a message ({type(exc).__name__})"
            counts[(kind, "clean error")] += 1
            return "clean error"
    if check is not None:
        check(result)
    counts[(kind, "accepted")] += 1
    return "accepted"


def _settings(mode: str) -> settings:
    return settings(
        max_examples=_COUNT[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.function_scoped_fixture],
    )  # fmt: skip


MODES = [pytest.param("fast"), pytest.param("slow", marks=pytest.mark.slow)]


# ------------------------------------------------------------------------------- mutations
def mutations() -> st.SearchStrategy[list[tuple[float, str, bytes]]]:
    """Edits (relative position, operation, bytes) applied by :func:`mutate`."""
    op = st.sampled_from(["replace", "insert", "delete", "truncate", "duplicate"])
    return st.lists(
        st.tuples(st.floats(0, 1), op, st.binary(min_size=1, max_size=8)), min_size=1, max_size=6
    )


_SPECIAL = [b"\x00", b"\xff", b"\n", b"\t", b" ", b"-", b".", b">", b"#", b"//", b"nan", b"-1",
            b"inf", b"1e308", b"\r", b"\x1b", b"9999999999"]  # fmt: skip


def mutate(data: bytes, edits: list[tuple[float, str, bytes]]) -> bytes:
    out = bytearray(data)
    for rel, op, payload in edits:
        k = min(int(rel * len(out)), max(len(out) - 1, 0))
        if payload[0] % 3 == 0:  # bias towards bytes that matter to text parsers
            payload = _SPECIAL[payload[-1] % len(_SPECIAL)]
        if op == "replace":
            out[k : k + len(payload)] = payload
        elif op == "insert":
            out[k:k] = payload
        elif op == "delete":
            del out[k : k + len(payload)]
        elif op == "truncate":
            del out[k:]
        else:
            out[k:k] = out[k : k + 64]
    return bytes(out)


# ------------------------------------------------------------------------------ base inputs
@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def alignments() -> dict[str, bytes]:
    """The first 30 records of the shipped PF00014 alignment in the six supported forms."""
    msa = read_alignment(example_files("PF00014").alignment)
    ids, seqs = list(msa.ids[:30]), msa.sequences()[:30]
    fasta = "".join(f">{i}\n{s}\n" for i, s in zip(ids, seqs, strict=True)).encode()
    a3m = "".join(f">{i}\n{s[:5]}ac{s[5:]}\n" for i, s in zip(ids, seqs, strict=True)).encode()
    sto = ("# STOCKHOLM 1.0\n" + "".join(f"{i} {s}\n" for i, s in zip(ids, seqs, strict=True)) + "//\n").encode()
    return {
        "fasta": fasta, "fasta.gz": gzip.compress(fasta, mtime=0), "a2m": fasta, "a3m": a3m,
        "sto": sto, "aln": "".join(f"{s}\n" for s in seqs).encode(),
    }  # fmt: skip


def _check_alignment(msa: Any) -> None:
    assert len(set(msa.ids)) == len(msa.ids), "accepted duplicate record ids"
    for text in (*msa.ids, *msa.descriptions):
        assert all(c >= " " and c != "\x7f" for c in text), f"accepted a control byte in {text!r}"
    states = np.asarray(msa.states)
    assert states.ndim == 2 and states.shape[0] == len(msa.ids) and states.shape[1] >= 1
    assert states.min() >= 0 and states.max() < msa.q


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", ["fasta", "fasta.gz", "a2m", "a3m", "sto", "aln"])
def test_alignment_readers(mode: str, fmt: str, alignments, work, fuzz_counts) -> None:
    base = alignments[fmt]

    @_settings(mode)
    @given(edits=mutations())
    def case(edits: list[tuple[float, str, bytes]]) -> None:
        path = work / f"case.{fmt}"
        data = mutate(base, edits)
        if fmt == "fasta.gz" and edits[0][1] == "replace" and edits[0][2][0] % 2:
            data = gzip.compress(mutate(gzip.decompress(base), edits), mtime=0)  # valid gzip, bad text
        path.write_bytes(data)
        classify(fuzz_counts, f"alignment ({fmt})", lambda: read_alignment(path, alphabet=PROTEIN),
                 _check_alignment)  # fmt: skip

    case()


# ------------------------------------------------------------------------------ distances TSV
def _check_distances(table: Any) -> None:
    for m in table.maps.values():
        assert np.isnan(np.diag(m)).all(), "accepted a distance with i == j"
        off = m[~np.isnan(m)]
        assert np.isfinite(off).all() and (off >= 0).all(), "accepted a non-finite or negative distance"
        assert np.array_equal(np.isnan(m), np.isnan(m.T)) and np.allclose(m, m.T, equal_nan=True)


@pytest.mark.parametrize("mode", MODES)
def test_distances_reader(mode: str, work, fuzz_counts) -> None:
    lines = example_files("PF00014").distances.read_bytes().splitlines(keepends=True)
    base = b"".join(lines[:150])

    @_settings(mode)
    @given(edits=mutations(), n_sites=st.one_of(st.none(), st.integers(1, 60)))
    def case(edits: list[tuple[float, str, bytes]], n_sites: int | None) -> None:
        path = work / "case.tsv"
        path.write_bytes(mutate(base, edits))
        classify(fuzz_counts, "distances TSV", lambda: read_distance_table(path, n_sites=n_sites),
                 _check_distances)  # fmt: skip

    case()


# --------------------------------------------------------------------------------- structures
def _pdb_text() -> bytes:
    names = ["ALA", "GLY", "SER", "LEU", "LYS", "ASP", "PHE", "TRP", "MET", "VAL", "ILE", "HIS"]
    lines, serial = [], 1
    for k, name in enumerate(names, start=1):
        for atom, dx in (("N", 0.0), ("CA", 1.2), ("C", 2.0), ("O", 2.6), ("CB", 1.5)):
            if atom == "CB" and name == "GLY":
                continue
            x, y, z = 3.8 * k + dx, 0.5 * (k % 3), 0.3 * dx
            lines.append(
                f"ATOM  {serial:5d}  {atom:<3s} {name} A{k:4d}    {x:8.3f}{y:8.3f}{z:8.3f}"
                f"  1.00  0.00           {atom[0]}"
            )
            serial += 1
    return ("\n".join(lines) + "\nTER\nEND\n").encode()


def _check_structure(ch: Any) -> None:
    assert len(ch.sequence) == len(ch.residue_numbers) >= 1
    assert ch.atom_coords.ndim == 2 and ch.atom_coords.shape[1] == 3


@pytest.mark.parametrize("mode", MODES)
def test_structure_reader(mode: str, work, fuzz_counts) -> None:
    base = _pdb_text()
    read_structure(_write(work / "ok.pdb", base))  # the base case reads

    @_settings(mode)
    @given(edits=mutations(), chain=st.sampled_from([None, "A", "B"]))
    def case(edits: list[tuple[float, str, bytes]], chain: str | None) -> None:
        path = _write(work / "case.pdb", mutate(base, edits))
        classify(fuzz_counts, "structures", lambda: read_structure(path, chain=chain), _check_structure)

    case()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------- Potts .npz
def _small_model() -> PottsModel:
    rng = np.random.default_rng(3)
    site = rng.normal(size=(2, 5, 5))
    site = (site + site.transpose(0, 2, 1)) / 2
    site[:, np.arange(5), np.arange(5)] = 0
    colour = rng.normal(size=(2, 3, 3))
    return PottsModel.from_factors(site, colour + colour.transpose(0, 2, 1), beta=0.7)


def _check_potts(model: ConditionalPotts) -> None:
    J, h = model.couplings, model.fields
    L, q = h.shape
    assert J.shape == (L, L, q, q) and np.isfinite(J).all() and np.isfinite(h).all()
    assert math.isfinite(model.beta) and model.beta >= 0
    assert not np.abs(J[np.arange(L), np.arange(L)]).any()


_ARRAY_EDITS = st.sampled_from(["none", "nan", "dtype", "shape", "drop", "extra", "meta", "object"])


def _edit_arrays(arrays: dict[str, Any], how: str, k: int) -> dict[str, Any]:
    keys = sorted(arrays)
    key = keys[k % len(keys)]
    a = dict(arrays)
    if how == "nan" and a[key].dtype.kind == "f":
        x = a[key].copy()
        x.flat[k % x.size] = np.nan
        a[key] = x
    elif how == "dtype":
        a[key] = a[key].astype([np.int64, np.complex128, np.float32, bool, "U3"][k % 5])
    elif how == "shape":
        a[key] = np.zeros((k % 4 + 1,) * (k % 5))
    elif how == "drop":
        a.pop(key)
    elif how == "extra":
        a[f"x{k}"] = np.zeros(3)
    elif how == "meta":
        a["metadata"] = np.array(json.dumps({"format": "attnpotts.potts", "kind": ["PottsModel", "X", 3][k % 3],
                                             "beta": [1.0, -1, "a", None][k % 4], "n_sites": k % 7, "n_states": 3}))  # fmt: skip
    return a


@pytest.mark.parametrize("mode", MODES)
def test_potts_npz_loader(mode: str, work, fuzz_counts) -> None:
    path = _small_model().save(work / "base.npz")
    base = path.read_bytes()
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}

    @_settings(mode)
    @given(edits=mutations(), how=_ARRAY_EDITS, k=st.integers(0, 1000), cls=st.sampled_from([PottsModel, ConditionalPotts]))
    def case(edits: list[tuple[float, str, bytes]], how: str, k: int, cls: type[ConditionalPotts]) -> None:
        target = work / "case.npz"
        if how == "none":
            target.write_bytes(mutate(base, edits))
        elif how == "object":
            np.savez(target, **{**arrays, "fields": np.array([{"a": 1}], dtype=object)})
        else:
            buf = io.BytesIO()
            np.savez(buf, **_edit_arrays(arrays, how, k))
            target.write_bytes(buf.getvalue())
        classify(fuzz_counts, "Potts .npz", lambda: cls.load(target), _check_potts)

    case()


# -------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def checkpoint(work) -> tuple[Path, dict[str, torch.Tensor]]:
    from attnpotts.models import FactoredAttention
    from attnpotts.training import TrainingConfig, load_model, train

    path = work / "model.pt"
    states = np.random.default_rng(0).integers(0, 3, size=(30, 4))
    train(FactoredAttention(n_sites=4, n_states=3, seed=0), states,
          config=TrainingConfig(max_epochs=1, batch_size=15), checkpoint_path=path)  # fmt: skip
    return path, load_model(path).state_dict()


@pytest.mark.parametrize("mode", MODES)
def test_checkpoint_loader(mode: str, work, checkpoint, fuzz_counts) -> None:
    from attnpotts.training import load_model
    from attnpotts.training.checkpoint import load_checkpoint, save_checkpoint

    path, state = checkpoint
    base = path.read_bytes()
    data = torch.load(path, weights_only=True)
    entry_edits = st.sampled_from(["bytes", "drop", "hparam", "dtype", "kind", "tensor", "resume"])

    def check(model: Any) -> None:
        got = model.state_dict()
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state), (
            "accepted a checkpoint whose tensors differ from what was written"
        )

    @_settings(mode)
    @given(edits=mutations(), how=entry_edits, k=st.integers(0, 10**12), rewrite=st.booleans())
    def case(edits: list[tuple[float, str, bytes]], how: str, k: int, rewrite: bool) -> None:
        target = work / "case.pt"
        if how == "bytes":
            target.write_bytes(mutate(base, edits))
        else:
            d = {key: v for key, v in data.items() if key not in ("format", "format_version")}
            keys = sorted(d)
            if how == "drop":
                d.pop(keys[k % len(keys)])
            elif how == "hparam":
                hp = json.loads(d["model_hparams"])
                hp[sorted(hp)[k % len(hp)]] = [k, -k, 1.5, "x", None, True][k % 6]
                d["model_hparams"] = json.dumps(hp)
            elif how == "dtype":
                d["model_dtype"] = ["float16", "complex64", "int8", "float64", "os.system"][k % 5]
            elif how == "kind":
                d["model_kind"] = ["potts", "transformer", "x", ""][k % 4]
            elif how == "tensor":
                name = sorted(d["model_state"])[k % len(d["model_state"])]
                d["model_state"] = {**d["model_state"], name: d["model_state"][name] + 1}
            if how == "tensor" and not rewrite:  # tampered after writing: the checksum must catch it
                torch.save({**data, "model_state": d["model_state"]}, target)
            else:
                if how == "resume":
                    d.pop("tensor_checksum", None)
                save_checkpoint(target, {key: v for key, v in d.items() if key != "tensor_checksum"})
        expect_same = how == "bytes" or (how == "tensor" and not rewrite)
        kind = "checkpoints (load_model)"
        if how == "resume":
            classify(fuzz_counts, "checkpoints (resume)", lambda: load_checkpoint(target, resume=True))
            return
        classify(fuzz_counts, kind, lambda: load_model(target), check if expect_same else None)

    case()


# ------------------------------------------------------------------- train --data sample folders
@pytest.fixture(scope="module")
def sample_folder(work) -> Path:
    model = _small_model()
    rng = np.random.default_rng(1)
    ds = SampledDataset(model, rng.integers(0, 3, size=(20, 5)), rng.integers(0, 3, size=(6, 5)), {"note": "fuzz"})
    return ds.save(work / "sample")


@pytest.mark.parametrize("mode", MODES)
def test_training_data_folders(mode: str, work, sample_folder, fuzz_counts) -> None:
    from attnpotts.training import load_training_data

    files = sorted(p.name for p in sample_folder.iterdir() if not p.name.startswith("."))

    def check(data: Any) -> None:
        for a in (data.train, data.validation, data.test):
            assert a.ndim == 2 and (a.size == 0 or (a.min() >= 0 and a.max() < data.n_states))

    @_settings(mode)
    @given(edits=mutations(), which=st.integers(0, 100), delete=st.booleans())
    def case(edits: list[tuple[float, str, bytes]], which: int, delete: bool) -> None:
        target = work / "case-folder"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(sample_folder, target)
        name = files[which % len(files)]
        if delete and which % 7 == 0:
            (target / name).unlink()
        else:
            (target / name).write_bytes(mutate((sample_folder / name).read_bytes(), edits))
        classify(fuzz_counts, "train --data folders", lambda: load_training_data(target), check)

    case()


# ---------------------------------------------------------------------------- theory --ucol
@pytest.mark.parametrize("mode", MODES)
def test_theory_ucol_files(mode: str, work, fuzz_counts) -> None:
    from attnpotts.theory import Scenario
    from attnpotts.workflows._theory import read_ucol as _ucol

    buf = io.BytesIO()
    np.save(buf, np.eye(3))
    base = buf.getvalue()

    def check(s: Any) -> None:
        u = s.ucol
        assert u.shape == (3, 3) and np.isfinite(u).all() and np.allclose(u, u.T)

    arrays = st.one_of(
        st.just(None),
        st.sampled_from([np.full((3, 3), np.nan), np.ones((3, 3), complex), np.ones((2, 2)),
                         np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]]), np.ones((3, 3), bool),
                         np.array(["a"] * 9).reshape(3, 3), np.eye(3, dtype=np.float32)]),
    )  # fmt: skip

    @_settings(mode)
    @given(edits=mutations(), array=arrays)
    def case(edits: list[tuple[float, str, bytes]], array: np.ndarray | None) -> None:
        path = work / "ucol.npy"
        if array is None:
            path.write_bytes(mutate(base, edits))
        else:
            np.save(path, array)
        classify(fuzz_counts, "theory --ucol", lambda: Scenario(_ucol(str(path), 3, 0), 1.0, 1.0), check)

    case()


# ------------------------------------------------------------------------- TOML configs (CLI)
_COMMAND_ARGV = {
    "sample": ["sample"],
    "train": ["train", "--data", str(example_files("PF00014").alignment)],
    "evaluate": ["evaluate", "--run", "nowhere"],
    "theory": ["theory"],
    "contacts": ["contacts", str(example_files("PF00014").alignment)],
    "reproduce": ["reproduce", "--quick"],
}


def _options_class(command: str) -> Any:
    from attnpotts import workflows

    return {"sample": workflows.SampleOptions, "train": workflows.TrainOptions,
            "evaluate": workflows.EvaluateOptions, "theory": workflows.TheoryOptions,
            "contacts": workflows.ContactsOptions}.get(command)  # fmt: skip


def _table(command: str) -> dict[str, Any]:
    """The typed options of a command (its options class; reproduce: its config's fields)."""
    cls = _options_class(command)
    if cls is None:
        from attnpotts.experiments.reproduce import ReproduceConfig

        cls = ReproduceConfig
    return option_specs(cls)


def _resolve(command: str, args: Any) -> dict[str, Any]:
    """What a command does with its options before any work (options objects, checks)."""
    from attnpotts.cli import common

    if command == "reproduce":  # as the command does: its config class, the preset as the base
        from attnpotts.experiments.reproduce import ReproduceConfig

        cfg = common.resolve_config(args, ReproduceConfig, base=ReproduceConfig.preset("quick").to_dict())
        ReproduceConfig(**cfg)
        return cfg
    cls = _options_class(command)
    assert cls is not None
    cfg = common.resolve_config(args, cls)
    options = cls(**cfg)
    if command == "theory":
        from attnpotts.theory import SolverOptions
        from attnpotts.workflows._theory import make_scenario

        options.alphas()
        make_scenario(options.ucol, options.states, options.beta, options.rho, options.ucol_seed)
        SolverOptions(tol=options.tol, integration=options.integration, seed=options.seed)
    elif command == "train":
        options.training_config()
    elif command == "sample":
        options.sample_config()
    elif command == "contacts":
        options.contacts_config()
    return cfg


def _values() -> st.SearchStrategy[Any]:
    scalar = st.one_of(
        st.booleans(), st.integers(-(2**63), 2**63 - 1), st.integers(-3, 40),
        st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 2),
        st.text(max_size=12), st.sampled_from(["false", "true", "1", "0.01", "Protein", "full",
                                                "none", "cuda", "cpu", "identity", "gaussian"]),
    )  # fmt: skip
    return st.one_of(scalar, st.lists(scalar, max_size=4), st.dictionaries(st.text(max_size=4), scalar, max_size=2))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("command", sorted(_COMMAND_ARGV))
def test_toml_configs(mode: str, command: str, work, fuzz_counts) -> None:
    from attnpotts.options import check_value as check_option

    table = _table(command)
    parser = build_parser(command)
    known = sorted(_known_keys(command))

    @_settings(mode)
    @given(
        doc=st.dictionaries(st.one_of(st.sampled_from(known), st.text(max_size=6)), _values(), max_size=4),
        raw=st.one_of(st.none(), mutations()),
    )
    def case(doc: dict[str, Any], raw: list[tuple[float, str, bytes]] | None) -> None:
        path = work / f"{command}.toml"
        text = tomli_w.dumps(doc).encode()
        path.write_bytes(text if raw is None else mutate(text, raw))
        args = parser.parse_args([*_COMMAND_ARGV[command], "--config", str(path), "--out", str(work / "o")])

        def check(cfg: dict[str, Any]) -> None:
            if raw is not None:
                return
            for key, value in doc.items():  # accepted values keep the type they were written with
                if key in cfg and key in table and getattr(args, key, None) is None:  # not a flag
                    assert _same(cfg[key], value), f"{key} = {value!r} became {cfg[key]!r}"
                    check_option(key, table[key], cfg[key])

        classify(fuzz_counts, "TOML configs", lambda: _resolve(command, args), check)

    case()


def _known_keys(command: str) -> set[str]:
    return set(_table(command)) | {"seed", "memory_limit_gb", "n_sites", "epochs"}


def test_suite_sizes() -> None:
    """The default run stays at a few hundred cases; the slow suite has more than 10,000."""
    kinds_fast = 6 + 1 + 1 + 1 + 1 + 1 + 1 + len(_COMMAND_ARGV)  # parametrized tests above
    assert 200 <= kinds_fast * FAST <= 800
    assert kinds_fast * SLOW >= 10_000
    assert tempfile.gettempdir()
