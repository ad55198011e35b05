"""Training killed with SIGKILL (mid-epoch, inside checkpoint and metrics writes) and resumed ends as an unbroken run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY

from sync_tva.io import CRASH_ENV
from sync_tva.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "sync_tva.run", *TINY, "train.epochs=4", "train.num_threads=1"]
HANG_GUARD_S = 600

pytestmark = pytest.mark.slow


def train(out: Path, crash: str | None = None) -> subprocess.CompletedProcess:
    """One ``sync_tva.run`` into ``out``; ``crash`` ("NAME:K") kills it inside the K-th write of NAME."""
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV} | ({CRASH_ENV: crash} if crash else {})
    return subprocess.run([*RUN, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S)


def results(out: Path) -> tuple[dict, list]:
    return json.loads((out / "metrics.json").read_text()), json.loads((out / "history.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, list]:
    out = tmp_path_factory.mktemp("fault") / "unbroken"
    done = train(out)
    assert done.returncode == 0, done.stderr
    return results(out)


def test_killed_inside_writes_and_resumed_matches_an_unbroken_run(reference, tmp_path):
    out = tmp_path / "run"
    # Each crash happens later than the last: the first best.pt (epoch 1), the second last.pt
    # (epoch 2, resumed from epoch 1's), then metrics.json after training has finished.
    for crash, left in (("best.pt:1", None), ("last.pt:2", 1), ("metrics.json:1", 4)):
        died = train(out, crash)
        assert died.returncode == -signal.SIGKILL, f"{crash}: the crash point was never reached\n{died.stderr}"
        assert list((out / "checkpoints").glob(f".{crash.split(':')[0]}.*.tmp")) or crash.startswith("metrics")
        if left is not None:  # the file being replaced is still the previous, whole one
            assert load_checkpoint(out / "checkpoints" / "last.pt")["state"]["epoch"] == left
        assert not (out / "metrics.json").exists()
    done = train(out)
    assert done.returncode == 0, done.stderr
    assert results(out) == reference


def test_killed_mid_epoch_and_resumed_matches_an_unbroken_run(reference, tmp_path):
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    proc = subprocess.Popen([*RUN, "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + HANG_GUARD_S
    while not (out / "checkpoints" / "last.pt").exists():  # epoch 1 done: the kill lands in a later epoch
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (out / "metrics.json").exists()
    done = train(out)
    assert done.returncode == 0, done.stderr
    assert "resumed from" in done.stderr + done.stdout
    assert results(out) == reference
