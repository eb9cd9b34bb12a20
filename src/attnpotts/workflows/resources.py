"""Memory estimates of the commands, checked against ``--memory-limit-gb`` before allocating.

Each estimate counts the large arrays of a command (bytes), as an order-of-magnitude upper bound
of the dominant terms; the command refuses with :class:`~attnpotts.errors.ResourceLimitError`
naming the sizes that drive it and ``--memory-limit-gb``. Small runs are never near the default
limit; the point is to refuse ``sample --n-sites 3000`` (27 GiB of couplings) cleanly instead of
crashing with ``MemoryError`` or swapping the machine to a halt.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ResourceLimitError
from ..options import DEFAULT_MEMORY_LIMIT_GB, memory_limit

__all__ = [
    "DEFAULT_MEMORY_LIMIT_GB",
    "MAX_THEORY_POINTS",
    "check_command_resources",
    "check_reproduce_resources",
    "check_train_resources",
    "memory_limit",
    "reproduce_bytes",
    "require_memory",
    "sample_bytes",
    "theory_bytes",
    "train_bytes",
]

#: Most (alpha, lambda) points one ``theory`` call solves (each takes about a second).
MAX_THEORY_POINTS = 100_000
_GIB = 1024**3


def require_memory(estimate: float, limit_gb: float | None, what: str, drivers: str) -> None:
    """Refuse (``ResourceLimitError``) when ``estimate`` bytes exceed ``limit_gb`` GiB
    (``None``: :data:`DEFAULT_MEMORY_LIMIT_GB`)."""
    limit = int((DEFAULT_MEMORY_LIMIT_GB if limit_gb is None else float(limit_gb)) * _GIB)
    if estimate > limit:
        raise ResourceLimitError(
            f"{what} would need about {estimate / _GIB:.3g} GiB of memory ({drivers}), above "
            f"--memory-limit-gb {limit / _GIB:g}; use smaller sizes, or raise --memory-limit-gb "
            "if the machine has the memory"
        )


def sample_bytes(cfg: dict[str, Any], n_sites: int, n_states: int) -> float:
    """``sample``: the couplings and their sampler copy (float64), chains and the sequences."""
    L, q = n_sites, n_states
    chains = int(cfg.get("n_chains") or 1)
    if cfg.get("method") == "parallel_tempering":
        chains *= int(cfg.get("n_temperatures") or 1)
    n_seq = int(cfg.get("n_train") or 0) + int(cfg.get("n_test") or 0)
    return 2 * 8.0 * L * L * q * q + 8.0 * chains * L * (q + 2) + 3 * 8.0 * n_seq * L


def theory_bytes(cfg: dict[str, Any], max_alpha: float) -> float:
    """``theory``: the channel's per-node ``(nodes, q, q, q)`` arrays, plus the simulated data."""
    q = int(cfg.get("states") or 2)
    nodes = 2048  # QMC: 256 points x 8 randomizations (Gauss-Hermite rules are smaller)
    solve = 6 * 8.0 * nodes * q**3 + 8.0 * 2**16 * q * 4
    n = int(cfg.get("simulate") or 0)
    sim = 0.0
    if n:
        m = max_alpha * n + int(cfg.get("n_test") or 0)
        sim = 4 * 8.0 * m * n + 8.0 * n * q * q * 8
    return solve + sim


def train_bytes(values: dict[str, Any], n_train: int, n_sites: int, n_states: int) -> float:
    """``train``: parameters with gradients, optimizer state and copies; data; activations."""
    L, q = n_sites, n_states + 1  # + the mask token
    b = 8 if values.get("dtype") == "float64" else 4
    kind = values.get("model", "factored")
    heads = int(values.get("n_heads") or (4 if kind == "transformer" else 1))
    batch = int(values.get("batch_size") or n_train or 1)
    batch = min(batch, max(n_train, 1))
    if kind == "potts":
        params = float(L * L * q * q)
        act = 4.0 * batch * L * q + 3.0 * L * L * q * q
    elif kind == "transformer":
        width, layers = int(values.get("width") or 64), int(values.get("n_layers") or 1)
        params = layers * 12.0 * width * width + (q + L) * width
        act = layers * batch * (4.0 * heads * L * L + 12.0 * L * width)
    else:
        d = int(values.get("key_dim") or 8)
        params = heads * (2.0 * L * d + q * q) + L * q
        act = batch * heads * (2.0 * L * L + 3.0 * L * q) + 3.0 * L * L * q * q
    copies = 8  # parameters, gradient, optimizer moments / history, last good, best, final
    return b * (copies * params + act) + 3 * 8.0 * n_train * L


def _max_alpha(tokens: list[Any]) -> tuple[float, int]:
    """Largest alpha and number of alphas of ``--alpha`` tokens (without building the grid)."""
    top, count = 0.0, 0
    for tok in tokens:
        text = str(tok).strip()
        try:
            if ":" in text:
                parts = text.split(":")
                top, count = max(top, float(parts[1])), count + int(parts[2])
            else:
                top, count = max(top, float(text)), count + 1
        except (ValueError, IndexError):
            continue  # malformed: parse_alphas reports it
    return (top if math.isfinite(top) else 0.0), count


def _checkpoint_bytes(path: Any) -> float:
    """Memory to load a checkpoint: its tensors, the model built from them and a state copy."""
    import os

    try:
        return 3.0 * os.stat(path).st_size
    except OSError:
        return 0.0  # missing or unreadable: the loader reports it


def check_command_resources(command: str, cfg: dict[str, Any], limit_gb: float | None) -> None:
    """The checks that need only the resolved options (``sample``, ``theory``, checkpoints)."""
    if command == "evaluate" and cfg.get("run") is not None:
        ckpt = f"{cfg['run']}/model.pt"
        require_memory(_checkpoint_bytes(ckpt), limit_gb, "loading the checkpoint", ckpt)
    elif command == "train" and cfg.get("resume"):
        require_memory(_checkpoint_bytes(cfg["resume"]), limit_gb, "loading --resume", str(cfg["resume"]))
    elif command == "sample":
        if cfg.get("model_file"):
            from ..storage import inspect_npz

            header = inspect_npz(str(cfg["model_file"]))
            shape = header.get("fields", ((0, 0), None))[0]
            L, q = (int(shape[0]), int(shape[1])) if len(shape) == 2 else (0, 0)
        else:
            L, q = int(cfg["n_sites"]), int(cfg["n_states"])
        require_memory(
            sample_bytes(cfg, L, q), limit_gb, "sampling",
            f"L = {L} sites, q = {q} states, {cfg.get('n_chains')} chains, "
            f"{cfg.get('n_train')} + {cfg.get('n_test')} sequences",
        )  # fmt: skip
    elif command == "theory":
        alphas = list(cfg["alpha"]) if isinstance(cfg["alpha"], list | tuple) else [cfg["alpha"]]
        lams = list(cfg["lam"]) if isinstance(cfg["lam"], list | tuple) else [cfg["lam"]]
        top, count = _max_alpha(alphas)
        if count * max(len(lams), 1) > MAX_THEORY_POINTS:
            raise ResourceLimitError(
                f"--alpha and --lam ask for {count} x {len(lams)} points, more than "
                f"{MAX_THEORY_POINTS} (each takes about a second to solve); use fewer points"
            )
        require_memory(
            theory_bytes(cfg, top), limit_gb, "the replica solver" + (" and simulation" if cfg.get("simulate") else ""),
            f"q = {cfg.get('states')} states, --simulate {cfg.get('simulate')}, largest alpha {top:g}",
        )  # fmt: skip


def check_train_resources(
    values: dict[str, Any], n_train: int, n_sites: int, n_states: int, limit_gb: float | None
) -> None:
    """The check of ``train`` once the data's size is known (before the model is built): the
    estimate against ``--memory-limit-gb`` and, on a CUDA ``--device``, against its free memory
    (the estimate holds no interpreter, so all of it is counted there)."""
    from ..dca import memory

    need = train_bytes(values, n_train, n_sites, n_states)
    what = f"training the {values.get('model')} model"
    drivers = (f"{n_train} sequences, L = {n_sites}, q = {n_states}, heads {values.get('n_heads')}, "
               f"batch {values.get('batch_size')}")
    require_memory(need, limit_gb, what, drivers)
    device = values.get("device")
    free = memory.device_free_bytes(str(device)) if device else None
    if free is not None and need > free:
        raise ResourceLimitError(
            f"{what} would need about {need / _GIB:.3g} GiB on {device} ({drivers}), which has "
            f"{free / _GIB:.3g} GiB free; use a smaller --batch-size or model, or the CPU "
            "(--device cpu)"
        )


def reproduce_bytes(config: Any, workers: int) -> float:
    """``reproduce``: each worker holds at most one run: the sampled data set of the largest size
    (depth study or learning curve) and the largest model it trains; every process (the workers
    and the parent) also holds the torch and numba runtime."""
    from ..dca.memory import RUNTIME_BYTES

    L, q = int(config.n_sites), int(config.n_states)
    largest = max([int(config.n_train), *(int(m) for m in config.scaling_sizes)])
    n_seq = largest + int(config.n_validation) + int(config.n_test)
    data = sample_bytes({"n_chains": config.n_chains, "n_train": n_seq}, L, q)
    transformer = train_bytes(
        {"model": "transformer", "width": config.width, "n_layers": max(config.depths, default=1),
         "n_heads": config.transformer_heads,
         "batch_size": config.transformer_batch_size * max(int(config.transformer_mask_copies), 1)},
        largest, L, q,
    )  # fmt: skip
    factored = train_bytes(
        {"model": "factored", "n_heads": config.factored_heads, "batch_size": largest}, largest, L, q
    )
    return max(1, workers) * (data + max(transformer, factored)) + (max(1, workers) + 1) * RUNTIME_BYTES


def check_reproduce_resources(config: Any, workers: int, limit_gb: float | None) -> None:
    """The check of ``reproduce`` before any run starts (local workers run side by side)."""
    require_memory(
        reproduce_bytes(config, workers), limit_gb, f"reproduce with {workers} worker(s)",
        f"L = {config.n_sites}, q = {config.n_states}, up to M = "
        f"{max([config.n_train, *config.scaling_sizes])} sequences, transformers of width "
        f"{config.width} and {max(config.depths, default=1)} layers",
    )  # fmt: skip
