"""Export of an utterance's attention graph as directed GraphML, for Gephi, yEd and networkx.

Each edge goes from source to destination node (the direction in which the message flows)
and carries ``relation``, ``layer``, ``head`` and ``attention``; parallel edges (several
layers and heads between the same two nodes) are kept, so the file reads back as a
``networkx.MultiDiGraph``. Nodes carry ``modality``, ``index``, ``label``, ``pooling`` and,
when known, ``start`` and ``end`` in seconds.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pandas as pd

from ..io import atomic_open
from .attention import UtteranceAttention, attention_graph

__all__ = ["write_graphml", "read_graphml"]


def write_graphml(ua: UtteranceAttention, path: str | Path, gat: pd.DataFrame | None = None) -> Path:
    """Write the attention graph of ``ua`` (all layers and heads unless ``gat`` says otherwise).

    The file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        nx.write_graphml(attention_graph(ua, gat), fh)
    return path


def read_graphml(path: str | Path) -> nx.MultiDiGraph:
    """Read a file written by :func:`write_graphml` back, with typed attributes."""
    return nx.read_graphml(path, force_multigraph=True)
