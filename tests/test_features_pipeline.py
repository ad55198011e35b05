"""``features/pipeline.py``: extraction in chunks that are stored as they finish, one fingerprint whatever
the thread count, a bare column template that reaches the clips, and a store path checked before any work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sync_tva.cli import extract as extract_command
from sync_tva.config import load_config
from sync_tva.errors import ConfigError
from sync_tva.features.base import Extractor, NodeFeatures
from sync_tva.features.pipeline import extract, open_store
from sync_tva.features.store import FeatureStore
from sync_tva.records import RawSplits, RawUtterance
from sync_tva.testing import FAST, make_clip_csv

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["model.hidden=16", "model.heads=2", "train.epochs=1", "train.batch_size=16", "features.progress=false"]


class Counting(Extractor):
    """A text extractor of one zero node per utterance that records each batch's size and can die on a given call."""

    modality, dim = "text", 2

    def __init__(self, die_on_call: int | None = None) -> None:
        self.sizes: list[int] = []
        self.die_on_call = die_on_call

    def describe(self) -> dict:
        return {"name": "counting"}

    def extract(self, utts: list[RawUtterance]) -> list[NodeFeatures]:
        if len(self.sizes) + 1 == self.die_on_call:
            raise KeyboardInterrupt  # as a user's Ctrl-C mid-chunk
        self.sizes.append(len(utts))
        return [NodeFeatures(np.zeros((1, self.dim), np.float32)) for _ in utts]


def test_the_default_chunk_bounds_each_extractor_call_and_a_kill_loses_at_most_that_chunk(tmp_path):
    chunk = load_config().features.chunk
    utts = [RawUtterance(f"u{i}", f"d{i // 4}", "s", 0, "hi") for i in range(2 * chunk + 1)]
    raw, store = RawSplits("toy", ("a",), utts, [], []), FeatureStore(tmp_path)
    killed = Counting(die_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        extract(raw, [killed], store, chunk=chunk, progress=False)
    assert killed.sizes == [chunk, chunk]
    assert sum(store.has("toy", "train", f"text-{killed.fingerprint}", u.uid) for u in utts) == 2 * chunk  # stored as done
    again = Counting()
    report = extract(raw, [again], store, chunk=chunk, progress=False)
    assert again.sizes == [1] and report.to_dict() == {"extracted": 1, "cached": 2 * chunk, "failed": 0}


def test_a_store_at_or_under_a_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "taken").write_text("x")
    for store in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        with pytest.raises(ConfigError, match=rf"features.store={store}: {tmp_path / 'taken'} is a file"):
            open_store(load_config(None, [f"features.store={store}"]))


def test_bare_column_template_as_media_override_reaches_the_clips(text_model, tmp_path, capsys):
    data = make_clip_csv(tmp_path / "data", rows=4)
    argv = ["data.name=csv", f"data.root={data}", "data.train=train.csv", "data.test=test.csv", "data.media={Clip}",
            "data.dev_fraction=0.5", "model.modalities=[text,visual]", f"features.text.model={text_model}",
            f"features.store={tmp_path / 'store'}", *FAST]
    assert extract_command.main(argv) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"extracted": 8, "cached": 0, "failed": 0}
    assert len(list((tmp_path / "store").glob("csv-*/*/visual-*/*.npz"))) == 8


@pytest.mark.slow  # three interpreters: an extraction and two trainings
def test_extract_then_run_at_other_thread_counts_recomputes_nothing(text_model, tmp_path):
    data = make_clip_csv(tmp_path / "data")
    common = ["data.name=csv", f"data.root={data}", "data.train=train.csv", "data.test=test.csv", "data.media={Clip}",
              "data.dev_fraction=0.5", f"features.text.model={text_model}", f"features.store={tmp_path / 'store'}", *FAST]
    done = subprocess.run([sys.executable, "-m", "sync_tva.extract", *common], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"extracted": 16, "cached": 0, "failed": 0}
    for threads in (1, 2):
        cmd = [sys.executable, "-m", "sync_tva.run", *common[:3], "--out", str(tmp_path / f"run{threads}"),
               *common[3:], *SMALL, f"train.num_threads={threads}"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert "0 extracted, 16 cached, 0 failed" in done.stderr
    assert len({p.name for p in (tmp_path / "store").glob("csv-*/*/visual-*")}) == 1  # one fingerprint, every split
