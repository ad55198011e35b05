"""``benchmarks/av_emotion.py --select``: the inner folds that choose settings never read a fold's test speakers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sync_tva.data.folds import FoldSpec, cut_folds
from sync_tva.records import DatasetSplits, Utterance

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from av_emotion import inner_folds  # noqa: E402  (a script folder, not a package)

SPEAKERS = ("f1", "f2", "f3", "m1", "m2", "m3")


def clips() -> list[Utterance]:
    """Four sentences (dialogues) by six speakers, three emotions each: Java-SED's shape, smaller."""
    return [
        Utterance(uid=f"{s}-{d}-{e}", dialogue=f"sentence{d}", speaker=s, label=e, features={"audio": np.zeros((2, 3), np.float32)})
        for s in SPEAKERS
        for d in range(4)
        for e in range(3)
    ]


def test_inner_folds_hold_out_each_training_speaker_once_and_never_read_test_speakers(capsys):
    data = DatasetSplits(name="clips", train=clips(), dev=[], test=[], labels=("a", "b", "c"))
    pairs = (("f1", "m1"), ("f2", "m2"), ("f3", "m3"))
    (record, fold), *_ = cut_folds(data, FoldSpec("speaker", None, pairs), seed=0, dev_fraction=0.25)
    assert sorted(record.split_groups["test"]) == ["f1", "m1"]
    inner = inner_folds(fold, seed=0, dev_fraction=0.25)
    training = sorted({u.speaker for u in [*fold.train, *fold.dev]})
    assert training == ["f2", "f3", "m2", "m3"]
    assert sorted(next(iter({u.speaker for u in split.test})) for _, split in inner) == training  # each held out once
    for record, split in inner:
        assert record.split_groups["test"] == sorted({u.speaker for u in split.test})  # the record names what is scored
        held_out = {u.speaker for u in split.test}
        seen = {u.speaker for u in [*split.train, *split.dev]}
        assert len(held_out) == 1 and not held_out & seen
        assert seen | held_out == set(training)  # the fold's test speakers f1, m1 appear nowhere
        assert len(split.train) + len(split.dev) + len(split.test) == len(fold.train) + len(fold.dev)
        assert split.dev and {u.dialogue for u in split.dev}.isdisjoint({u.dialogue for u in split.train})
    printed = capsys.readouterr().out
    assert printed.count("inner fold: scored on speaker") == 4
