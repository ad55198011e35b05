"""Choosing the torch device from a config value (``train.device``, ``features.device``)."""

from __future__ import annotations

import torch

from .errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(name: str, key: str) -> torch.device:
    """``auto`` picks CUDA when there is a GPU, else the CPU; naming CUDA without one is an error on ``key``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{key}={name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={name!r} but no CUDA GPU is visible; use {key}=cpu or auto")
    return device
