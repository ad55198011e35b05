"""Data sources: readers of raw media (csv, meld, iemocap), feature-ready sources (demo, pickles), label sets.

Importing the package registers every source; ``sync_tva.features.load_dataset`` turns any of
them into model-ready splits.
"""

from . import (  # noqa: F401  (importing registers each source)
    csv_reader,
    iemocap,
    meld,
    pickles,
    synthetic,
)
from .folds import Fold, FoldSpec, fold_splits, make_folds, parse_folds
from .labels import IEMOCAP_LABELS, MELD_LABELS
from .registry import (
    DataSource,
    get_source,
    list_datasets,
    read_featured,
    read_raw,
    register_dataset,
    register_reader,
)

__all__ = [
    "MELD_LABELS",
    "IEMOCAP_LABELS",
    "DataSource",
    "get_source",
    "list_datasets",
    "read_featured",
    "read_raw",
    "register_dataset",
    "register_reader",
    "Fold",
    "FoldSpec",
    "parse_folds",
    "make_folds",
    "fold_splits",
]
