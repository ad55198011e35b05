import copy

import pytest
from conftest import TINY

from sync_tva.config import RESULT_NEUTRAL_KEYS, Config, config_to_dict, load_config
from sync_tva.train import build_experiment, fit
from sync_tva.train.checkpoint import _config_differences
from sync_tva.train.logging import RunLogger


def run(tmp, overrides):
    exp = build_experiment(load_config(None, TINY + overrides))
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
