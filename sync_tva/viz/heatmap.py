"""Attention as matrices: one heatmap per relation (destination nodes by source nodes), MSDE and CAF.

A graph drawing of dense attention (``full`` patterns: every text token to every audio window)
is a bundle of near-identical curves; a matrix shows where each destination node's attention
concentrates at a glance. Rows are destination (query) nodes and columns source (key) nodes,
both labelled by token or time span; a cell without an edge (``aligned`` patterns, or a CAF
query that does not attend to its own modality) is masked and drawn hatched grey, which is
distinct from an edge of weight 0. All panels of a figure share one colour scale (square
root, so the small weights of a row with many sources stay visible next to CAF's few keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import PowerNorm
from matplotlib.patches import Patch

from ..config import MODALITIES
from .attention import UtteranceAttention
from .draw import select_edges

__all__ = ["AttentionMatrix", "gat_matrix", "msde_matrix", "caf_matrix", "heatmap_matrices", "dense_relations", "draw_heatmaps"]

DENSE = 0.5  # a relation whose edges fill at least this share of its (source, destination) pairs is drawn as a heatmap
_MASKED = "0.82"  # grey of a cell without an edge
_CELL_INCH = 0.16  # height or width of one cell in a figure


@dataclass
class AttentionMatrix:
    """One heatmap panel: ``values[r, c]`` is the attention of row node ``r`` on column node ``c``.

    Shapes:
        values: [len(rows), len(cols)], NaN where there is no edge (masked, not 0)
    """

    title: str
    rows: list[str]
    cols: list[str]
    row_axis: str
    col_axis: str
    values: np.ndarray

    def __repr__(self) -> str:
        return f"AttentionMatrix({self.title!r}, {len(self.rows)}x{len(self.cols)}, masked={int(np.isnan(self.values).sum())})"


def _labels(ua: UtteranceAttention, modality: str) -> list[str]:
    """Node labels (token or time span) of one modality, in index order."""
    nodes = ua.nodes[ua.nodes["modality"] == modality].sort_values("index")
    return nodes["label"].tolist()


def _fill(n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A [n_rows, n_cols] matrix holding ``weights`` at (rows, cols) and NaN elsewhere (parallel edges add)."""
    total = np.zeros((n_rows, n_cols))
    seen = np.zeros((n_rows, n_cols), dtype=bool)
    np.add.at(total, (rows, cols), weights)
    seen[rows, cols] = True
    return np.where(seen, total, np.nan)


def _heads(head: int | None) -> str:
    return "mean of heads" if head is None else f"head {head}"


def _pick_head(table: pd.DataFrame, keys: list[str], head: int | None, block: str) -> pd.DataFrame:
    """One head of an MSDE or CAF table, or the mean over heads (``head=None``)."""
    if head is None:
        return table.groupby(keys, as_index=False, sort=False)["attention"].mean()
    heads = sorted(table["head"].unique())
    if head not in heads:
        raise ValueError(f"{block} head {head} out of range: the model has heads {heads}")
    return table[table["head"] == head]


def gat_matrix(ua: UtteranceAttention, relation: str, *, layer: int = -1, head: int | None = None) -> AttentionMatrix:
    """GAT attention of one relation: destination nodes (rows) by source nodes (columns)."""
    edges = select_edges(ua, layer=layer, head=head, relations=[relation])
    one = ua.gat[ua.gat["relation"] == relation].iloc[0]
    src_type, dst_type = str(one["src_type"]), str(one["dst_type"])
    rows, cols = _labels(ua, dst_type), _labels(ua, src_type)
    values = _fill(len(rows), len(cols), edges["dst"].to_numpy(int), edges["src"].to_numpy(int), edges["attention"].to_numpy(float))
    layer_no = sorted(ua.gat["layer"].unique())[layer]
    title = f"GAT {relation}: {src_type} → {dst_type} (layer {layer_no}, {_heads(head)})"
    return AttentionMatrix(title, rows, cols, f"{dst_type} (destination)", f"{src_type} (source)", values)


def msde_matrix(ua: UtteranceAttention, modality: str, *, head: int | None = None) -> AttentionMatrix:
    """MSDE self-attention inside one modality: query nodes (rows) by key nodes (columns)."""
    table = _pick_head(ua.msde[ua.msde["modality"] == modality], ["query", "key"], head, "MSDE")
    labels = _labels(ua, modality)
    values = _fill(len(labels), len(labels), table["query"].to_numpy(int), table["key"].to_numpy(int), table["attention"].to_numpy(float))
    return AttentionMatrix(f"MSDE {modality} ({_heads(head)})", labels, labels, f"{modality} (query)", f"{modality} (key)", values)


def caf_matrix(ua: UtteranceAttention, *, head: int | None = None) -> AttentionMatrix:
    """CAF cross-attention: one row per query modality's summary, one column per node it may attend to.

    Columns are every node of every key modality (``A 0.25-0.50s``: modality initial and label);
    a modality's row is masked over the nodes it does not attend to (e.g. its own).
    """
    table = _pick_head(ua.caf, ["query_modality", "key_modality", "key"], head, "CAF")
    queries = [m for m in MODALITIES if m in set(ua.caf["query_modality"])]
    keys = [m for m in MODALITIES if m in set(ua.caf["key_modality"])]
    offsets = dict(zip(keys, np.cumsum([0] + [len(_labels(ua, m)) for m in keys])))
    cols = [f"{m[0].upper()} {label}" for m in keys for label in _labels(ua, m)]
    row = table["query_modality"].map({m: i for i, m in enumerate(queries)}).to_numpy(int)
    col = (table["key_modality"].map(offsets) + table["key"]).to_numpy(int)
    values = _fill(len(queries), len(cols), row, col, table["attention"].to_numpy(float))
    return AttentionMatrix(f"CAF ({_heads(head)})", [f"{m} summary" for m in queries], cols, "query", "key node", values)


def dense_relations(ua: UtteranceAttention, threshold: float = DENSE) -> list[str]:
    """Relations whose edges fill at least ``threshold`` of their possible (source, destination) pairs.

    ``full`` patterns fill all of them; ``aligned`` ones only pairs close in time. The command
    draws dense relations as heatmaps and sparse ones as graphs (``--view auto``).
    """
    if ua.gat.empty:
        return []
    first = ua.gat[(ua.gat["layer"] == ua.gat["layer"].min()) & (ua.gat["head"] == ua.gat["head"].min())]
    counts = ua.nodes["modality"].value_counts()
    dense = []
    for relation, edges in first.groupby("relation", sort=False):
        pairs = counts.get(edges["src_type"].iloc[0], 0) * counts.get(edges["dst_type"].iloc[0], 0)
        if pairs and len(edges) / pairs >= threshold:
            dense.append(str(relation))
    return dense


def heatmap_matrices(
    ua: UtteranceAttention,
    *,
    layer: int = -1,
    head: int | None = None,
    relations: Sequence[str] | None = None,
    msde: bool = True,
    caf: bool = True,
) -> list[AttentionMatrix]:
    """The panels of :func:`draw_heatmaps`: GAT relations (``layer``, ``head``), then MSDE per modality and CAF.

    ``head`` picks the GAT head; MSDE and CAF have their own head counts and are averaged over heads.
    """
    names = list(dict.fromkeys(ua.gat["relation"])) if relations is None else list(relations)
    panels = [gat_matrix(ua, r, layer=layer, head=head) for r in names]
    if msde:
        panels += [msde_matrix(ua, m) for m in MODALITIES if m in set(ua.msde["modality"])]
    if caf and not ua.caf.empty:
        panels.append(caf_matrix(ua))
    return panels


def _panel(ax: plt.Axes, matrix: AttentionMatrix, norm: PowerNorm, cmap) -> object:
    """Draw one matrix; masked cells show the hatched grey axes background through."""
    image = ax.imshow(np.ma.masked_invalid(matrix.values), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    ax.patch.set_facecolor(_MASKED)
    ax.patch.set_hatch("////")
    ax.patch.set_edgecolor("white")
    small = 6 if max(len(matrix.rows), len(matrix.cols)) <= 30 else 4
    ax.set_yticks(range(len(matrix.rows)), matrix.rows, fontsize=small)
    ax.set_xticks(range(len(matrix.cols)), matrix.cols, fontsize=small, rotation=90)
    ax.set_ylabel(matrix.row_axis, fontsize=8)
    ax.set_xlabel(matrix.col_axis, fontsize=8)
    ax.set_title(matrix.title, fontsize=8)
    return image


def draw_heatmaps(
    ua: UtteranceAttention,
    *,
    layer: int = -1,
    head: int | None = None,
    relations: Sequence[str] | None = None,
    msde: bool = True,
    caf: bool = True,
    columns: int = 3,
) -> plt.Figure:
    """One figure of heatmaps for an utterance, on one shared colour scale (see :func:`heatmap_matrices`)."""
    panels = heatmap_matrices(ua, layer=layer, head=head, relations=relations, msde=msde, caf=caf)
    if not panels:
        raise ValueError(f"utterance {ua.uid!r} has no attention to draw as a heatmap (no edges, MSDE or CAF)")
    cols = min(columns, len(panels))
    rows = -(-len(panels) // cols)
    side = max(max(len(p.rows), len(p.cols)) for p in panels) * _CELL_INCH + 1.6
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols + 1.0, side * rows + 1.4), squeeze=False)
    finite = [p.values[np.isfinite(p.values)] for p in panels]
    vmax = max((float(v.max()) for v in finite if v.size), default=1.0) or 1.0
    norm = PowerNorm(0.5, vmin=0.0, vmax=vmax)
    cmap = plt.get_cmap("viridis")
    image = None
    for ax, matrix in zip(axes.flat, panels):
        image = _panel(ax, matrix, norm, cmap)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(ua.title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 0.93, 0.97))
    bar = fig.add_axes((0.945, 0.15, 0.012, 0.7))
    fig.colorbar(image, cax=bar, label="attention (shared, square-root scale)")
    masked = Patch(facecolor=_MASKED, edgecolor="white", hatch="////", label="no edge (masked)")
    fig.legend(handles=[masked], loc="lower center", fontsize=8, frameon=False)
    return fig
