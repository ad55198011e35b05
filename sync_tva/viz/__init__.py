"""Inspecting attention: per-utterance attention tables, graph drawings, GraphML export, edge ablation.

Typical use on a finished run::

    exp = load_run("runs/demo")
    ua = extract_attention(exp, exp.data.test[:1])[0]
    ua.gat                                   # tidy table: layer, head, relation, src, dst, attention
    save_figure(draw_attention(ua, top_k=3), "out/utt")   # out/utt.png, out/utt.svg
    write_graphml(ua, "out/utt.graphml")

From the shell: ``python -m sync_tva.viz --run RUN_DIR [--utterance ID ...] [--out DIR]``.
"""

from .attention import (
    UtteranceAttention,
    attention_graph,
    attention_sharpness,
    extract_attention,
    mean_over_heads,
    node_id,
)
from .draw import draw_attention, draw_comparison, save_figure, select_edges
from .graphml import read_graphml, write_graphml
from .influence import edge_influence, relation_influence

__all__ = [
    "UtteranceAttention",
    "extract_attention",
    "attention_graph",
    "mean_over_heads",
    "attention_sharpness",
    "node_id",
    "select_edges",
    "draw_attention",
    "draw_comparison",
    "save_figure",
    "write_graphml",
    "read_graphml",
    "edge_influence",
    "relation_influence",
]
