"""``read_feature_pickle`` and the ``features_pickle`` data source: file -> checked train/dev/test records.

Files go through :mod:`sync_tva.data.safe_pickle`, so a hostile file is refused before any of
its code runs. Utterance-id uniqueness is checked by the data registry for every source.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...config import Config
from ...errors import ConfigError
from ...records import DatasetSplits
from ..registry import register_dataset
from ..safe_pickle import safe_load
from ..splits import carve_dev
from .build import RecordBuilder
from .layouts import get_layout
from .unpack import Fields, check_split_ids, unpack

__all__ = ["load_features_pickle", "read_feature_pickle"]


def _split_ids(fields: Fields, dev_fraction: float, seed: int) -> tuple[list[Any], list[Any], list[Any]]:
    """``(train, dev, test)`` dialogue ids: the file's dev list, or one carved from train (:func:`carve_dev`)."""
    if "dev" in fields:
        return fields["train"], fields["dev"], fields["test"]
    train, dev = carve_dev(fields["train"], dev_fraction, seed)
    return train, dev, fields["test"]


def read_feature_pickle(
    path: str | Path,
    layout_name: str | None,
    *,
    labels: Sequence[str] | None = None,
    modalities: Sequence[str] | None = None,
    dev_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetSplits:
    """Read a community feature pickle of layout ``layout_name`` into train/dev/test records.

    ``modalities`` keeps only those the layout has (default: all of them). Layouts without a dev
    list get one carved from the training dialogues (``dev_fraction``, ``seed``). ``labels``
    renames the classes; by default the layout's label set is used.
    """
    layout = get_layout(layout_name)
    source = str(path)
    fields = unpack(safe_load(path), layout, source)
    check_split_ids(fields, layout, source)
    label_names = tuple(labels) if labels else layout.labels
    wanted = tuple(m for m in (modalities or layout.modalities) if m in layout.modalities)
    builder = RecordBuilder(fields, layout, label_names, wanted, source)
    train, dev, test = _split_ids(fields, dev_fraction, seed)
    # Train first: its first dialogue fixes each feature field's width for the whole file.
    return DatasetSplits(
        name=layout.name,
        labels=label_names,
        train=builder.records(train),
        dev=builder.records(dev),
        test=builder.records(test),
    )


@register_dataset("features_pickle")
def load_features_pickle(cfg: Config) -> DatasetSplits:
    """``data.name=features_pickle``: read ``data.path`` with ``data.layout``."""
    if cfg.data.path is None:
        raise ConfigError(
            "data.path: required with data.name=features_pickle; give the pickle file, e.g. data.path=IEMOCAP_features.pkl"
        )
    return read_feature_pickle(
        cfg.data.path,
        cfg.data.layout,
        labels=cfg.data.labels,
        modalities=cfg.model.modalities,
        dev_fraction=cfg.data.dev_fraction,
        seed=cfg.seed,
    )
