"""A small, loud registry of data sets: each entry turns a Config into DatasetSplits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import UnknownNameError

from .records import DatasetSplits

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["register_dataset", "list_datasets", "load_dataset"]

DatasetLoader = Callable[["Config"], DatasetSplits]
_DATASETS: dict[str, DatasetLoader] = {}


def register_dataset(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Register ``fn(cfg) -> DatasetSplits`` under ``name``; a duplicate name raises."""

    def decorator(fn: DatasetLoader) -> DatasetLoader:
        if name in _DATASETS:
            raise ValueError(f"data set {name!r} is already registered (by {_DATASETS[name].__module__})")
        _DATASETS[name] = fn
        return fn

    return decorator


def list_datasets() -> list[str]:
    """Names accepted by ``data.name``."""
    return sorted(_DATASETS)


def load_dataset(cfg: "Config") -> DatasetSplits:
    """Load the data set that ``cfg.data.name`` names."""
    name = cfg.data.name
    if name not in _DATASETS:
        raise UnknownNameError(f"data.name: unknown data set {name!r}; registered: {', '.join(list_datasets())}")
    return _DATASETS[name](cfg)
