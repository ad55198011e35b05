"""The conversation view: one dialogue's context graph as the context model attended to it.

Turns run left to right in time order, one lane per speaker, each utterance a marker coloured
by its speaker and labelled with its true and predicted emotion (red when they differ). Every
context edge is an arc from the turn that speaks to the turn that listens, coloured by its
relation, its opacity the attention (mean over heads) of the layer drawn; past edges bend
above the lanes, future edges below, self-loops are left out (each is 1 by construction).

Typical use on a finished ``sync_tva_context`` run::

    trained = load_model("runs/demo_context")
    conv = extract_conversation(trained, trained.load_split("test")[:9])   # one dialogue's turns
    save_figure(draw_conversation(conv), "out/dialogue")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from ..errors import DataError
from ..graphs.batching import make_batch
from ..models import eval_mode
from ..records import Utterance, dialogue_units
from ..train.experiment import TrainedModel

__all__ = ["ConversationAttention", "extract_conversation", "draw_conversation"]

EDGE_COLUMNS = ["layer", "relation", "src", "dst", "attention"]
_BEND = 0.35  # arc curvature; one sign for all: arcs bend left of their direction, so past (rightward) edges go above and future ones below


@dataclass
class ConversationAttention:
    """One dialogue as the context model saw it; ``edges`` has one row per (layer, context edge),
    ``src``/``dst`` are turn indices and ``attention`` is the mean over heads."""

    dialogue: str
    labels: tuple[str, ...]
    uids: list[str]
    speakers: list[str]
    true: list[int]
    predicted: list[int]
    edges: pd.DataFrame

    def __repr__(self) -> str:
        right = sum(t == p for t, p in zip(self.true, self.predicted))
        return f"ConversationAttention({self.dialogue!r}, turns={len(self.uids)}, correct={right}, edges={len(self.edges)})"


@torch.no_grad()
def extract_conversation(trained: TrainedModel, utterances: Sequence[Utterance]) -> ConversationAttention:
    """Run a context model once over one dialogue's ``utterances`` (in turn order) in eval mode."""
    context = trained.model.dialogue_builder()
    if context is None:
        raise ValueError(f"model {trained.cfg.model.name!r} reads no conversation; draw a sync_tva_context run")
    if len(dialogue_units(utterances)) != 1:
        raise DataError(
            f"draw_conversation takes one dialogue's utterances, got dialogues {sorted({u.dialogue for u in utterances})}"
        )
    batch = make_batch(utterances, trained.builder, context=context).to(trained.device)
    with eval_mode(trained.model):
        out = trained.model(batch.graph, dialogue=batch.dialogue, return_attention=True)
    rows = []
    for layer, per_relation in enumerate(out.attention.context):
        for etype, att in per_relation.items():
            src, dst = batch.dialogue.edges(etype=etype)
            table = {"layer": layer, "relation": etype[1], "src": src.cpu().numpy(), "dst": dst.cpu().numpy()}
            rows.append(pd.DataFrame({**table, "attention": att[:, :, 0].mean(dim=1).cpu().numpy()}))
    edges = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=EDGE_COLUMNS)
    return ConversationAttention(
        dialogue=utterances[0].dialogue,
        labels=tuple(trained.labels),
        uids=[u.uid for u in utterances],
        speakers=[u.speaker for u in utterances],
        true=[int(u.label) for u in utterances],
        predicted=out.logits.argmax(dim=-1).tolist(),
        edges=edges,
    )


def draw_conversation(conv: ConversationAttention, *, layer: int = -1) -> plt.Figure:
    """The dialogue's context graph at ``layer`` (negative counts from the last): one marker per turn."""
    n = len(conv.uids)
    lanes = list(dict.fromkeys(conv.speakers))  # speakers in order of first turn
    y = [lanes.index(s) for s in conv.speakers]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * n + 2), 1.6 + 1.1 * len(lanes)))
    edges = conv.edges
    if not edges.empty:
        layer = sorted(edges["layer"].unique())[layer]  # the layer's own index, for the title
        edges = edges[(edges["layer"] == layer) & (edges["src"] != edges["dst"])]
    relations = sorted(edges["relation"].unique()) if not edges.empty else []
    colours = {r: plt.get_cmap("tab10")(i % 10) for i, r in enumerate(relations)}
    for row in edges.itertuples(index=False):
        arc = FancyArrowPatch(
            (row.src, y[row.src]), (row.dst, y[row.dst]), connectionstyle=f"arc3,rad={-_BEND}", arrowstyle="-|>",
            mutation_scale=10, color=colours[row.relation], alpha=float(min(max(row.attention, 0.05), 1.0)), lw=1.5,
        )
        ax.add_patch(arc)
    speaker_colours = plt.get_cmap("Set2")
    for lane, speaker in enumerate(lanes):
        turns = [t for t in range(n) if conv.speakers[t] == speaker]
        ax.scatter(turns, [lane] * len(turns), s=260, color=speaker_colours(lane % 8), edgecolor="black", zorder=3, label=speaker)
    for t in range(n):
        true, pred = conv.labels[conv.true[t]], conv.labels[conv.predicted[t]]
        text = true if true == pred else f"{true}\n→ {pred}"
        ax.annotate(text, (t, y[t]), xytext=(0, -16), textcoords="offset points", ha="center", va="top", fontsize=7,
                    color="black" if true == pred else "crimson", zorder=4)
    ax.set_xticks(range(n), [f"turn {t}" for t in range(n)], fontsize=7)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(-0.9, len(lanes) - 0.1 + 0.5)
    handles = [Line2D([0], [0], color=colours[r], lw=2, label=r) for r in relations]
    speakers_legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, title="speaker")
    if handles:
        ax.add_artist(speakers_legend)
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=7, title="relation")
    correct = sum(t == p for t, p in zip(conv.true, conv.predicted))
    ax.set_title(f"dialogue {conv.dialogue}: context attention, layer {layer}; {correct}/{n} turns right", fontsize=9)
    fig.tight_layout()
    return fig
