"""Checkpoints that resume a run exactly: model, optimiser, loop state, config and RNG state.

A resumed run must have the same config as the one that wrote the checkpoint, up to the
result-neutral keys; both are compared as the current schema writes them, so a run started
before a change of the config layout (sections chosen by name) still resumes.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from ..config import RESULT_NEUTRAL_KEYS, config_from_dict, config_to_dict
from ..epochs import TrainState, restore_rng, rng_state
from ..errors import CheckpointError
from ..io import load_torch, save_torch

__all__ = ["TrainState", "save_checkpoint", "load_checkpoint", "restore", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 2  # 2: state dict keys of the GAT layers changed; schema stored
# Keys that may change between an interrupted run and its resumption: those that cannot change results.
_RESUMABLE_KEYS = {tuple(key.split(".")) for key in RESULT_NEUTRAL_KEYS}


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
            **rng_state(),  # the CPU and this process's current GPU (cuda:LOCAL_RANK under torchrun)
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
    """``"key: old -> new"`` for every key that differs between two config dicts, result-neutral keys skipped."""
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


def _as_written_now(config: dict, path: Path) -> dict:
    """A checkpoint's config dict as :func:`config_to_dict` writes it today (old spellings moved, keys of other sections dropped).

    Deprecation warnings are silenced: the old spellings are the checkpoint's, nothing the user can change.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return config_to_dict(config_from_dict(config, f"{path} (its config)"))


def _check_groups(path: Path, saved: dict, optimizer: torch.optim.Optimizer) -> None:
    """Refuse an optimiser state of other parameter groups: a run started when every parameter was decayed (one group)."""
    found, expected = len(saved["param_groups"]), len(optimizer.param_groups)
    if found != expected:
        raise CheckpointError(
            f"{path}: its optimiser has {found} parameter group(s), this version {expected} (no weight decay on biases, "
            "norms and attention vectors since); the run cannot continue the same training: use a new --out or set train.resume=false"
        )


def restore(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: dict) -> TrainState:
    """Load ``path`` into the model and optimiser, restore the RNG (CPU, and CUDA when both sides have it), and return the loop state."""
    ckpt = load_checkpoint(path)
    diffs = _config_differences(_as_written_now(ckpt["config"], path), config)
    if diffs:
        raise CheckpointError(
            f"{path}: this run directory was trained with another config ({'; '.join(diffs[:5])}); "
            "use a new --out or set train.resume=false to start over"
        )
    model.load_state_dict(ckpt["model"])
    _check_groups(path, ckpt["optimizer"], optimizer)
    optimizer.load_state_dict(ckpt["optimizer"])
    restore_rng(ckpt)
    return TrainState(**ckpt["state"])
