"""Checkpoints: everything needed to resume training exactly (model, optimizer, RNG, epoch, history).

A checkpoint is one ``torch.save`` file written atomically; it is read with
``torch.load(weights_only=True)`` (no pickled code). Resuming from it continues bit for bit as the
uninterrupted run would have (on the CPU).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..errors import DataFormatError, ValidationError
from ..models import MODEL_CLASSES, MaskedLanguageModel, build_model, model_kind
from ..storage import atomic_write_bytes, check_input_file

__all__ = [
    "CHECKPOINT_FORMAT",
    "MAX_CHECKPOINT_BYTES",
    "check_data_fingerprint",
    "data_fingerprint",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "tensor_checksum",
    "validate_checkpoint",
    "with_checksum",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "attnpotts.checkpoint"
_VERSION = 1


#: Largest checkpoint file read (bytes; 8 GiB, the CLI's default memory limit).
MAX_CHECKPOINT_BYTES = 8 * 1024**3
#: Tensor dtypes a checkpoint may hold (parameters, optimizer state, RNG states).
_DTYPES = frozenset({torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
                     torch.int32, torch.uint8, torch.bool})  # fmt: skip
_MODEL_DTYPES = ("float32", "float64")
#: Keys of every checkpoint (they rebuild the model) and their types.
_MODEL_KEYS: dict[str, tuple[type, ...]] = {
    "model_kind": (str,), "model_hparams": (str,), "model_dtype": (str,), "model_state": (dict,),
}  # fmt: skip
#: Keys a resumed run reads, and their types.
_RESUME_KEYS: dict[str, tuple[type, ...]] = {
    "optimizer_state": (dict,), "generator_state": (torch.Tensor,),
    "dropout_generator_state": (torch.Tensor,), "epoch": (int,), "history": (str,),
    "best_loss": (int, float), "best_epoch": (int, type(None)), "best_state": (dict,),
    "since_best": (int,), "reference": (int, float, type(None)), "elapsed": (int, float),
    "steps": (int,), "n_train": (int,), "training_config": (str,),
}  # fmt: skip
_CHECKSUM = "tensor_checksum"
_FINGERPRINT = "data_fingerprint"


def _leaves(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, leaf)`` of a nested payload in a deterministic order (dict keys sorted)."""
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            if prefix == "" and k == _CHECKSUM:
                continue
            yield from _leaves(obj[k], f"{prefix}/{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def tensor_checksum(payload: dict[str, Any]) -> str:
    """SHA-256 over every tensor (dtype, shape, bytes) and scalar of a checkpoint payload."""
    h = hashlib.sha256()
    for where, leaf in _leaves(payload):
        h.update(where.encode("utf-8", "surrogatepass"))
        if isinstance(leaf, torch.Tensor):
            t = leaf.detach().cpu().contiguous().reshape(-1)
            h.update(f"{t.dtype}{tuple(leaf.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(f"{type(leaf).__name__}:{leaf!r}".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def with_checksum(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` plus its :func:`tensor_checksum` (checked when the checkpoint is loaded)."""
    return {**payload, _CHECKSUM: tensor_checksum(payload)}


def data_fingerprint(tokens: torch.Tensor, weights: torch.Tensor | None = None) -> str:
    """SHA-256 of the training sequences (and weights): a resume must see the same data."""
    h = hashlib.sha256()
    for t in (tokens, weights):
        if t is None:
            h.update(b"none")
            continue
        c = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{c.dtype}{tuple(t.shape)}".encode())
        h.update(c.view(torch.uint8).numpy().tobytes() if c.numel() else b"")
    return h.hexdigest()


def check_data_fingerprint(
    data: dict[str, Any], fingerprint: str, path: str | os.PathLike[str]
) -> None:
    """Refuse to resume checkpoint ``data`` on other training data than it was trained on.

    A checkpoint from before fingerprints were written resumes with a warning.
    """
    saved = data.get(_FINGERPRINT)
    if saved is None:
        logger.warning(
            "%s has no training-data fingerprint (written by an older attnpotts); cannot check "
            "that it is resumed on the same data",
            path,
        )
        return
    if saved != fingerprint:
        raise ValidationError(
            f"cannot resume {path}: it was trained on other data (fingerprint {str(saved)[:12]}, "
            f"these data {fingerprint[:12]}); resume with the same --data, seed and split options"
        )


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, dicts, lists, numbers, strings) atomically to ``path``."""
    buf = io.BytesIO()
    full = {"format": CHECKPOINT_FORMAT, "format_version": _VERSION, **payload}
    torch.save(with_checksum(full), buf)
    return atomic_write_bytes(path, buf.getvalue())


def _bad(path: Path, what: str) -> DataFormatError:
    return DataFormatError(f"invalid checkpoint: {what}", path=path)


def validate_checkpoint(data: Any, path: str | os.PathLike[str], *, resume: bool = False) -> None:
    """Check a loaded checkpoint before anything is built from it.

    Checks: the format marker; the model keys and their types; the model kind and dtype against
    whitelists; every tensor's dtype against a whitelist; hyper-parameters (integers no larger
    than the stored tensors justify, so that no crafted value allocates terabytes); the
    checksum over the tensors (a checkpoint without one, from an older attnpotts, loads with a
    warning); with ``resume``, the keys a resumed run reads.

    Raises:
        DataFormatError: the first problem found, naming the file.
    """
    p = Path(path)
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise DataFormatError("not an attnpotts training checkpoint", path=p)
    keys = {**_MODEL_KEYS, **(_RESUME_KEYS if resume else {})}
    for key, types in keys.items():
        if key not in data:
            raise _bad(p, f"missing {key!r}" + (" (needed to resume)" if key in _RESUME_KEYS else ""))
        value = data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise _bad(p, f"{key!r} has type {type(value).__name__}")
    if data["model_kind"] not in MODEL_CLASSES:
        raise _bad(p, f"unknown model kind {data['model_kind']!r}")
    if data["model_dtype"] not in _MODEL_DTYPES:
        raise _bad(p, f"model dtype {data['model_dtype']!r} is not one of {_MODEL_DTYPES}")
    dims = [1]
    n_tensors = n_stored = 0
    for where, leaf in _leaves(data):
        if isinstance(leaf, torch.Tensor):
            if leaf.dtype not in _DTYPES:
                raise _bad(p, f"tensor {where} has dtype {leaf.dtype}, not a checkpoint dtype")
            if leaf.layout != torch.strided or leaf.is_quantized:
                raise _bad(p, f"tensor {where} is {leaf.layout}, not a dense tensor")
            dims.extend(int(d) for d in leaf.shape)
            n_tensors += 1
            if where.startswith("/model_state/"):
                n_stored += leaf.numel()
    try:
        hp = json.loads(data["model_hparams"])
    except json.JSONDecodeError:
        raise _bad(p, "model_hparams is not JSON") from None
    if not isinstance(hp, dict):
        raise _bad(p, "model_hparams is not a JSON object")
    bound = max(max(dims), n_tensors)
    for name, value in hp.items():
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if isinstance(value, int):
            if not 0 <= value <= bound:
                raise _bad(
                    p, f"hyper-parameter {name} = {value} does not fit the stored tensors (at "
                    f"most {bound})",
                )
        elif not isinstance(value, float):
            raise _bad(p, f"hyper-parameter {name} has type {type(value).__name__}")
    L, q = hp.get("n_sites"), hp.get("n_states")
    size = L * L * q * q if isinstance(L, int) and isinstance(q, int) else 0
    if data["model_kind"] == "potts" and size > 4 * n_stored + 10**6:  # its (L, L, q, q) couplings
        raise _bad(p, f"n_sites = {L}, n_states = {q} do not fit the stored couplings")
    for key in ("model_state", "final_model_state", "best_state"):
        state = data.get(key)
        if state is not None and not (
            isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
        ):
            raise _bad(p, f"{key!r} is not a dict of tensors")
    saved = data.get(_CHECKSUM)
    if saved is None:
        logger.warning("%s has no checksum (written by an older attnpotts); not verified", p)
    elif saved != tensor_checksum(data):
        raise _bad(p, "checksum mismatch: the file was modified or corrupted after it was written")


def load_checkpoint(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    *,
    resume: bool = False,
    max_bytes: int = MAX_CHECKPOINT_BYTES,
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and :func:`validate_checkpoint` it.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not an attnpotts checkpoint, larger than ``max_bytes``, or invalid.
    """
    path = check_input_file(path, "a checkpoint file (model.pt)")
    if path.stat().st_size > max_bytes:
        raise DataFormatError(
            f"larger than {max_bytes / 1024**3:.2f} GiB, above the checkpoint size limit", path=path
        )
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise DataFormatError(f"not a readable checkpoint ({exc})", path=path) from exc
    validate_checkpoint(data, path, resume=resume)
    return data


def model_payload(model: MaskedLanguageModel) -> dict[str, Any]:
    """The part of a checkpoint that rebuilds the model: kind, hyper-parameters, dtype, weights."""
    p = next(model.parameters())
    return {
        "model_kind": model_kind(model),
        "model_hparams": json.dumps(model.hyperparameters()),
        "model_dtype": str(p.dtype).removeprefix("torch."),
        "model_state": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }


def load_model(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu", which: str = "final"
) -> MaskedLanguageModel:
    """Rebuild the trained model stored in a checkpoint (or in a ``model.pt`` written by training).

    Args:
        path: the checkpoint file.
        device: where to put the model.
        which: ``"final"`` (the parameters the run ended with, after ``restore_best``) or
            ``"last"`` (the training state of the last epoch, what a resume continues from).
    """
    data = load_checkpoint(path, map_location=device)
    hp = json.loads(data["model_hparams"])
    dtype = getattr(torch, data["model_dtype"])
    try:
        model = build_model(data["model_kind"], **hp, dtype=dtype, device=device)
    except (ValueError, TypeError) as exc:  # e.g. n_heads = "x": the file, not the caller, is wrong
        raise DataFormatError(
            f"invalid checkpoint: model_hparams do not build a {data['model_kind']!r} model ({exc})",
            path=path,
        ) from None
    key = "final_model_state" if which == "final" and "final_model_state" in data else "model_state"
    try:
        model.load_state_dict(data[key])
    except RuntimeError as exc:  # missing/unexpected keys or shapes that do not fit the model
        raise DataFormatError(f"invalid checkpoint: {key} does not fit the model ({exc})", path=path) from None
    model.eval()
    return model
