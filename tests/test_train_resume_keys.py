"""Which config changes a resumed run accepts: result-neutral keys only, compared as the current schema writes configs."""

import copy
import json
from pathlib import Path

import pytest
from conftest import TINY

from sync_tva.config import RESULT_NEUTRAL_KEYS, Config, config_to_dict, load_config
from sync_tva.errors import CheckpointError
from sync_tva.io import load_torch, save_torch
from sync_tva.train import build_experiment, fit
from sync_tva.train.checkpoint import _config_differences
from sync_tva.train.logging import RunLogger


def run(tmp, overrides, base=TINY):
    exp = build_experiment(load_config(None, base + overrides))
    logger = RunLogger(tmp)
    state = fit(exp, tmp, logger)
    logger.close()
    return state


def test_toggling_progress_does_not_refuse_the_resume(tmp_path):
    run(tmp_path, ["train.epochs=1", "features.progress=true"])  # "interrupted" after one epoch
    resumed = run(tmp_path, ["train.epochs=2", "features.progress=false"])
    assert [h["epoch"] for h in resumed.history] == [1, 2]


@pytest.mark.parametrize("key", sorted(RESULT_NEUTRAL_KEYS))
def test_only_result_neutral_keys_are_ignored_on_resume(key):
    old = config_to_dict(Config())
    new = copy.deepcopy(old)
    section, name = key.split(".")
    new[section][name] = "changed"
    assert _config_differences(old, new) == []
    new["model"]["hidden"] = 32
    assert _config_differences(old, new) == ["model.hidden: 64 -> 32"]


# TINY less model.heads: the recorded config below is this setting as written before config
# sections were chosen by name (every source's data keys, model.context on the plain model, no
# model.heads), by config_to_dict at commit cee65b0^.
BEFORE_SECTIONS = Path(__file__).parent / "fixtures" / "config_before_sections.json"
TINY_DEFAULT_HEADS = [o for o in TINY if not o.startswith("model.heads=")]


@pytest.mark.filterwarnings("error::FutureWarning")  # the checkpoint's old spellings are not the user's to fix
def test_a_run_started_before_config_sections_by_name_resumes(tmp_path):
    old = json.loads(BEFORE_SECTIONS.read_text())
    assert _config_differences(old, config_to_dict(load_config(None, TINY_DEFAULT_HEADS)))  # the raw dicts do differ
    run(tmp_path, ["train.epochs=1"], base=TINY_DEFAULT_HEADS)
    last = tmp_path / "checkpoints" / "last.pt"
    save_torch(last, load_torch(last) | {"config": old})  # as that run wrote it
    resumed = run(tmp_path, ["train.epochs=2"], base=TINY_DEFAULT_HEADS)
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def test_a_changed_setting_is_still_refused_after_normalising(tmp_path):
    run(tmp_path, ["train.epochs=1"])
    with pytest.raises(CheckpointError, match="model.hidden: 16 -> 8"):
        run(tmp_path, ["train.epochs=2", "model.hidden=8"])
