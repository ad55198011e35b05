"""Group cross-validation (``run --folds GROUP:K``): K folds of whole groups, each tested on its own groups.

A *group* is a record field that must never straddle train and test: ``speaker`` (speaker-
independent evaluation), ``dialogue``, or ``session`` (IEMOCAP: the ``SesNN`` prefix of the
speaker id, e.g. ``Ses01F`` is session ``Ses01``). The pool is the union of a source's train and
dev utterances; its own test split is not used.

The fold rule (:func:`make_folds`) depends only on the *sorted* group ids, their sizes and the
seed: shuffle the sorted ids with ``numpy.random.default_rng(seed)``, order them by size, largest
first (a stable sort, so equal sizes keep the shuffled order), and give each in turn to the fold
with the fewest utterances so far (the lowest index on a tie). Each fold then holds at least one
group, and fold sizes differ by at most the largest group's size. ``K = loo`` is leave-one-group-
out: fold ``i`` tests on the ``i``-th sorted group.

A fold's dev split (:func:`fold_splits`) is carved from the other groups' utterances only, by
whole dialogues with :func:`~sync_tva.data.splits.carve_dev` and ``data.dev_fraction``, and
the rest is its train split, so no test-group utterance is ever in train or dev.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..records import DatasetSplits, RawUtterance, Utterance
from .splits import carve_dev

__all__ = ["GROUPS", "FoldSpec", "Fold", "parse_folds", "group_of", "make_folds", "fold_splits"]

GROUPS = ("speaker", "dialogue", "session")  # the fields --folds can hold out
LOO = "loo"  # K meaning one fold per group
_SESSION = re.compile(r"^(Ses\d+)")  # IEMOCAP speaker ids: Ses01F, Ses05M, ...

Record = Utterance | RawUtterance


@dataclass(frozen=True)
class FoldSpec:
    """What ``--folds`` asked for: the group field and the number of folds (``None``: one per group)."""

    group: str
    k: int | None

    def __str__(self) -> str:
        return f"{self.group}:{LOO if self.k is None else self.k}"


@dataclass(frozen=True)
class Fold:
    """Fold ``index`` of a cross-validation over ``group``: the groups it tests on (sorted) and their utterance count."""

    index: int
    group: str
    groups: tuple[str, ...]
    size: int


def parse_folds(text: str) -> FoldSpec:
    """``"speaker:5"`` to ``FoldSpec("speaker", 5)``, ``"session:loo"`` to ``FoldSpec("session", None)``.

    Bad syntax, an unknown group or ``K < 2`` is a :class:`ConfigError` naming the fix.
    """
    group, sep, k = text.partition(":")
    if not sep or not group or not k:
        raise ConfigError(f"--folds {text!r}: expected GROUP:K, e.g. --folds speaker:5 or --folds speaker:{LOO}")
    if group not in GROUPS:
        raise ConfigError(f"--folds {text!r}: unknown group {group!r}; choose from {', '.join(GROUPS)}")
    if k == LOO:
        return FoldSpec(group, None)
    try:
        n = int(k)
    except ValueError:
        raise ConfigError(f"--folds {text!r}: K must be an integer >= 2 or {LOO!r}, got {k!r}") from None
    if n < 2:
        raise ConfigError(f"--folds {text!r}: K must be at least 2 (got {n}); one fold would test on everything")
    return FoldSpec(group, n)


def group_of(utt: Record, group: str) -> str:
    """The ``group`` id of one record; ``session`` only where the speaker id is IEMOCAP-style (``Ses01F``)."""
    if group == "speaker":
        return str(utt.speaker)
    if group == "dialogue":
        return str(utt.dialogue)
    if group == "session":
        match = _SESSION.match(str(utt.speaker))
        if match is None:
            raise DataError(
                f"--folds session: utterance {utt.uid!r} has speaker {utt.speaker!r}, which names no session; "
                "sessions come from IEMOCAP-style speaker ids (Ses01F: session Ses01); use --folds speaker:K or dialogue:K"
            )
        return match.group(1)
    raise ConfigError(f"--folds: unknown group {group!r}; choose from {', '.join(GROUPS)}")


def make_folds(utterances: Sequence[Record], spec: FoldSpec, seed: int) -> list[Fold]:
    """Split the groups of ``utterances`` into ``spec.k`` folds balanced by utterance count (the module's rule).

    Fewer groups than folds is a :class:`DataError`.
    """
    sizes = Counter(group_of(u, spec.group) for u in utterances)
    ids = sorted(sizes)
    k = len(ids) if spec.k is None else spec.k
    if len(ids) < max(k, 2):
        raise DataError(
            f"--folds {spec}: the train and dev splits hold {len(ids)} {spec.group} group(s), fewer than the "
            f"{max(k, 2)} folds asked for; choose a smaller K or another group"
        )
    if spec.k is None:
        return [Fold(i, spec.group, (g,), sizes[g]) for i, g in enumerate(ids)]
    shuffled = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    members: list[list[str]] = [[] for _ in range(k)]
    totals = [0] * k
    for g in sorted(shuffled, key=lambda g: -sizes[g]):  # stable: equal sizes keep the seeded order
        i = min(range(k), key=lambda i: (totals[i], i))
        members[i].append(g)
        totals[i] += sizes[g]
    return [Fold(i, spec.group, tuple(sorted(m)), totals[i]) for i, m in enumerate(members)]


def fold_splits(data: DatasetSplits, fold: Fold, dev_fraction: float, seed: int) -> DatasetSplits:
    """``data``'s train and dev re-cut for ``fold``: test is the fold's groups, dev a seeded carve of the others' dialogues.

    ``data.test`` is dropped. A label present in the pool but absent from the fold's test
    utterances gets a ``warning:`` on stderr naming it (that class's test F1 means nothing there).
    """
    held = set(fold.groups)
    pool = [*data.train, *data.dev]
    test = [u for u in pool if group_of(u, fold.group) in held]
    rest = [u for u in pool if group_of(u, fold.group) not in held]
    dev_dialogues = set(carve_dev([u.dialogue for u in rest], dev_fraction, seed)[1])
    missing = sorted({u.label for u in pool} - {u.label for u in test})
    if missing:
        names = ", ".join(data.labels[i] if 0 <= i < len(data.labels) else str(i) for i in missing)
        print(
            f"warning: --folds {fold.group}: fold {fold.index} (test {', '.join(fold.groups)}) has no utterance "
            f"labelled {names}, which other folds have",
            file=sys.stderr,
        )
    return replace(
        data,
        train=[u for u in rest if u.dialogue not in dev_dialogues],
        dev=[u for u in rest if u.dialogue in dev_dialogues],
        test=test,
    )
