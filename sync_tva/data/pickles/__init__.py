"""Community feature pickles (DialogueRNN / DialogueGCN / MMGCN / COSMIC / SDT / M3Net family) as ``DatasetSplits``.

Each file is one tuple whose items are dicts keyed by dialogue id (one entry per utterance of
the dialogue, in order) and lists of dialogue ids for the splits. ``layouts.yaml`` says what
each position holds for every known file; ``data.layout`` picks one (``docs/pickles.md``).

The modules follow the read: :mod:`.layouts` (the table), :mod:`.unpack` (payload -> named
fields, split ids), :mod:`.build` (fields -> utterance records), :mod:`.source` (the reader and
the registered ``features_pickle`` source). Importing the package registers the source.

Example::

    python -m sync_tva.run --config configs/iemocap_pickle.yaml data.path=IEMOCAP_features.pkl
"""

from .layouts import LAYOUTS, PickleLayout, get_layout, list_layouts
from .source import load_features_pickle, read_feature_pickle

__all__ = [
    "LAYOUTS",
    "PickleLayout",
    "get_layout",
    "list_layouts",
    "load_features_pickle",
    "read_feature_pickle",
]
