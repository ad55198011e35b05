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
]
