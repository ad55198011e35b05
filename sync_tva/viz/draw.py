"""Drawings of one utterance's attention graph: modalities in bands, edges weighted by attention.

Layout: text on top, audio in the middle, visual at the bottom; inside a band nodes sit at
their relative time in the utterance (the middle of their span, or ``(i + 0.5) / n`` without
spans), so nodes that happen at the same moment line up vertically. Each edge is a curve from
source to destination that bends to the left of its direction, so the two directions of one
relation (``V-A`` and ``A-V``) never overlap; colour says the relation, width and opacity the
attention (scaled by the strongest edge shown). Node size is the node's readout (pooling)
weight relative to a uniform readout. For runs made from video, each visual node's thumbnail
(the face crop or frame it read) sits just below it, above its span label.

Curves go through one ``LineCollection`` per panel instead of one patch per edge: a full
utterance graph has thousands of edges per layer and head, and the drawing is also made once
per epoch for TensorBoard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from ..config import MODALITIES
from ..io import save_figure as atomic_save_figure
from ..records import Utterance
from ..train.experiment import TrainedModel
from .attention import UtteranceAttention, extract_attention, mean_over_heads

__all__ = ["select_edges", "node_positions", "draw_attention", "draw_comparison", "save_figure", "relation_colours"]

BAND_Y = {"text": 2.0, "audio": 1.0, "visual": 0.0}  # text on top, audio and visual below
_CURVE_POINTS = 16  # samples along each edge's curve
_BEND = 0.12  # sideways offset of a curve's middle, relative to its length
_INTRA_ARC = 0.15  # least height of an arc between two nodes of the same band
FACE_MODALITY = "visual"  # the modality whose nodes may carry thumbnails (Utterance.thumbs)
_THUMB_POINTS = 18.0  # side of a thumbnail in points: about twice a node of uniform readout
_THUMB_GAP = 8.0  # points from a node's centre to its thumbnail's top: clear of the largest node
_THUMB_ROOM = 0.35  # extra depth under the bottom band, in data units, for thumbnails and their labels


def select_edges(
    ua: UtteranceAttention,
    *,
    layer: int = -1,
    head: int | None = None,
    relations: Sequence[str] | None = None,
    top_k: int | None = None,
) -> pd.DataFrame:
    """The GAT rows to draw: one layer (negative counts from the last), one head or the mean of
    all heads (``head=None``), optionally some relations only, and optionally the ``top_k``
    strongest incoming edges of every destination node per relation.

    Why top-k per destination and not overall: attention is a distribution over each node's
    incoming edges, so "what does this node listen to" is the question a drawing can answer.
    """
    gat = ua.gat
    if gat.empty:
        return gat
    layers = sorted(gat["layer"].unique())
    if not -len(layers) <= layer < len(layers):
        raise ValueError(f"layer {layer} out of range: the model has GAT layers {layers}")
    gat = gat[gat["layer"] == layers[layer]]
    if relations is not None:
        unknown = sorted(set(relations) - set(ua.gat["relation"]))
        if unknown:
            raise ValueError(f"unknown relations {unknown}; this graph has {sorted(ua.gat['relation'].unique())}")
        gat = gat[gat["relation"].isin(relations)]
    if head is None:
        gat = mean_over_heads(gat)
    else:
        heads = sorted(ua.gat["head"].unique())
        if head not in heads:
            raise ValueError(f"head {head} out of range: the model has heads {heads}")
        gat = gat[gat["head"] == head]
    if top_k is not None:
        gat = gat.sort_values("attention", ascending=False).groupby(["relation", "dst"], sort=False).head(top_k)
    return gat.reset_index(drop=True)


def node_positions(nodes: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """``{node: (x, y)}``: y is the modality's band, x the relative time in the utterance (0..1)."""
    positions: dict[str, tuple[float, float]] = {}
    duration = float(np.nanmax(nodes["end"])) if nodes["end"].notna().any() else np.nan
    for modality, group in nodes.groupby("modality", sort=False):
        n = len(group)
        if group["start"].notna().all() and duration > 0:
            x = ((group["start"] + group["end"]) / 2 / duration).to_numpy()
        else:
            x = (group["index"].to_numpy() + 0.5) / n
        for name, xi in zip(group["node"], x):
            positions[name] = (float(xi), BAND_Y[modality])
    return positions


def relation_colours(relations: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per relation, in the given order (tab10, then tab20 for many relations)."""
    cmap = plt.get_cmap("tab10" if len(relations) <= 10 else "tab20")
    return {r: cmap(i % cmap.N) for i, r in enumerate(relations)}


def _curves(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``[E, P, 2]`` quadratic Bezier curves from ``start`` to ``end`` ([E, 2]), bent to the left.

    Edges inside one band (intra-modality) get a higher arc so that neighbours' edges stay
    visible instead of lying on the band line.
    """
    delta = end - start
    normal = np.stack([-delta[:, 1], delta[:, 0]], axis=1)  # left of the direction of travel
    length = np.linalg.norm(delta, axis=1, keepdims=True)
    unit = normal / np.maximum(length, 1e-9)
    same_band = np.isclose(delta[:, 1:], 0.0)
    offset = np.where(same_band, (_INTRA_ARC + 0.5 * length) * unit, _BEND * normal)
    control = (start + end) / 2 + offset
    t = np.linspace(0.0, 1.0, _CURVE_POINTS)[None, :, None]
    return (1 - t) ** 2 * start[:, None] + 2 * (1 - t) * t * control[:, None] + t**2 * end[:, None]


def _strength(ua: UtteranceAttention, edges: pd.DataFrame) -> np.ndarray:
    """Per edge, ``attention * in-degree`` (1 = uniform) divided by its largest value: [E] in (0, 1]."""
    one = ua.gat[(ua.gat["layer"] == ua.gat["layer"].iloc[0]) & (ua.gat["head"] == ua.gat["head"].iloc[0])]
    degree = one.groupby(["relation", "dst"]).size().rename("degree")
    lift = edges["attention"].to_numpy() * edges.join(degree, on=["relation", "dst"])["degree"].to_numpy()
    return lift / lift.max()


def _has_thumbs(ua: UtteranceAttention, modalities: Sequence[str]) -> bool:
    """Whether the drawing shows thumbnails: the visual band is drawn and its nodes have them."""
    return FACE_MODALITY in modalities and FACE_MODALITY in ua.thumbs


def _draw_thumbs(ax: plt.Axes, xy: np.ndarray, thumbs: np.ndarray) -> None:
    """Each node's thumbnail centred under it, sized in points so it reads the same in every panel size.

    Below the bottom band nothing else is drawn, so a thumbnail never hides an edge.
    """
    zoom = _THUMB_POINTS / thumbs.shape[1]
    for (x, y), thumb in zip(xy, thumbs):
        image = OffsetImage(thumb, zoom=zoom)
        ax.add_artist(
            AnnotationBbox(image, (x, y), xybox=(0.0, -_THUMB_GAP), boxcoords="offset points",
                           box_alignment=(0.5, 1.0), frameon=False, pad=0.0, zorder=4)
        )


def _draw_nodes(ax: plt.Axes, ua: UtteranceAttention, pos: dict[str, tuple[float, float]], modalities: Sequence[str]) -> None:
    """Nodes sized by their readout weight, their labels, thumbnails if any, and one labelled band per modality."""
    for modality in modalities:
        group = ua.nodes[ua.nodes["modality"] == modality]
        y = BAND_Y[modality]
        name = modality if len(group) else f"{modality}\n(no nodes)"
        ax.text(-0.03, y, name, ha="right", va="center", fontsize=9, fontweight="bold")
        if group.empty:
            continue
        xy = np.array([pos[n] for n in group["node"]])
        size = 40 * np.clip(group["pooling"].to_numpy() * len(group), 0.3, 4.0)  # 40 = uniform readout
        ax.scatter(xy[:, 0], xy[:, 1], s=size, c="white", edgecolors="black", linewidths=0.8, zorder=3)
        # Labels sit outside the graph: text tokens above, audio and visual spans below their band
        # (below the thumbnails, when the visual nodes have them).
        above = modality == "text"
        with_thumbs = modality == FACE_MODALITY and _has_thumbs(ua, modalities)
        if with_thumbs:
            _draw_thumbs(ax, xy, ua.thumbs[modality][group["index"].to_numpy()])
        style = {"rotation": 90, "fontsize": 6, "ha": "center", "va": "bottom" if above else "top", "zorder": 4, "color": "0.2",
                 "bbox": {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7}}
        for (x, _), label in zip(xy, group["label"]):
            if with_thumbs:
                ax.annotate(label, (x, y), xytext=(0.0, -(_THUMB_GAP + _THUMB_POINTS + 3.0)), textcoords="offset points", **style)
            else:
                ax.text(x, y + (0.09 if above else -0.09), label, **style)


def _draw_panel(
    ax: plt.Axes,
    ua: UtteranceAttention,
    edges: pd.DataFrame,
    colours: dict[str, tuple],
    modalities: Sequence[str],
    title: str,
) -> None:
    pos = node_positions(ua.nodes)
    if not edges.empty:
        src = np.array([pos[f"{t}:{i}"] for t, i in zip(edges["src_type"], edges["src"])])
        dst = np.array([pos[f"{t}:{i}"] for t, i in zip(edges["dst_type"], edges["dst"])])
        strength = _strength(ua, edges)
        rgba = np.array([colours[r] for r in edges["relation"]])
        rgba[:, 3] = 0.04 + 0.86 * strength**2  # squared: near-uniform edges fade into the background
        order = np.argsort(strength)  # strongest on top
        widths = (0.2 + 3.0 * strength**2)[order]
        lines = LineCollection(_curves(src, dst)[order], colors=rgba[order], linewidths=widths, zorder=2)
        ax.add_collection(lines)
    _draw_nodes(ax, ua, pos, modalities)
    ax.set_xlim(-0.06, 1.06)
    room = _THUMB_ROOM if _has_thumbs(ua, modalities) else 0.0
    ax.set_ylim(min(BAND_Y[m] for m in modalities) - 0.65 - room, max(BAND_Y[m] for m in modalities) + 0.65)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([0, 0.5, 1], ["start", "relative time", "end"], fontsize=7)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)


def _legend(fig: plt.Figure, ua: UtteranceAttention, colours: dict[str, tuple]) -> None:
    src_dst = ua.gat.drop_duplicates("relation").set_index("relation")
    handles = [
        Line2D([], [], color=c, lw=2.5, label=f"{r}: {src_dst.loc[r, 'src_type']} → {src_dst.loc[r, 'dst_type']}")
        for r, c in colours.items()
        if r in src_dst.index
    ]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False)


def _describe(layer: int, head: int | None, top_k: int | None) -> str:
    heads = "mean of heads" if head is None else f"head {head}"
    return f"layer {layer}, {heads}" + (f", top {top_k} per node" if top_k else "")


def _modalities(ua: UtteranceAttention, modalities: Sequence[str] | None) -> list[str]:
    """The bands to draw: given ones, else every modality with nodes or edges, in band order."""
    if modalities is not None:
        return list(modalities)
    seen = set(ua.nodes["modality"]) | set(ua.gat["src_type"]) | set(ua.gat["dst_type"])
    return [m for m in MODALITIES if m in seen]


def _panel_height(ua: UtteranceAttention, bands: Sequence[str]) -> float:
    """Inches per panel: one per band, plus the room under the bottom band that thumbnails take."""
    return 0.9 + 1.0 * len(bands) + (_THUMB_ROOM if _has_thumbs(ua, bands) else 0.0)


def draw_attention(
    ua: UtteranceAttention,
    *,
    layer: int = -1,
    head: int | None = None,
    relations: Sequence[str] | None = None,
    top_k: int | None = None,
    per_relation: bool = False,
    modalities: Sequence[str] | None = None,
    width: float = 9.0,
) -> plt.Figure:
    """One figure of the utterance's GAT attention: a combined view, or one panel per relation.

    ``layer``, ``head``, ``relations`` and ``top_k`` choose the edges (see :func:`select_edges`);
    ``modalities`` names the bands to draw (default: the utterance's own, so a run's modality
    with no nodes in this utterance is shown as an empty band when passed explicitly).
    """
    edges = select_edges(ua, layer=layer, head=head, relations=relations, top_k=top_k)
    bands = _modalities(ua, modalities)
    all_relations = list(dict.fromkeys(ua.gat["relation"]))
    colours = relation_colours(all_relations)
    shown = [r for r in all_relations if r in set(edges["relation"])] if per_relation else [None]
    if per_relation and not shown:
        shown = [None]
    cols = min(len(shown), 2)
    rows = -(-len(shown) // cols)
    panel_h = _panel_height(ua, bands)
    fig, axes = plt.subplots(rows, cols, figsize=(width, panel_h * rows + 1.1), squeeze=False)
    layer_no = sorted(ua.gat["layer"].unique())[layer] if not ua.gat.empty else 0
    for ax, relation in zip(axes.flat, shown):
        panel = edges if relation is None else edges[edges["relation"] == relation]
        title = "all relations" if relation is None else relation
        if ua.gat.empty:
            title = "no GAT attention (no edges or no GAT layer)"
        _draw_panel(ax, ua, panel, colours, bands, title)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    fig.suptitle(f"{ua.title}\n{_describe(layer_no, head, top_k)}", fontsize=10)
    _legend(fig, ua, colours)
    fig.tight_layout(rect=(0.03, 0.07, 1, 1))
    return fig


def attention_figure(trained: TrainedModel, utterance: Utterance, *, top_k: int = 3) -> plt.Figure:
    """The last GAT layer's attention on one utterance (heads averaged, ``top_k`` edges per node).

    Training logs it for one fixed dev utterance per epoch to show attention sharpening; the
    pass runs in eval mode and restores the model's mode, so training is unaffected.
    """
    ua = extract_attention(trained, [utterance])[0]
    return draw_attention(ua, top_k=top_k, modalities=list(trained.schema.node_types), width=7.0)


def draw_comparison(
    ua: UtteranceAttention,
    *,
    layers: Sequence[int],
    heads: Sequence[int | None],
    relations: Sequence[str] | None = None,
    top_k: int | None = None,
    width: float = 12.0,
) -> plt.Figure:
    """A grid of panels, one row per layer and one column per head (``None``: mean of heads)."""
    bands = _modalities(ua, None)
    colours = relation_colours(list(dict.fromkeys(ua.gat["relation"])))
    fig, axes = plt.subplots(len(layers), len(heads), figsize=(width, _panel_height(ua, bands) * len(layers) + 1.1), squeeze=False)
    for r, layer in enumerate(layers):
        for c, head in enumerate(heads):
            edges = select_edges(ua, layer=layer, head=head, relations=relations, top_k=top_k)
            _draw_panel(axes[r, c], ua, edges, colours, bands, _describe(layer % max(ua.gat["layer"].nunique(), 1), head, top_k))
    fig.suptitle(ua.title, fontsize=10)
    _legend(fig, ua, colours)
    fig.tight_layout(rect=(0.03, 0.07, 1, 1))
    return fig


def save_figure(fig: plt.Figure, stem: str | Path, formats: Sequence[str] = ("png", "svg"), dpi: int = 130) -> list[Path]:
    """Save ``fig`` as ``stem.png``, ``stem.svg`` (or the given formats), close it, return the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(f"{stem.name}.{fmt}") for fmt in formats]
    for path in paths:
        atomic_save_figure(fig, path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return paths
