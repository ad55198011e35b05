"""Seeded dev carving: hold out whole training dialogues when a source ships no dev split.

Utterances of one conversation share speakers and context, so dev is carved by dialogue,
never by utterance. The carve depends only on the *sorted* dialogue ids, the fraction and the
seed, so it is the same on every machine and whatever order a file stores its ids in.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

import numpy as np

from ..errors import ConfigError
from ..records import RawUtterance

__all__ = ["carve_dev", "split_dev_by_dialogue"]

Id = TypeVar("Id", bound=Hashable)


def carve_dev(dialogues: Iterable[Id], fraction: float, seed: int) -> tuple[list[Id], list[Id]]:
    """Split training dialogue ids into ``(train, dev)``, ``dev`` holding ``round(fraction * n)`` of them.

    At least one dialogue goes to each side, so early stopping always has a dev set. Both lists
    come back in sorted order.
    """
    ids = sorted(set(dialogues), key=str)  # str key: ids may mix int and str in community files
    if not 0.0 < fraction < 1.0:
        raise ConfigError(
            f"data.dev_fraction: {fraction} must lie strictly between 0 and 1 to carve dev from train"
        )
    if len(ids) < 2:
        raise ConfigError(
            f"data.dev_fraction: cannot carve dev from {len(ids)} training dialogue(s); need at least 2"
        )
    n_dev = min(max(round(fraction * len(ids)), 1), len(ids) - 1)
    order = np.random.default_rng(seed).permutation(len(ids))
    dev_index = set(order[:n_dev].tolist())
    train = [d for i, d in enumerate(ids) if i not in dev_index]
    dev = [d for i, d in enumerate(ids) if i in dev_index]
    return train, dev


def split_dev_by_dialogue(
    train: list[RawUtterance], fraction: float, seed: int
) -> tuple[list[RawUtterance], list[RawUtterance]]:
    """Hold out a seeded ``fraction`` of the training dialogues as dev (see :func:`carve_dev`); returns ``(train, dev)``."""
    held = set(carve_dev([u.dialogue for u in train], fraction, seed)[1])
    return [u for u in train if u.dialogue not in held], [u for u in train if u.dialogue in held]
