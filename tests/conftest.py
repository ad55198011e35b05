"""Shared fixtures: tiny configs and data so every core test runs in seconds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sync_tva.config import Config, load_config

TINY = [
    "data.demo.n_dialogues=24",
    "data.demo.min_turns=4",
    "data.demo.max_turns=6",
    "model.hidden=16",
    "model.heads=2",
    "train.epochs=2",
    "train.batch_size=16",
]


@pytest.fixture
def tiny_cfg() -> Config:
    """The demo config shrunk to a few dozen utterances and a 16-wide model."""
    return load_config(None, TINY)


def random_features(rng: np.random.Generator, counts: dict[str, int], dims: dict[str, int]) -> dict[str, np.ndarray]:
    """``{modality: float32 [counts[m], dims[m]]}`` of Gaussian noise."""
    return {m: rng.normal(size=(n, dims[m])).astype(np.float32) for m, n in counts.items()}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def run_command(out: Path, *args: str) -> Path:
    """``python -m sync_tva.run --out OUT ARGS`` as a user runs it; fails the test with the end of stderr unless it succeeds."""
    done = subprocess.run([sys.executable, "-m", "sync_tva.run", "--out", str(out), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out
