"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

import torch
import yaml

from .errors import CheckpointError

__all__ = ["atomic_open", "save_figure", "write_json", "write_yaml", "save_torch", "load_torch"]


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside ``path``, fsync, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_figure(fig: Any, path: str | Path, *, dpi: int = 120, **kwargs: Any) -> Path:
    """Atomically save a matplotlib figure, format from the suffix (``.png``, ``.svg``...)."""
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format=path.suffix.lstrip("."), dpi=dpi, **kwargs)
    return path


def write_json(path: str | Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    with atomic_open(path) as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


def write_yaml(path: str | Path, data: Any) -> None:
    """Atomically write ``data`` as YAML, keys in their given order."""
    with atomic_open(path) as fh:
        yaml.safe_dump(data, fh, sort_keys=False)


def save_torch(path: str | Path, obj: Any) -> None:
    """Atomically ``torch.save`` an object made of tensors and plain Python values."""
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def load_torch(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True``: tensors and plain values only, no code runs."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises UnpicklingError or RuntimeError for foreign content
        raise CheckpointError(f"{path}: not a sync_tva checkpoint that loads safely ({exc})") from exc
