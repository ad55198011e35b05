"""The registry of data sets: each entry turns a Config into DatasetSplits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..registry import Registry
from .records import DatasetSplits

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["register_dataset", "list_datasets", "load_dataset"]

DatasetLoader = Callable[["Config"], DatasetSplits]
_DATASETS: Registry[DatasetLoader] = Registry("data set", "data.name")


def register_dataset(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Register ``fn(cfg) -> DatasetSplits`` under ``name``; a duplicate name raises."""
    return _DATASETS.register(name)


def list_datasets() -> list[str]:
    """Names accepted by ``data.name``."""
    return _DATASETS.names()


def load_dataset(cfg: "Config") -> DatasetSplits:
    """Load the data set that ``cfg.data.name`` names."""
    return _DATASETS.get(cfg.data.name)(cfg)
