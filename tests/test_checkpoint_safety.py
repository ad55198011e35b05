"""Checkpoints load with ``weights_only=True``: tensors and plain values load, code payloads are refused."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from sync_tva.errors import CheckpointError
from sync_tva.io import load_torch
from sync_tva.train.checkpoint import CHECKPOINT_VERSION, TrainState, load_checkpoint, save_checkpoint


class Payload:
    """Unpickles as ``os.system(command)``."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _hostile_checkpoint(path: Path, marker: Path) -> Path:
    """A file shaped like a checkpoint whose config hides a payload that creates ``marker``."""
    torch.save(
        {"version": CHECKPOINT_VERSION, "model": {"w": torch.zeros(2)}, "config": Payload(f"touch {marker}")},
        path,
    )
    return path


def test_payload_is_live_under_unrestricted_torch_load(tmp_path):
    """Control: without weights_only the payload runs, so the refusal test below can fail."""
    marker = tmp_path / "control"
    torch.load(_hostile_checkpoint(tmp_path / "c.pt", marker), weights_only=False)
    assert marker.exists()


def test_checkpoint_with_code_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = _hostile_checkpoint(tmp_path / "best.pt", marker)
    with pytest.raises(CheckpointError, match=rf"{path}: not a sync_tva checkpoint that loads safely"):
        load_checkpoint(path)
    assert not marker.exists()


def test_real_checkpoint_round_trips(tmp_path):
    model = torch.nn.Linear(3, 2)
    state = TrainState(epoch=4, best_metric=0.5, best_epoch=3, history=[{"epoch": 1, "train_loss": 0.9}])
    save_checkpoint(
        tmp_path / "last.pt",
        model,
        torch.optim.AdamW(model.parameters()),
        state,
        {"seed": 0},
        {"labels": ["a", "b"]},
    )
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert torch.equal(ckpt["model"]["weight"], model.weight.detach())
    assert ckpt["state"]["best_epoch"] == 3 and ckpt["labels"] == ["a", "b"] and ckpt["config"] == {"seed": 0}


def test_plain_pickle_and_wrong_version_are_refused(tmp_path):
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"version": CHECKPOINT_VERSION}))
    with pytest.raises(CheckpointError, match="loads safely"):
        load_torch(plain)
    old = tmp_path / "old.pt"
    torch.save({"version": CHECKPOINT_VERSION + 1, "model": {}}, old)
    with pytest.raises(CheckpointError, match=f"not a sync_tva checkpoint of version {CHECKPOINT_VERSION}"):
        load_checkpoint(old)
