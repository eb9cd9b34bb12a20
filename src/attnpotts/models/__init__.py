"""Torch modules that learn Potts conditionals by masked language modelling.

Every model maps tokens ``(B, L)`` (states ``0..q-1``, ``[MASK]`` = ``q``) to logits ``(B, L, q)``:
:class:`FactoredAttention` (one factored layer, ``"free"`` or ``"softmax"`` attention),
:class:`FullPotts` (free ``J`` and ``h``) and :class:`TransformerEncoder`. No optimisers here.
"""

from .base import MaskedLanguageModel, PottsParameters, check_tokens
from .factored import FactoredAttention
from .potts import FullPotts
from .transformer import TransformerEncoder

__all__ = [
    "MODEL_CLASSES",
    "FactoredAttention",
    "FullPotts",
    "MaskedLanguageModel",
    "PottsParameters",
    "TransformerEncoder",
    "build_model",
    "check_tokens",
    "model_kind",
]

#: Model kinds by name (as in configs and checkpoints).
MODEL_CLASSES: dict[str, type[MaskedLanguageModel]] = {
    "factored": FactoredAttention,
    "potts": FullPotts,
    "transformer": TransformerEncoder,
}


def build_model(kind: str, **kwargs: object) -> MaskedLanguageModel:
    """Build a model by name (``"factored"``, ``"potts"``, ``"transformer"``) from keyword arguments."""
    from ..errors import ValidationError

    if kind not in MODEL_CLASSES:
        raise ValidationError(f"unknown model kind {kind!r}; choose one of {sorted(MODEL_CLASSES)}")
    cls = MODEL_CLASSES[kind]
    try:
        return cls(**kwargs)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValidationError(f"bad arguments for model {kind!r}: {exc}") from exc


def model_kind(model: MaskedLanguageModel) -> str:
    """The name of a model's kind (inverse of :func:`build_model`)."""
    for name, cls in MODEL_CLASSES.items():
        if type(model) is cls:
            return name
    raise TypeError(f"not an attnpotts model: {type(model).__name__}")
