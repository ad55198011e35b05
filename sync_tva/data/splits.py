"""Seeded dev carving: hold out whole training dialogues when a source ships no dev split.

Utterances of one conversation share speakers and context, so dev is carved by dialogue,
never by utterance. The carve depends only on the *sorted* dialogue ids, the fraction and the
seed, so it is the same on every machine and whatever order a file stores its ids in.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Iterable
from typing import TypeVar

import numpy as np

from ..errors import ConfigError
from ..records import RawUtterance

__all__ = ["carve_dev", "split_dev_by_dialogue"]

Id = TypeVar("Id", bound=Hashable)


FEW_DIALOGUES = 3  # a side with fewer dialogues than this gets a warning: dev scores of 1-2 dialogues are noise


def carve_dev(dialogues: Iterable[Id], fraction: float, seed: int) -> tuple[list[Id], list[Id]]:
    """Split training dialogue ids into ``(train, dev)``, ``dev`` holding ``round(fraction * n)`` of them.

    Each side keeps at least one dialogue (fewer than two in all is refused); when the fraction
    has to be bent for that, or a side ends with fewer than ``FEW_DIALOGUES``, a warning on
    stderr says so and which ``data.dev_fraction`` to set. Both lists come back in sorted order.
    """
    ids = sorted(set(dialogues), key=str)  # str key: ids may mix int and str in community files
    if not 0.0 < fraction < 1.0:
        raise ConfigError(
            f"data.dev_fraction: {fraction} must lie strictly between 0 and 1 to carve dev from train"
        )
    n = len(ids)
    if n < 2:
        raise ConfigError(
            f"data.dev_fraction: cannot carve dev from {n} training dialogue(s); need at least 2 "
            "(one each for train and dev), or give a dev split (data.dev for csv)"
        )
    n_dev = min(max(round(fraction * n), 1), n - 1)
    _warn_small_carve(n, n_dev, fraction)
    order = np.random.default_rng(seed).permutation(n)
    dev_index = set(order[:n_dev].tolist())
    train = [d for i, d in enumerate(ids) if i not in dev_index]
    dev = [d for i, d in enumerate(ids) if i in dev_index]
    return train, dev


def _warn_small_carve(n: int, n_dev: int, fraction: float) -> None:
    """Say on stderr when the carve bends ``fraction`` or leaves a side with few dialogues, with a fraction to set."""
    bent = n_dev != round(fraction * n)
    if not bent and min(n_dev, n - n_dev) >= FEW_DIALOGUES:
        return
    if n < 2 * FEW_DIALOGUES:
        fix = "give a dev split (data.dev for csv) or more training dialogues"
    else:
        fix = f"set data.dev_fraction between {FEW_DIALOGUES / n:.2f} and {1 - FEW_DIALOGUES / n:.2f}"
    why = f"data.dev_fraction={fraction} of {n} gives {round(fraction * n)}, so " if bent else ""
    print(
        f"warning: dev carve: {why}dev holds {n_dev} and train {n - n_dev} of {n} training dialogues "
        f"(fewer than {FEW_DIALOGUES} on a side makes early stopping noisy); {fix}",
        file=sys.stderr,
    )


def split_dev_by_dialogue(
    train: list[RawUtterance], fraction: float, seed: int
) -> tuple[list[RawUtterance], list[RawUtterance]]:
    """Hold out a seeded ``fraction`` of the training dialogues as dev (see :func:`carve_dev`); returns ``(train, dev)``."""
    held = set(carve_dev([u.dialogue for u in train], fraction, seed)[1])
    return [u for u in train if u.dialogue not in held], [u for u in train if u.dialogue in held]
