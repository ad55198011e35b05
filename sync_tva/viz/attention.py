"""Attention of a trained Sync-TVA model, per utterance, as tidy tables and as a networkx graph.

One forward pass over a batch of utterances (``return_attention=True``) gives every attention
the model computed, laid out for the whole batch (see :class:`~sync_tva.models.AttentionMaps`).
:func:`extract_attention` cuts it back into one :class:`UtteranceAttention` per utterance with
node indices local to that utterance, so every table can be read without knowing the batch.

Tables (pandas, one row per weight):

- ``nodes``: ``node, modality, index, label, start, end, pooling`` (``start``/``end`` in seconds,
  NaN without spans; ``pooling`` is the readout weight of the node in its modality);
- ``gat``: ``layer, head, relation, src_type, src, dst_type, dst, edge_id, attention``; for one
  (layer, head, relation, destination node) the attention sums to 1 over the incoming edges;
- ``msde``: ``modality, head, query, key, attention`` (self-attention inside one modality);
- ``caf``: ``query_modality, head, key_modality, key, attention`` (cross-modal fusion);
- ``caf_gates``: ``modality, gate`` (how much each modality's summary weighs in the fused vector).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import networkx as nx
import numpy as np
import pandas as pd
import torch
from dgl import DGLHeteroGraph

from ..graphs.batching import make_batch
from ..models import AttentionMaps, eval_mode
from ..models.segments import segment_ids, segment_starts
from ..records import Utterance
from ..train.experiment import TrainedModel

__all__ = [
    "UtteranceAttention",
    "extract_attention",
    "attention_graph",
    "node_id",
    "mean_over_heads",
    "attention_sharpness",
]

GAT_COLUMNS = ["layer", "head", "relation", "src_type", "src", "dst_type", "dst", "edge_id", "attention"]
MSDE_COLUMNS = ["modality", "head", "query", "key", "attention"]
CAF_COLUMNS = ["query_modality", "head", "key_modality", "key", "attention"]


@dataclass
class UtteranceAttention:
    """Everything the model attended to for one utterance, with its prediction.

    ``probs`` are the class probabilities in the order of ``labels``; the tables are described
    in the module docstring. ``boxes[m]`` / ``thumbs[m]`` are the utterance's image boxes and
    thumbnails (see :class:`~sync_tva.records.Utterance`), one per node of ``m``, kept so that
    drawings can show what a visual node saw; empty for runs not made from video.
    """

    uid: str
    labels: tuple[str, ...]
    true: int
    predicted: int
    probs: np.ndarray
    nodes: pd.DataFrame
    gat: pd.DataFrame
    msde: pd.DataFrame
    caf: pd.DataFrame
    caf_gates: pd.DataFrame
    boxes: dict[str, np.ndarray] = field(default_factory=dict)  # modality: float32 [n_nodes, 4], (x0, y0, x1, y1) fractions of the frame
    thumbs: dict[str, np.ndarray] = field(default_factory=dict)  # modality: uint8 [n_nodes, T, T, 3]

    @property
    def correct(self) -> bool:
        return self.true == self.predicted

    @property
    def title(self) -> str:
        """``uid: true -> predicted (p)``, for figure titles."""
        p = float(self.probs[self.predicted])
        return f"{self.uid}: true {self.labels[self.true]}, predicted {self.labels[self.predicted]} ({p:.2f})"

    def __repr__(self) -> str:
        counts = self.nodes["modality"].value_counts().to_dict()
        return f"UtteranceAttention({self.uid!r}, nodes={counts}, gat_rows={len(self.gat)}, correct={self.correct})"


def node_id(modality: str, index: int) -> str:
    """The name of a node in graphs and files: ``text:3``."""
    return f"{modality}:{index}"


def _node_table(utt: Utterance, counts: dict[str, int], pooling: dict[str, np.ndarray]) -> pd.DataFrame:
    """Node labels: the token for text nodes, the time span for audio and visual, else the index.

    Records from other sources may lack tokens or spans, or have them at another granularity
    (one pooled node per modality); labels then fall back to ``modality index``.
    """
    rows = []
    for m, n in counts.items():
        spans = utt.spans.get(m)
        has_spans = spans is not None and len(spans) == n
        has_tokens = m == "text" and len(utt.tokens) == n
        for i in range(n):
            start, end = (float(spans[i][0]), float(spans[i][1])) if has_spans else (np.nan, np.nan)
            if has_tokens:
                label = utt.tokens[i]
            elif has_spans:
                label = f"{start:.2f}-{end:.2f}s"
            else:
                label = f"{m} {i}"
            rows.append((node_id(m, i), m, i, label, start, end, float(pooling[m][i])))
    return pd.DataFrame(rows, columns=["node", "modality", "index", "label", "start", "end", "pooling"])


def _per_node(arrays: dict[str, np.ndarray], counts: dict[str, int]) -> dict[str, np.ndarray]:
    """The modalities of ``arrays`` with one row per node (as for labels, another count means none)."""
    return {m: a for m, a in arrays.items() if counts.get(m, 0) > 0 and len(a) == counts[m]}


def _gat_tables(g: DGLHeteroGraph, maps: AttentionMaps, n_utt: int) -> list[pd.DataFrame]:
    """Per utterance, one row per (layer, head, edge) with local node and edge indices."""
    node_offsets = {t: segment_starts(g.batch_num_nodes(t)) for t in g.ntypes}
    parts: list[list[pd.DataFrame]] = [[] for _ in range(n_utt)]
    for layer, per_etype in enumerate(maps.gat):
        for etype, att in per_etype.items():
            src_type, relation, dst_type = etype
            src, dst = g.edges(etype=etype)
            if src.numel() == 0:
                continue
            graph = segment_ids(g.batch_num_nodes(dst_type))[dst]  # utterance of every edge
            edge_offsets = segment_starts(g.batch_num_edges(etype))
            eid = torch.arange(src.numel()) - edge_offsets[graph]
            src_local = src - node_offsets[src_type][graph]
            dst_local = dst - node_offsets[dst_type][graph]
            heads = att.shape[1]
            for b in range(n_utt):
                sel = graph == b
                if not bool(sel.any()):
                    continue
                a = att[sel, :, 0].cpu().numpy()  # [E_b, heads]
                n_edges = a.shape[0]
                parts[b].append(
                    pd.DataFrame(
                        {
                            "layer": layer,
                            "head": np.tile(np.arange(heads), n_edges),
                            "relation": relation,
                            "src_type": src_type,
                            "src": np.repeat(src_local[sel].numpy(), heads),
                            "dst_type": dst_type,
                            "dst": np.repeat(dst_local[sel].numpy(), heads),
                            "edge_id": np.repeat(eid[sel].numpy(), heads),
                            "attention": a.reshape(-1),
                        }
                    )
                )
    return [pd.concat(p, ignore_index=True) if p else pd.DataFrame(columns=GAT_COLUMNS) for p in parts]


def _msde_tables(maps: AttentionMaps, counts: dict[str, np.ndarray], n_utt: int) -> list[pd.DataFrame]:
    """MSDE self-attention rows per utterance; ``msde[m]`` only covers utterances that have ``m``."""
    parts: list[list[pd.DataFrame]] = [[] for _ in range(n_utt)]
    for m, weights in maps.msde.items():
        present = np.flatnonzero(counts[m] > 0)
        # MSDE leaves its attention None for a batch without any node of m.
        if weights is None or present.size == 0:
            continue
        for row, b in enumerate(present):
            n = int(counts[m][b])
            w = weights[row, :, :n, :n].cpu().numpy()  # [heads, n, n]
            h, q, k = np.meshgrid(np.arange(w.shape[0]), np.arange(n), np.arange(n), indexing="ij")
            parts[b].append(
                pd.DataFrame({"modality": m, "head": h.ravel(), "query": q.ravel(), "key": k.ravel(), "attention": w.ravel()})
            )
    return [pd.concat(p, ignore_index=True) if p else pd.DataFrame(columns=MSDE_COLUMNS) for p in parts]


def _caf_tables(maps: AttentionMaps, counts: dict[str, np.ndarray], n_utt: int) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """CAF cross-attention (real key nodes only) and modality gates per utterance."""
    parts: list[list[pd.DataFrame]] = [[] for _ in range(n_utt)]
    gates: list[pd.DataFrame] = [pd.DataFrame(columns=["modality", "gate"]) for _ in range(n_utt)]
    caf = maps.caf
    if caf is None:
        return [pd.DataFrame(columns=CAF_COLUMNS) for _ in range(n_utt)], gates
    for b in range(n_utt):
        gates[b] = pd.DataFrame({"modality": caf.modalities, "gate": caf.gates[b].cpu().numpy()})
    for m, cross in caf.cross.items():
        start = 0
        for key_mod, length in caf.key_layout[m]:
            for b in range(n_utt):
                n = int(counts[key_mod][b])
                if counts[m][b] == 0 or n == 0:  # no query summary, or nothing to attend to
                    continue
                w = cross[b, :, start : start + n].cpu().numpy()  # [heads, n]
                h, k = np.meshgrid(np.arange(w.shape[0]), np.arange(n), indexing="ij")
                table = {"query_modality": m, "head": h.ravel(), "key_modality": key_mod, "key": k.ravel(), "attention": w.ravel()}
                parts[b].append(pd.DataFrame(table))
            start += length
    return [pd.concat(p, ignore_index=True) if p else pd.DataFrame(columns=CAF_COLUMNS) for p in parts], gates


@torch.no_grad()
def extract_attention(trained: TrainedModel, utterances: Sequence[Utterance]) -> list[UtteranceAttention]:
    """Run the model once over ``utterances`` and return each one's attention and prediction.

    The model is put in eval mode for the pass (no dropout, so the weights are the ones that
    produced the prediction) and its previous mode is restored afterwards, so this can be
    called in the middle of training.
    """
    if not utterances:
        return []
    batch = make_batch(utterances, trained.builder, context=trained.model.dialogue_builder()).to(trained.device)
    with eval_mode(trained.model):
        out = trained.model(batch.graph, dialogue=batch.dialogue, return_attention=True)
    g = batch.graph.to("cpu")
    maps = out.attention
    probs = torch.softmax(out.logits, dim=-1).cpu().numpy()
    n = len(utterances)
    counts = {m: g.batch_num_nodes(m).numpy() for m in trained.schema.node_types}
    pooling = {m: w[:, 0].cpu().numpy() for m, w in maps.pooling.items()}
    starts = {m: segment_starts(g.batch_num_nodes(m)).numpy() for m in counts}
    gat, msde = _gat_tables(g, maps, n), _msde_tables(maps, counts, n)
    caf, gates = _caf_tables(maps, counts, n)
    result = []
    for b, utt in enumerate(utterances):
        own = {m: int(counts[m][b]) for m in counts}
        own_pooling = {m: pooling[m][starts[m][b] : starts[m][b] + own[m]] for m in own}
        result.append(
            UtteranceAttention(
                uid=utt.uid,
                labels=tuple(trained.labels),
                true=int(utt.label),
                predicted=int(probs[b].argmax()),
                probs=probs[b],
                nodes=_node_table(utt, own, own_pooling),
                gat=gat[b],
                msde=msde[b],
                caf=caf[b],
                caf_gates=gates[b],
                boxes=_per_node(utt.boxes, own),
                thumbs=_per_node(utt.thumbs, own),
            )
        )
    return result


def mean_over_heads(gat: pd.DataFrame) -> pd.DataFrame:
    """The GAT table with heads averaged (``head`` becomes -1); sums per destination stay 1."""
    keys = [c for c in GAT_COLUMNS if c not in ("head", "attention")]
    out = gat.groupby(keys, as_index=False, sort=False)["attention"].mean()
    out.insert(1, "head", -1)
    return out[GAT_COLUMNS]


def attention_sharpness(gat: pd.DataFrame) -> pd.DataFrame:
    """How focused attention is, per (layer, head, relation), to compare them at a glance.

    ``top``: mean over destination nodes of their largest incoming weight; ``uniform``: the
    same for a uniform split (``1 / in-degree``); ``lift = top / uniform`` (1: no preference).
    """
    per_dst = gat.groupby(["layer", "head", "relation", "dst"])["attention"].agg(top="max", degree="size")
    per_dst["uniform"] = 1.0 / per_dst["degree"]
    out = per_dst.groupby(["layer", "head", "relation"])[["top", "uniform"]].mean()
    out["lift"] = out["top"] / out["uniform"]
    return out.reset_index()


def attention_graph(ua: UtteranceAttention, gat: pd.DataFrame | None = None) -> nx.MultiDiGraph:
    """A directed multigraph of the utterance: one edge per (layer, head, relation, src -> dst).

    Nodes are named ``modality:index`` and carry ``modality``, ``index``, ``label``, ``pooling``
    and, when known, ``start`` and ``end`` (seconds). Edges carry ``relation``, ``layer``,
    ``head`` and ``attention``. ``gat`` defaults to ``ua.gat``; pass a filtered or head-averaged
    table to export less.
    """
    gat = ua.gat if gat is None else gat
    graph = nx.MultiDiGraph(uid=ua.uid, true=ua.labels[ua.true], predicted=ua.labels[ua.predicted])
    for row in ua.nodes.itertuples(index=False):
        attrs = {"modality": row.modality, "index": int(row.index), "label": row.label, "pooling": float(row.pooling)}
        if not np.isnan(row.start):
            attrs.update(start=float(row.start), end=float(row.end))
        graph.add_node(row.node, **attrs)
    for row in gat.itertuples(index=False):
        graph.add_edge(
            node_id(row.src_type, row.src),
            node_id(row.dst_type, row.dst),
            relation=row.relation,
            layer=int(row.layer),
            head=int(row.head),
            attention=float(row.attention),
        )
    return graph
