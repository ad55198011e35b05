"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections import Counter
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
        _crash_point(path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Fault injection for tests/test_fault.py only: "NAME:K" makes the K-th atomic write onto a file
# called NAME SIGKILL its own process after the temp file is complete and before the rename.
CRASH_ENV = "SYNC_TVA_CRASH_BEFORE_RENAME"
_writes_seen: Counter[str] = Counter()


def _crash_point(path: Path) -> None:
    """SIGKILL this process between temp file and rename, as a crash there would, when ``CRASH_ENV`` names this write."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    name, _, nth = spec.rpartition(":")
    if path.name == name:
        _writes_seen[name] += 1
        if _writes_seen[name] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)


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
