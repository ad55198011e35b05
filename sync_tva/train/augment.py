"""Modality dropout: training utterances that lose one whole modality for an epoch.

A fusion model trained on small data learns to lean on whichever modality separates the
training set best, including one that carries nothing about the label on new speakers (a
sentence read in every emotion). Removing a random modality from a share of the utterances
each epoch (never an utterance's last one) makes every modality's path carry the label on its
own; the graph builder and CAF already handle an utterance without nodes of a modality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..records import Utterance

__all__ = ["drop_modalities"]


def drop_modalities(utterances: Sequence[Utterance], rate: float, seed: int) -> list[Utterance]:
    """Copies of ``utterances`` where each, with probability ``rate``, has one of its present modalities
    (chosen uniformly) emptied to zero nodes; utterances with fewer than two present modalities are kept."""
    rng = np.random.default_rng(seed)
    draws = rng.random(len(utterances))  # one draw per utterance, so the choice of one never shifts another's
    picks = rng.random(len(utterances))
    out = []
    for u, draw, pick in zip(utterances, draws, picks):
        present = [m for m, nodes in u.features.items() if len(nodes)]
        if draw >= rate or len(present) < 2:
            out.append(u)
            continue
        dropped = present[int(pick * len(present))]
        empty = np.zeros((0, u.features[dropped].shape[1]), np.float32)
        out.append(replace(u, features={**u.features, dropped: empty}))
    return out
