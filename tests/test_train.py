import pytest
import torch
from conftest import TINY, fit_run

from sync_tva.config import load_config
from sync_tva.errors import CheckpointError, DataError
from sync_tva.features import load_dataset
from sync_tva.inference import load_run
from sync_tva.train import build_experiment, load_checkpoint


def test_checkpoints_hold_everything(tmp_path):
    exp, state = fit_run(tmp_path, [])
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert {"model", "optimizer", "state", "config", "rng", "labels", "in_dims"} <= set(last)
    assert last["state"]["epoch"] == 2 == state.epoch
    assert last["config"]["model"]["hidden"] == 16
    assert (tmp_path / "checkpoints" / "best.pt").is_file()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_same_seed_same_training(tmp_path):
    _, a = fit_run(tmp_path / "a", [])
    _, b = fit_run(tmp_path / "b", [])
    _, c = fit_run(tmp_path / "c", ["seed=1"])
    assert a.history == b.history
    assert a.history != c.history


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    full_exp, full = fit_run(tmp_path / "full", ["train.epochs=3"])
    fit_run(tmp_path / "cut", ["train.epochs=1"])  # "interrupted" after one epoch
    resumed_exp, resumed = fit_run(tmp_path / "cut", ["train.epochs=3"])
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history == full.history
    for (name, p), q in zip(full_exp.model.state_dict().items(), resumed_exp.model.state_dict().values()):
        assert torch.equal(p, q), name


def test_resume_with_other_config_is_refused_and_keeps_the_run(tmp_path):
    fit_run(tmp_path, [])
    before = (tmp_path / "config.yaml").read_text()
    with pytest.raises(CheckpointError, match=r"another config \(model\.hidden: 16 -> 32\).*train\.resume=false"):
        fit_run(tmp_path, ["model.hidden=32"])
    assert (tmp_path / "config.yaml").read_text() == before
    assert load_run(tmp_path).cfg.model.hidden == 16


def test_early_stopping_stops(tmp_path):
    _, state = fit_run(tmp_path, ["train.epochs=30", "train.patience=1", "train.lr=1e-12"])
    assert state.epoch < 30 and state.stale_epochs == 1


def test_load_run_rebuilds_the_best_model(tmp_path):
    exp, _ = fit_run(tmp_path, [])
    assert load_config(tmp_path / "config.yaml") == exp.cfg
    again = load_run(tmp_path)
    for p, q in zip(exp.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(p, q)
    with pytest.raises(CheckpointError, match="not a finished run"):
        load_run(tmp_path / "nothing")


def test_feature_width_mismatch_names_the_utterance():
    cfg = load_config(None, TINY)
    data = load_dataset(cfg)
    bad = data.test[2]
    bad.features["audio"] = bad.features["audio"][:, :5]
    with pytest.raises(DataError, match=rf"test utterance '{bad.uid}'.*audio features are 5 wide, the training split's are 32"):
        build_experiment(cfg, data)
