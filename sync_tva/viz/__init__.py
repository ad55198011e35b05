"""Inspecting attention: per-utterance attention tables, graph drawings, heatmaps, GraphML export,
edge ablation, and a self-contained HTML explorer page.

Typical use on a finished run::

    trained = load_model("runs/demo")              # sync_tva.inference: from the checkpoint alone
    ua = extract_attention(trained, trained.load_split("test")[:1])[0]
    ua.gat                                   # tidy table: layer, head, relation, src, dst, attention
    save_figure(draw_attention(ua, top_k=3), "out/utt")   # out/utt.png, out/utt.svg
    write_graphml(ua, "out/utt.graphml")
    save_figure(draw_heatmaps(ua, head=0), "out/utt_heatmap", formats=("png",))

From the shell: ``python -m sync_tva.viz --run RUN_DIR [--utterance ID ...] [--out DIR] [--html PAGE]``.
"""

from .attention import (
    UtteranceAttention,
    attention_graph,
    attention_sharpness,
    extract_attention,
    mean_over_heads,
    node_id,
)
from .conversation import ConversationAttention, draw_conversation, extract_conversation
from .draw import attention_figure, draw_attention, draw_comparison, save_figure, select_edges
from .explorer import write_explorer, write_explorer_page
from .graphml import read_graphml, write_graphml
from .heatmap import (
    AttentionMatrix,
    caf_matrix,
    dense_relations,
    draw_heatmaps,
    gat_matrix,
    heatmap_matrices,
    msde_matrix,
)
from .influence import edge_influence, relation_influence

__all__ = [
    "UtteranceAttention",
    "extract_attention",
    "ConversationAttention",
    "extract_conversation",
    "draw_conversation",
    "attention_graph",
    "mean_over_heads",
    "attention_sharpness",
    "node_id",
    "select_edges",
    "draw_attention",
    "attention_figure",
    "draw_comparison",
    "AttentionMatrix",
    "gat_matrix",
    "msde_matrix",
    "caf_matrix",
    "heatmap_matrices",
    "dense_relations",
    "draw_heatmaps",
    "write_explorer",
    "write_explorer_page",
    "save_figure",
    "write_graphml",
    "read_graphml",
    "edge_influence",
    "relation_influence",
]
