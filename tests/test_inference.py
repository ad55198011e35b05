"""``sync_tva.inference``: a run's model rebuilt from its checkpoint alone, and data read only on request."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY

from sync_tva import run
from sync_tva.errors import CheckpointError
from sync_tva.inference import load_model, load_run, predict
from sync_tva.io import load_torch, save_torch
from sync_tva.testing import FAST, make_meld_tree
from sync_tva.viz import __main__ as viz_command

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("inference") / "demo"
    assert run.main(["--out", str(out), *TINY, "train.epochs=1", "train.num_threads=1"]) == 0  # any trained weights do
    return out


def test_load_model_predicts_what_the_run_evaluated(demo_run):
    trained = load_model(demo_run)
    assert trained.labels == tuple(load_run(demo_run).data.labels)
    assert not trained.model.training
    test = trained.load_split("test")
    again = load_run(demo_run)  # the full experiment, data included
    ours, theirs = predict(trained, test), predict(again, again.data.test)
    assert ours.uids == theirs.uids and torch.equal(ours.probs, theirs.probs)
    metrics = json.loads((demo_run / "metrics.json").read_text())["test"]
    accuracy = sum(p == t for p, t in zip(ours.y_pred, ours.y_true)) / len(ours.y_true)
    assert accuracy == pytest.approx(metrics["accuracy"])


def test_a_checkpoint_without_the_schema_is_refused(demo_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(demo_run, copy)
    path = copy / "checkpoints" / "best.pt"
    ckpt = load_torch(path)
    del ckpt["schema"]
    save_torch(path, ckpt)
    with pytest.raises(CheckpointError, match=r"best.pt: checkpoint lacks \['schema'\]"):
        load_model(copy)
    with pytest.raises(CheckpointError, match="not a finished run"):
        load_model(tmp_path / "nothing")


@pytest.mark.slow  # end to end: extraction, a training and drawings
def test_viz_works_after_the_training_data_has_moved_away(tmp_path, text_model):
    meld = make_meld_tree(tmp_path / "meld", per_split=8)
    for clips in ("train_splits", "dev_splits_complete", "output_repeated_splits_test"):
        shutil.rmtree(meld / clips)  # a text-only run
    out = tmp_path / "run"
    args = ["--config", str(ROOT / "configs" / "meld.yaml"), "--out", str(out), f"data.root={meld}",
            f"features.text.model={text_model}", f"features.store={tmp_path / 'store'}", "model.modalities=[text]",
            *FAST, *TINY[3:], "train.epochs=1", "train.num_threads=1"]
    assert run.main(args) == 0
    (meld / "train_sent_emo.csv").rename(tmp_path / "moved_train.csv")
    (meld / "dev_sent_emo.csv").rename(tmp_path / "moved_dev.csv")
    drawn = tmp_path / "drawn"
    assert viz_command.main(["--run", str(out), "--out", str(drawn), "--n", "2"]) == 0
    assert len(list(drawn.glob("*.graphml"))) == 2
    assert len(load_model(out).load_split("test")) == 8
