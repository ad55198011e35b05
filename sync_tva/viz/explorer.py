"""The explorer page: one self-contained HTML file to browse a run's attention, offline, in a browser.

The page holds the run's attention tables (:func:`~sync_tva.viz.attention.extract_attention`)
as inline JSON, column by column, with GAT weights laid out ``[layer][head][edge]`` beside
one list of edges and MSDE weights as ``[head][query * n + key]`` per modality. Float32
weights are written as their shortest exact decimal, so a value read from the page equals
the table's. A small dependency-free script of ours (``static/explorer.js``) draws graphs and
heatmaps as SVG: the page needs a few hundred lines of drawing, and no plotting library does
both views offline at a size worth inlining into every page.

For a run made from video, an utterance's record also holds its visual nodes' thumbnails
(``thumbs``: lossless PNG data URIs, in node order) and image boxes (``boxes``: ``[x0, y0, x1, y1]``
fractions of the frame), shown beside the visual nodes of the graph and in the hover panel;
records without them have neither key.

For a dialogue-context model the page also holds each utterance's context attention
(:func:`context_links`), drawn as arcs in its conversation panel (speakers as lanes, turns in
time order). Element ids the tests drive: ``#search``, ``#filter-true``, ``#filter-pred``,
``#filter-correct``, ``#utterance``, ``#layer``, ``#head``, ``#relation``, ``#top-k``,
``#view-graph``, ``#view-heatmap``, ``#canvas`` (cells: ``rect.cell[data-row][data-col][data-value]``;
nodes: ``[data-node]``; thumbnails: ``image.thumb[data-node]``), ``#node-info`` (a visual node's
thumbnail: ``img.thumb``, its box: ``.box``), ``#prediction``, ``#conversation``.
"""

from __future__ import annotations

import base64
import io
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ..graphs import plan_utterances, planned_utterances
from ..io import atomic_open
from ..records import Utterance, dialogue_units
from ..train.experiment import TrainedModel
from .attention import UtteranceAttention, extract_attention
from .conversation import extract_conversation
from .draw import FACE_MODALITY
from .heatmap import dense_relations

__all__ = [
    "explorer_data",
    "write_explorer",
    "write_explorer_page",
    "extract_in_batches",
    "page_batches",
    "context_links",
    "page_data",
    "png_data_uri",
]

_EDGE_KEYS = ["relation", "src_type", "src", "dst_type", "dst", "edge_id"]
_DATA_TAG = '<script type="application/json" id="explorer-data">'


def _exact(values: Iterable) -> list:
    """Numbers as the shortest decimals that read back to the same float32 (NaN: ``None``)."""
    out = []
    for v in np.asarray(list(values), dtype=np.float32):
        out.append(None if math.isnan(v) else float(str(v)))
    return out


def _columns(table: pd.DataFrame, floats: Sequence[str]) -> dict[str, list]:
    """A table as ``{column: values}``; ``floats`` columns exact (see :func:`_exact`), others as plain values."""
    return {c: _exact(table[c]) if c in floats else table[c].tolist() for c in table.columns}


def _gat_columns(gat: pd.DataFrame) -> dict[str, Any]:
    """GAT rows as one edge list and ``attention[layer][head][edge]``, the page's layout."""
    if gat.empty:
        return {**{k: [] for k in _EDGE_KEYS}, "attention": []}
    wide = gat.pivot(index=_EDGE_KEYS, columns=["layer", "head"], values="attention")
    edges = wide.index.to_frame(index=False)
    layers = sorted(gat["layer"].unique())
    heads = sorted(gat["head"].unique())
    columns = {k: edges[k].tolist() for k in _EDGE_KEYS}
    columns["attention"] = [[_exact(wide[(layer, head)]) for head in heads] for layer in layers]
    return columns


def _msde_columns(msde: pd.DataFrame) -> dict[str, list]:
    """MSDE rows as ``{modality: attention[head][query * n + key]}``: the square matrices, row by row."""
    out = {}
    for modality, table in msde.groupby("modality", sort=False):
        table = table.sort_values(["head", "query", "key"])
        out[str(modality)] = [_exact(t["attention"]) for _, t in table.groupby("head", sort=True)]
    return out


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 RGB image as a ``data:image/png;base64,...`` URI: PNG is lossless, so the page holds the very pixels."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _faces(ua: UtteranceAttention) -> dict[str, list]:
    """The visual nodes' ``thumbs`` (PNG data URIs) and ``boxes``, in node order; no key for what the run lacks."""
    out: dict[str, list] = {}
    if FACE_MODALITY in ua.thumbs:
        out["thumbs"] = [png_data_uri(t) for t in ua.thumbs[FACE_MODALITY]]
    if FACE_MODALITY in ua.boxes:
        out["boxes"] = [_exact(b) for b in ua.boxes[FACE_MODALITY]]
    return out


def _utterance(ua: UtteranceAttention, utt: Utterance, links: list[dict[str, Any]] | None) -> dict[str, Any]:
    """One utterance's record in the page: identity, prediction, its attention tables and faces (:func:`_faces`)."""
    return {
        "uid": ua.uid,
        "dialogue": utt.dialogue,
        "speaker": utt.speaker,
        "text": utt.text,
        "true": ua.true,
        "predicted": ua.predicted,
        "probs": _exact(ua.probs),
        "nodes": _columns(ua.nodes, ["start", "end", "pooling"]),
        "gat": _gat_columns(ua.gat),
        "msde": _msde_columns(ua.msde),
        "caf": _columns(ua.caf, ["attention"]),
        "caf_gates": _columns(ua.caf_gates, ["gate"]),
        "context": links,  # a context model's: [{"source": uid, "relation": name, "attention": w}, ...], else None
        **_faces(ua),
    }


def explorer_data(
    uas: Sequence[UtteranceAttention],
    utterances: Sequence[Utterance],
    *,
    title: str,
    modalities: Sequence[str],
    context: Mapping[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """The page's data: labels, relations, head counts and one record per utterance (in time order).

    ``context`` (see :func:`context_links`) gives each utterance's context attention, for a model that has it.
    """
    if len(uas) != len(utterances):
        raise ValueError(f"{len(uas)} attention records for {len(utterances)} utterances")
    relations: dict[str, dict[str, Any]] = {}
    dense: set[str] = set()
    for ua in uas:
        for row in ua.gat.drop_duplicates("relation").itertuples(index=False):
            relations.setdefault(row.relation, {"name": row.relation, "src_type": row.src_type, "dst_type": row.dst_type})
        dense.update(dense_relations(ua))
    for name, relation in relations.items():
        relation["dense"] = name in dense

    def count(table: str, column: str) -> int:
        return max((int(getattr(ua, table)[column].max()) + 1 for ua in uas if not getattr(ua, table).empty), default=0)

    return {
        "title": title,
        "labels": list(uas[0].labels) if uas else [],
        "modalities": list(modalities),
        "relations": sorted(relations.values(), key=lambda r: r["name"]),
        "layers": count("gat", "layer"),
        "heads": {"gat": count("gat", "head"), "msde": count("msde", "head"), "caf": count("caf", "head")},
        "utterances": [_utterance(ua, utt, None if context is None else context.get(ua.uid, [])) for ua, utt in zip(uas, utterances)],
    }


def _static(name: str) -> str:
    return resources.files("sync_tva.viz").joinpath("static", name).read_text(encoding="utf-8")


def write_explorer(data: dict[str, Any], path: str | Path) -> Path:
    """Write the page: template, style, script and ``data`` inlined into one HTML file (atomically)."""
    path = Path(path)
    # "</" inside the JSON would end the script element early; "<\/" is the same string to JSON.
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    page = (
        _static("explorer.html")
        .replace("/*STYLE*/", _static("explorer.css"))
        .replace("/*SCRIPT*/", _static("explorer.js"))
        .replace("{{TITLE}}", _escape(data["title"]))
        .replace("{{DATA}}", payload)
    )
    with atomic_open(path, "w") as fh:
        fh.write(page)
    return path


def page_data(path: str | Path) -> dict[str, Any]:
    """The data inlined in a page written by :func:`write_explorer` (to compare it with the tables)."""
    text = Path(path).read_text(encoding="utf-8")
    start = text.index(_DATA_TAG) + len(_DATA_TAG)
    return json.loads(text[start : text.index("</script>", start)])


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def extract_in_batches(trained: TrainedModel, utterances: Sequence[Utterance], batch_size: int) -> list[UtteranceAttention]:
    """:func:`extract_attention` over the page's batches (:func:`page_batches`).

    These are the page's tables, bit for bit: a batch's weights may differ from one utterance's
    alone in the last float32 bits (other reduction orders), so comparing a page with tables
    asks for the same batches.
    """
    return [ua for batch in page_batches(trained, utterances, batch_size) for ua in extract_attention(trained, batch)]


def page_batches(trained: TrainedModel, utterances: Sequence[Utterance], batch_size: int) -> list[list[Utterance]]:
    """``utterances`` in the order given, batched as evaluation batches them (whole dialogues for a context model)."""
    return planned_utterances(utterances, plan_utterances(utterances, batch_size, context=trained.model.dialogue_builder()))


def context_links(trained: TrainedModel, utterances: Sequence[Utterance]) -> dict[str, list[dict[str, Any]]]:
    """Per utterance, the turns the last context layer attends to (mean of heads), for a context model.

    ``{uid: [{"source": uid, "relation": name, "attention": w}, ...]}`` from
    :func:`~sync_tva.viz.conversation.extract_conversation`, one dialogue at a time; the weights
    of one relation into one utterance sum to 1. Empty for a model without dialogue context.
    """
    if not trained.model.needs_dialogue:
        return {}
    links: dict[str, list[dict[str, Any]]] = {}
    for unit in dialogue_units(utterances):
        conv = extract_conversation(trained, [utterances[i] for i in unit])
        links.update({uid: [] for uid in conv.uids})
        if conv.edges.empty:
            continue
        last = conv.edges[conv.edges["layer"] == conv.edges["layer"].max()]
        for row, weight in zip(last.itertuples(index=False), _exact(last["attention"])):
            links[conv.uids[row.dst]].append({"source": conv.uids[row.src], "relation": row.relation, "attention": weight})
    return links


def write_explorer_page(
    trained: TrainedModel,
    utterances: Sequence[Utterance],
    path: str | Path,
    *,
    title: str,
    batch_size: int = 32,
) -> Path:
    """Extract the attention of ``utterances`` (``batch_size`` at a time) and write the explorer page."""
    uas: list[UtteranceAttention] = []
    links: dict[str, list[dict[str, Any]]] = {}
    for batch in page_batches(trained, utterances, batch_size):
        uas += extract_attention(trained, batch)
        links.update(context_links(trained, batch))
    data = explorer_data(uas, utterances, title=title, modalities=list(trained.schema.node_types), context=links or None)
    return write_explorer(data, path)
