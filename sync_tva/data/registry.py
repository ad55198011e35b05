"""The registry of data sources: one name space for raw-media readers and feature-ready sets.

A *reader* (csv, meld, iemocap) turns a Config into :class:`RawSplits` that still point at
media; ``sync_tva.features`` extracts their node features. A *featured* source (demo,
features_pickle) gives :class:`DatasetSplits` directly. ``run`` and ``extract`` both look
names up here, and every source's utterance ids are checked for uniqueness in one place.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

from ..errors import ConfigError
from ..records import SPLITS, DatasetSplits, RawSplits
from ..registry import Registry
from .ids import check_unique

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["DataSource", "register_reader", "register_dataset", "list_datasets", "get_source", "read_raw", "read_featured"]

RawReader = Callable[["Config", Collection[str]], RawSplits]  # (cfg, splits wanted) -> the others may stay empty
FeaturedLoader = Callable[["Config"], DatasetSplits]


@dataclass(frozen=True)
class DataSource:
    """A registered source: ``kind`` says whether ``load`` gives raw records or featured ones."""

    name: str
    kind: Literal["raw", "featured"]
    load: Callable[..., RawSplits | DatasetSplits]


_SOURCES: Registry[DataSource] = Registry("data set", "data.name")


def register_reader(name: str) -> Callable[[RawReader], RawReader]:
    """Register ``fn(cfg, splits) -> RawSplits`` (records pointing at media) under ``name``; a duplicate name raises.

    ``splits`` names the splits the caller needs; a reader may leave the others empty.
    """

    def decorator(fn: RawReader) -> RawReader:
        _SOURCES.register(name)(DataSource(name, "raw", fn))
        return fn

    return decorator


def register_dataset(name: str) -> Callable[[FeaturedLoader], FeaturedLoader]:
    """Register ``fn(cfg) -> DatasetSplits`` (features already at hand) under ``name``; a duplicate name raises."""

    def decorator(fn: FeaturedLoader) -> FeaturedLoader:
        _SOURCES.register(name)(DataSource(name, "featured", fn))
        return fn

    return decorator


def list_datasets() -> list[str]:
    """Names accepted by ``data.name``."""
    return _SOURCES.names()


def get_source(name: str) -> DataSource:
    """The source registered as ``name`` (an unknown name lists the choices)."""
    return _SOURCES.get(name)


def _raw_names() -> list[str]:
    return [n for n in _SOURCES.names() if _SOURCES.get(n).kind == "raw"]


def read_raw(cfg: "Config", splits: Collection[str] = SPLITS) -> RawSplits:
    """The raw records of the reader ``data.name`` names (``splits`` at least); a featured source has no media to extract."""
    source = get_source(cfg.data.name)
    if source.kind != "raw":
        raise ConfigError(f"data.name={cfg.data.name!r} has no raw media to extract; choose from {_raw_names()}")
    raw = source.load(cfg, splits)
    for split, utts in raw.splits().items():
        check_unique(utts, f"data set {raw.name!r}, {split} split")
    return raw


def read_featured(cfg: "Config") -> DatasetSplits:
    """The splits of the feature-ready source ``data.name`` names (demo, features_pickle, your own)."""
    source = get_source(cfg.data.name)
    if source.kind != "featured":
        raise ConfigError(f"data.name={cfg.data.name!r} reads raw media; load it through sync_tva.features.load_dataset")
    data = source.load(cfg)
    for split in SPLITS:
        check_unique(data.split(split), f"data set {data.name!r}, {split} split")
    return data
