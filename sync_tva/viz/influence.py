"""Which edges change a prediction: remove them one at a time and measure the change.

Attention says where a node looks, not whether that mattered for the output. Here each
candidate edge (or every edge of a relation) is deleted from the utterance graph, the
model is run again, and the change in the probability of the originally predicted class
is recorded. All the edited graphs go through the model as one batch, so ranking a few
dozen edges costs one forward pass.
"""

from __future__ import annotations

from typing import Sequence

import dgl
import numpy as np
import pandas as pd
import torch

from ..models import eval_mode
from ..records import Utterance
from ..train.experiment import TrainedModel
from .attention import UtteranceAttention

__all__ = ["edge_influence", "relation_influence"]


@torch.no_grad()
def _probabilities(trained: TrainedModel, variants: list[dgl.DGLHeteroGraph], utt: Utterance, turns: Sequence[Utterance]) -> np.ndarray:
    """Class probabilities [len(variants), C] of ``utt`` with each graph of ``variants`` in its place, in eval mode.

    A model that reads the conversation sees each variant inside ``utt``'s dialogue ``turns``
    (one copy of the dialogue per variant, with its own context graph); any other model sees the variants alone.
    """
    context = trained.model.dialogue_builder()
    dialogue, rows = None, list(range(len(variants)))
    if context is not None:
        at = [t.uid for t in turns].index(utt.uid)
        others = [trained.builder.build(t.features) for t in turns]
        variants = [g for v in variants for g in others[:at] + [v] + others[at + 1 :]]  # dialogue after dialogue
        dialogue = context.build_batch([[t.speaker for t in turns]] * len(rows)).to(trained.device)
        rows = [k * len(turns) + at for k in rows]
    with eval_mode(trained.model):
        logits = trained.model(dgl.batch(variants).to(trained.device), dialogue=dialogue).logits[rows]
    return torch.softmax(logits, dim=-1).cpu().numpy()


def _canonical(g: dgl.DGLHeteroGraph, relation: str) -> tuple[str, str, str]:
    return next(c for c in g.canonical_etypes if c[1] == relation)


def _ablate(
    trained: TrainedModel, utt: Utterance, ua: UtteranceAttention, removals: list[dict[tuple, torch.Tensor]], turns: Sequence[Utterance]
) -> pd.DataFrame:
    """Run the intact graph and one edited graph per entry of ``removals`` ({etype: edge ids})."""
    g = trained.builder.build(utt.features)
    graphs = [g]
    for removal in removals:
        edited = g
        for etype, eids in removal.items():
            edited = dgl.remove_edges(edited, eids, etype=etype)
        graphs.append(edited)
    probs = _probabilities(trained, graphs, utt, turns)
    base = probs[0, ua.predicted]
    return pd.DataFrame(
        {
            "p_predicted": probs[1:, ua.predicted],
            "delta": probs[1:, ua.predicted] - base,  # negative: the edge supported the prediction
            "new_prediction": [ua.labels[i] for i in probs[1:].argmax(axis=1)],
        }
    )


def edge_influence(
    trained: TrainedModel, utt: Utterance, ua: UtteranceAttention, *, candidates: int = 30, turns: Sequence[Utterance] | None = None
) -> pd.DataFrame:
    """The ``candidates`` edges with the highest attention (mean over layers and heads), each
    removed on its own, sorted by how much the predicted class's probability drops.

    Columns: ``relation, src_type, src, dst_type, dst, edge_id, mean_attention, p_predicted,
    delta, new_prediction``. ``ua`` must come from :func:`extract_attention` on ``turns`` (default:
    ``utt`` alone), the utterances of ``utt``'s dialogue that a model reading the conversation sees with it.
    """
    keys = ["relation", "src_type", "src", "dst_type", "dst", "edge_id"]
    ranked = (
        ua.gat.groupby(keys, as_index=False)["attention"].mean().rename(columns={"attention": "mean_attention"})
        .nlargest(candidates, "mean_attention").reset_index(drop=True)
    )
    if ranked.empty:
        return ranked
    g = trained.builder.build(utt.features)
    removals = [{_canonical(g, r.relation): torch.tensor([r.edge_id])} for r in ranked.itertuples()]
    result = pd.concat([ranked, _ablate(trained, utt, ua, removals, turns or [utt])], axis=1)
    return result.sort_values("delta").reset_index(drop=True)


def relation_influence(trained: TrainedModel, utt: Utterance, ua: UtteranceAttention, *, turns: Sequence[Utterance] | None = None) -> pd.DataFrame:
    """Every relation with edges in ``utt`` removed in turn (all its edges): ``relation, n_edges,
    p_predicted, delta, new_prediction``, most harmful removal first (``turns``: as for :func:`edge_influence`)."""
    g = trained.builder.build(utt.features)
    relations = [c for c in g.canonical_etypes if g.num_edges(c) > 0]
    if not relations:
        return pd.DataFrame(columns=["relation", "n_edges", "p_predicted", "delta", "new_prediction"])
    removals = [{c: torch.arange(g.num_edges(c))} for c in relations]
    head = pd.DataFrame({"relation": [c[1] for c in relations], "n_edges": [g.num_edges(c) for c in relations]})
    return pd.concat([head, _ablate(trained, utt, ua, removals, turns or [utt])], axis=1).sort_values("delta").reset_index(drop=True)
