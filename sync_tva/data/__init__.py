"""Data sources: typed records, label sets, and a registry of readers (importing registers them)."""

from . import (  # noqa: F401  (register "csv", "iemocap", "meld")
    csv_reader,
    iemocap,
    meld,
    pickles,  # noqa: F401  (registers "features_pickle")
    synthetic,  # noqa: F401  (registers "demo")
)
from .labels import IEMOCAP_LABELS, MELD_LABELS
from .records import DatasetSplits, Utterance
from .registry import list_datasets, load_dataset, register_dataset

__all__ = [
    "DatasetSplits",
    "Utterance",
    "MELD_LABELS",
    "IEMOCAP_LABELS",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]
