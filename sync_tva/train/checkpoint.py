"""Checkpoints that resume a run exactly: model, optimiser, loop state, config and RNG state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..config import RESULT_NEUTRAL_KEYS
from ..errors import CheckpointError
from ..io import load_torch, save_torch

__all__ = ["TrainState", "save_checkpoint", "load_checkpoint", "restore", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 2  # 2: state dict keys of the GAT layers changed; schema stored
# Keys that may change between an interrupted run and its resumption: those that cannot change results.
_RESUMABLE_KEYS = {tuple(key.split(".")) for key in RESULT_NEUTRAL_KEYS}


@dataclass
class TrainState:
    """Where the loop stands: epochs done, best dev weighted F1 and when, epochs without improvement."""

    epoch: int = 0
    best_metric: float = float("-inf")
    best_epoch: int = 0
    stale_epochs: int = 0
    history: list[dict] = field(default_factory=list)


def save_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None, state: TrainState, config: dict, extra: dict
) -> None:
    """Atomically write everything needed to resume or to rebuild the model."""
    save_torch(
        path,
        {
            "version": CHECKPOINT_VERSION,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "state": asdict(state),
            "config": config,
            "rng": torch.get_rng_state(),
            # This process's current GPU (cuda:LOCAL_RANK under torchrun); None where CUDA was never used.
            "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
            **extra,
        },
    )


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely (``weights_only``) and check its version."""
    ckpt = load_torch(path)
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: not a sync_tva checkpoint of version {CHECKPOINT_VERSION}")
    return ckpt


def _config_differences(old: dict, new: dict, prefix: tuple = ()) -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        here = prefix + (key,)
        if here in _RESUMABLE_KEYS:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _config_differences(a, b, here)
        elif a != b:
            diffs.append(f"{'.'.join(here)}: {a!r} -> {b!r}")
    return diffs


def restore(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: dict) -> TrainState:
    """Load ``path`` into the model and optimiser, restore the RNG (CPU, and CUDA when both sides have it), and return the loop state."""
    ckpt = load_checkpoint(path)
    diffs = _config_differences(ckpt["config"], config)
    if diffs:
        raise CheckpointError(
            f"{path}: this run directory was trained with another config ({'; '.join(diffs[:5])}); "
            "use a new --out or set train.resume=false to start over"
        )
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"])
    if ckpt.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(ckpt["cuda_rng"])
    return TrainState(**ckpt["state"])
