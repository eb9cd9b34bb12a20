"""Checkpoints: everything needed to resume training exactly (model, optimizer, RNG, epoch, history).

A checkpoint is one ``torch.save`` file written atomically; it is read with
``torch.load(weights_only=True)`` (no pickled code). Resuming from it continues bit for bit as the
uninterrupted run would have (on the CPU).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import DataFormatError
from ..models import MaskedLanguageModel, build_model, model_kind
from ..storage import atomic_write_bytes

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "load_model", "save_checkpoint"]

CHECKPOINT_FORMAT = "attnpotts.checkpoint"
_VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, dicts, lists, numbers, strings) atomically to ``path``."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "format_version": _VERSION, **payload}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not an attnpotts checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise DataFormatError(f"not a readable checkpoint ({exc})", path=path) from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise DataFormatError("not an attnpotts training checkpoint", path=path)
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
    model = build_model(data["model_kind"], **hp, dtype=dtype, device=device)
    key = "final_model_state" if which == "final" and "final_model_state" in data else "model_state"
    model.load_state_dict(data[key])
    model.eval()
    return model
