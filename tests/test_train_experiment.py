"""``train/experiment.py``: what ``build_experiment`` checks and sets before any training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY

from sync_tva.config import load_config
from sync_tva.errors import DataError
from sync_tva.records import DatasetSplits, Utterance
from sync_tva.train import build_experiment


def featured(n_train: int, empty_visual: int, labels: tuple[str, ...] = ("a", "b", "c")) -> DatasetSplits:
    """Random features for 3 modalities; the first ``empty_visual`` training utterances have no visual node."""
    rng = np.random.default_rng(0)

    def utt(split: str, i: int, empty: bool) -> Utterance:
        feats = {"text": rng.normal(size=(3, 6)).astype(np.float32), "audio": rng.normal(size=(2, 4)).astype(np.float32),
                 "visual": rng.normal(size=(0 if empty else 2, 5)).astype(np.float32)}
        return Utterance(f"{split}{i}", f"d{i // 2}", "s", i % 2, feats)  # labels 0 and 1 only

    splits = {s: [utt(s, i, s == "train" and i < empty_visual) for i in range(n)]
              for s, n in (("train", n_train), ("dev", 4), ("test", 4))}
    return DatasetSplits(name="toy", labels=labels, **splits)


def test_a_modality_missing_from_most_utterances_is_an_error_naming_the_fix(tiny_cfg):
    with pytest.raises(DataError, match=r"visual in 70%.*set model.modalities=\[text,audio\]"):
        build_experiment(tiny_cfg, featured(10, 7))


def test_a_modality_missing_from_a_few_is_a_counted_warning_and_unseen_labels_are_named(tiny_cfg, capsys):
    build_experiment(tiny_cfg, featured(10, 2))
    err = capsys.readouterr().err
    assert "2 of 10 train, 0 of 4 dev, 0 of 4 test utterances have no visual nodes" in err
    assert "labels ['c'] have no training example" in err
    assert "no text nodes" not in err and "no audio nodes" not in err


def test_training_runs_on_one_cpu_thread_by_default_and_zero_leaves_torchs_choice(tiny_cfg):
    """A busy shared CPU trains many times slower with threads waiting on each other; the default config sets one."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        build_experiment(tiny_cfg)
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        build_experiment(load_config(None, [*TINY, "train.num_threads=0"]))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
