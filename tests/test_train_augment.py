"""Modality dropout: which utterances lose which modality, reproducibly, and training with it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from sync_tva.records import Utterance
from sync_tva.train import build_experiment, train_one_epoch
from sync_tva.train.augment import drop_modalities


def utterances(n: int) -> list[Utterance]:
    rng = np.random.default_rng(0)
    feats = lambda: {"text": rng.normal(size=(3, 4)), "audio": rng.normal(size=(2, 5)), "visual": rng.normal(size=(4, 6))}  # noqa: E731
    out = [Utterance(f"u{i}", f"d{i}", "s", i % 3, feats()) for i in range(n)]
    out[0] = replace(out[0], features={"text": out[0].features["text"], "audio": np.zeros((0, 5)), "visual": np.zeros((0, 6))})
    return out


def test_a_share_of_utterances_loses_exactly_one_present_modality_never_the_last():
    utts = utterances(400)
    dropped = drop_modalities(utts, 0.5, seed=3)
    assert dropped[0] is utts[0]  # one present modality: kept whole
    lost = []
    for before, after in zip(utts[1:], dropped[1:]):
        gone = [m for m in before.features if len(before.features[m]) and not len(after.features[m])]
        assert len(gone) <= 1 and after.label == before.label and after.uid == before.uid
        assert all(after.features[m].shape[1] == before.features[m].shape[1] for m in before.features)
        lost += gone
    assert 0.4 < len(lost) / 399 < 0.6 and set(lost) == {"text", "audio", "visual"}
    again = drop_modalities(utts, 0.5, seed=3)
    assert [{m: len(v) for m, v in u.features.items()} for u in again] == [{m: len(v) for m, v in u.features.items()} for u in dropped]
    assert len(utts[1].features["audio"]) == 2  # the inputs are untouched


def test_training_with_modality_dropout_runs_and_is_seeded(tiny_cfg):
    cfg = replace(tiny_cfg, train=replace(tiny_cfg.train, modality_dropout=0.5))
    losses = []
    for _ in range(2):
        exp = build_experiment(cfg)
        optimizer = torch.optim.AdamW(exp.model.parameters(), lr=cfg.train.lr)
        losses.append(train_one_epoch(exp, nn.CrossEntropyLoss(), optimizer, 1))
    plain = build_experiment(tiny_cfg)
    optimizer = torch.optim.AdamW(plain.model.parameters(), lr=cfg.train.lr)
    assert losses[0] == losses[1] and np.isfinite(losses[0])
    assert losses[0] != train_one_epoch(plain, nn.CrossEntropyLoss(), optimizer, 1)
