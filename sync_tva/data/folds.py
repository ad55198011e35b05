"""Group cross-validation (``run --folds GROUP:K``): K folds of whole groups, each tested on its own groups.

A *group* is a record field that must never straddle train and test: ``speaker`` (speaker-
independent evaluation), ``dialogue``, or ``session`` where the source has one (IEMOCAP: ``Ses01``
for ``Session1``; a CSV: the column ``data.columns.session`` names). The pool is the union of a
source's train and dev utterances; its own test split is not used (nor needed: a CSV may leave
``data.test`` out).

The fold rule (:func:`make_folds`) depends only on the *sorted* group ids, their sizes and the
seed: shuffle the sorted ids with ``numpy.random.default_rng(seed)``, order them by size, largest
first (a stable sort, so equal sizes keep the shuffled order), and give each in turn to the fold
with the fewest utterances so far (the lowest index on a tie). Each fold then holds at least one
group, and fold sizes differ by at most the largest group's size. ``K = loo`` is leave-one-group-
out: fold ``i`` tests on the ``i``-th sorted group.

Folds can also be given explicitly, as the held-out groups of each fold in order: folds separated
by ``,``, a fold's groups joined by ``+`` (``speaker:03+08,09+10,11+12``, e.g. to pair one female
and one male speaker per fold). Every group of the pool must be in exactly one fold, so every
utterance is tested once: a group in two folds, a group the data lacks, or a group in no fold is
an error naming it.

A fold's dev split (:func:`fold_splits`) is carved from the other groups' utterances only, by
whole dialogues with :func:`~sync_tva.data.splits.carve_dev` and ``data.dev_fraction``, and
the rest is its train split, so no test-group utterance is ever in train or dev. A fold run
directory's ``fold.json`` (:data:`FOLD_JSON`, :class:`FoldRun`) records the protocol, the fold's
groups and the seed and fraction of its dev carve, so the run's splits can be cut again from the
source (:func:`read_fold_run`, :meth:`FoldRun.splits`).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..records import DatasetSplits, RawUtterance, Utterance
from .splits import carve_dev

__all__ = [
    "GROUPS",
    "FOLD_JSON",
    "FoldSpec",
    "Fold",
    "FoldRun",
    "parse_folds",
    "group_of",
    "make_folds",
    "fold_splits",
    "warn_label_gaps",
    "cut_folds",
    "read_fold_run",
]

GROUPS = ("speaker", "dialogue", "session")  # the fields --folds can hold out
LOO = "loo"  # K meaning one fold per group
FOLD_SEP, GROUP_SEP = ",", "+"  # explicit folds: speaker:03+08,09+10
FOLD_JSON = "fold.json"  # in each fold run directory: protocol, fold, test groups, dev carve, split sizes
_SESSION_SOURCES = (  # where a record's session comes from, for the error on a record without one
    "sessions come from IEMOCAP (Session1 is Ses01) and from a CSV column mapped with data.columns.session=COLUMN "
    "(every row needs a value); the other sources have none"
)

Record = Utterance | RawUtterance


@dataclass(frozen=True)
class FoldSpec:
    """What ``--folds`` asked for: the group field and the number of folds (``None``: one per group),
    or (``held``) each fold's held-out groups, given explicitly."""

    group: str
    k: int | None
    held: tuple[tuple[str, ...], ...] | None = None

    def __str__(self) -> str:
        if self.held is not None:
            return f"{self.group}:" + FOLD_SEP.join(GROUP_SEP.join(groups) for groups in self.held)
        return f"{self.group}:{LOO if self.k is None else self.k}"


@dataclass(frozen=True)
class Fold:
    """Fold ``index`` of a cross-validation over ``group``: the groups it tests on (sorted) and their utterance count."""

    index: int
    group: str
    groups: tuple[str, ...]
    size: int


def parse_folds(text: str) -> FoldSpec:
    """``"speaker:5"`` to ``FoldSpec("speaker", 5)``, ``"session:loo"`` to ``FoldSpec("session", None)``,
    ``"speaker:03+08,09+10"`` to explicit folds ``(("03", "08"), ("09", "10"))``.

    Bad syntax, an unknown group, ``K < 2``, an empty fold or a group in two folds is a
    :class:`ConfigError` naming the fix.
    """
    group, sep, k = text.partition(":")
    if not sep or not group or not k:
        raise ConfigError(f"--folds {text!r}: expected GROUP:K, e.g. --folds speaker:5 or --folds speaker:{LOO}")
    if group not in GROUPS:
        raise ConfigError(f"--folds {text!r}: unknown group {group!r}; choose from {', '.join(GROUPS)}")
    if FOLD_SEP in k:
        return FoldSpec(group, None, _parse_held(text, k))
    if k == LOO:
        return FoldSpec(group, None)
    try:
        n = int(k)
    except ValueError:
        raise ConfigError(
            f"--folds {text!r}: K must be an integer >= 2 or {LOO!r}, got {k!r} "
            f"(explicit folds: held-out groups per fold, e.g. {group}:a+b,c+d)"
        ) from None
    if n < 2:
        raise ConfigError(f"--folds {text!r}: K must be at least 2 (got {n}); one fold would test on everything")
    return FoldSpec(group, n)


def _parse_held(text: str, folds: str) -> tuple[tuple[str, ...], ...]:
    """``"03+08,09+10"`` to ``(("03", "08"), ("09", "10"))``: no empty fold or group, no group twice."""
    held = tuple(tuple(fold.split(GROUP_SEP)) for fold in folds.split(FOLD_SEP))
    if any(not g for fold in held for g in fold):
        raise ConfigError(f"--folds {text!r}: an empty fold or group id; write folds as a+b,c+d")
    twice = sorted(g for g, n in Counter(g for fold in held for g in fold).items() if n > 1)
    if twice:
        raise ConfigError(f"--folds {text!r}: {', '.join(twice)} in more than one fold; each group is tested in one fold only")
    return held


def group_of(utt: Record, group: str) -> str:
    """The ``group`` id of one record: its ``speaker``, ``dialogue`` or ``session`` field (an empty session is a DataError)."""
    if group == "speaker":
        return str(utt.speaker)
    if group == "dialogue":
        return str(utt.dialogue)
    if group == "session":
        if not utt.session:
            raise DataError(
                f"--folds session: utterance {utt.uid!r} (speaker {utt.speaker!r}, dialogue {utt.dialogue!r}) has no session; "
                f"{_SESSION_SOURCES}; or use --folds speaker:K or dialogue:K"
            )
        return utt.session
    raise ConfigError(f"--folds: unknown group {group!r}; choose from {', '.join(GROUPS)}")


def make_folds(utterances: Sequence[Record], spec: FoldSpec, seed: int) -> list[Fold]:
    """Split the groups of ``utterances`` into ``spec.k`` folds balanced by utterance count (the module's rule),
    or into ``spec.held``'s folds in the order given.

    Fewer groups than folds, or explicit folds naming a group the data lacks or leaving one out,
    is a :class:`DataError`.
    """
    sizes = Counter(group_of(u, spec.group) for u in utterances)
    if spec.held is not None:
        return _explicit_folds(sizes, spec)
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


def _explicit_folds(sizes: Counter, spec: FoldSpec) -> list[Fold]:
    """``spec.held`` as folds, after checking that they name every group of the data once and nothing else."""
    named = [g for fold in spec.held for g in fold]
    unknown = sorted(set(named) - set(sizes))
    if unknown:
        raise DataError(
            f"--folds {spec}: no utterance of the train and dev splits has {spec.group} {', '.join(map(repr, unknown))}; "
            f"the {spec.group} ids are {', '.join(sorted(sizes))}"
        )
    untested = sorted(set(sizes) - set(named))
    if untested:
        raise DataError(
            f"--folds {spec}: {spec.group} {', '.join(map(repr, untested))} in no fold; every group must be in one "
            "fold so that every utterance is tested once (add them to a fold)"
        )
    return [Fold(i, spec.group, tuple(sorted(fold)), sum(sizes[g] for g in fold)) for i, fold in enumerate(spec.held)]


def fold_splits(data: DatasetSplits, fold: Fold, dev_fraction: float, seed: int) -> DatasetSplits:
    """``data``'s train and dev re-cut for ``fold``: test is the fold's groups, dev a seeded carve of the others' dialogues.

    ``data.test`` is dropped.
    """
    held = set(fold.groups)
    pool = [*data.train, *data.dev]
    test = [u for u in pool if group_of(u, fold.group) in held]
    rest = [u for u in pool if group_of(u, fold.group) not in held]
    dev_dialogues = set(carve_dev([u.dialogue for u in rest], dev_fraction, seed)[1])
    return replace(
        data,
        train=[u for u in rest if u.dialogue not in dev_dialogues],
        dev=[u for u in rest if u.dialogue in dev_dialogues],
        test=test,
    )


def warn_label_gaps(data: DatasetSplits, fold: Fold, test: Sequence[Record]) -> None:
    """A ``warning:`` on stderr naming each label of ``data``'s train and dev that ``fold``'s ``test`` lacks
    (that class's test F1 means nothing in this fold)."""
    missing = sorted({u.label for u in [*data.train, *data.dev]} - {u.label for u in test})
    if missing:
        names = ", ".join(data.labels[i] if 0 <= i < len(data.labels) else str(i) for i in missing)
        print(
            f"warning: --folds {fold.group}: fold {fold.index} (test {', '.join(fold.groups)}) has no utterance "
            f"labelled {names}, which other folds have",
            file=sys.stderr,
        )


@dataclass(frozen=True)
class FoldRun:
    """What a fold run directory's ``fold.json`` records: the protocol, the fold, its dev carve and split sizes."""

    protocol: str  # str(FoldSpec), e.g. "speaker:5"
    fold: Fold
    seed: int  # the seed that cut the folds and carved dev (a --seeds run's own seed varies only training)
    dev_fraction: float
    sizes: dict[str, int]  # utterances in train, dev and test
    split_groups: dict[str, list[str]]  # the groups in train, dev and test

    @classmethod
    def of(cls, spec: FoldSpec, fold: Fold, split: DatasetSplits, seed: int, dev_fraction: float) -> "FoldRun":
        """The record of ``fold``, whose splits are ``split`` (as :func:`fold_splits` cut them)."""
        names = ("train", "dev", "test")
        return cls(
            str(spec), fold, seed, dev_fraction,
            sizes={n: len(split.split(n)) for n in names},
            split_groups={n: sorted({group_of(u, fold.group) for u in split.split(n)}) for n in names},
        )

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "index": self.fold.index,
            "group": self.fold.group,
            "groups": list(self.fold.groups),
            "seed": self.seed,
            "dev_fraction": self.dev_fraction,
            "sizes": self.sizes,
            "split_groups": self.split_groups,
        }

    @classmethod
    def from_dict(cls, info: dict, source: str) -> "FoldRun":
        try:
            groups = tuple(info["groups"])
            fold = Fold(int(info["index"]), str(info["group"]), groups, int(info["sizes"]["test"]))
            return cls(str(info["protocol"]), fold, int(info["seed"]), float(info["dev_fraction"]),
                       dict(info["sizes"]), dict(info["split_groups"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: not a sync_tva fold description (missing or bad {exc})") from None

    def splits(self, data: DatasetSplits) -> DatasetSplits:
        """The fold's splits cut again from ``data`` (the source's train and dev); a size that differs from
        the recorded one is a :class:`DataError` (the source changed since the run)."""
        split = fold_splits(data, self.fold, self.dev_fraction, self.seed)
        found = {n: len(split.split(n)) for n in self.sizes}
        if found != self.sizes:
            raise DataError(
                f"--folds {self.protocol}: fold {self.fold.index} held {self.sizes} utterances when it ran, the data "
                f"now gives {found}; the source's train or dev changed since"
            )
        return _fold_named(split, data.name, self.fold)


def _fold_named(split: DatasetSplits, source: str, fold: Fold) -> DatasetSplits:
    """``split`` named after its source and fold (``meld-fold2``), so its notes and runs say which fold they read."""
    return replace(split, name=f"{source}-fold{fold.index}")


def cut_folds(data: DatasetSplits, spec: FoldSpec, seed: int, dev_fraction: float) -> list[tuple[FoldRun, DatasetSplits]]:
    """Every fold of ``spec`` over ``data``'s train and dev (:func:`make_folds`) with its record and its splits
    (:func:`fold_splits`): what ``run --folds`` trains on, and what the benchmarks cut."""
    out = []
    for fold in make_folds([*data.train, *data.dev], spec, seed):
        split = fold_splits(data, fold, dev_fraction, seed)
        out.append((FoldRun.of(spec, fold, split, seed, dev_fraction), _fold_named(split, data.name, fold)))
    return out


def read_fold_run(run_dir: str | Path) -> FoldRun | None:
    """The fold that ``run_dir`` trained on (its ``fold.json``), or ``None`` for a run that is no fold."""
    path = Path(run_dir) / FOLD_JSON
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    return FoldRun.from_dict(info, str(path))
