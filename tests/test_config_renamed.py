"""Old spellings of renamed keys, values and config files load with a FutureWarning naming the new one."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from conftest import TINY, fit_run

from sync_tva.config import ConfigError, load_config
from sync_tva.inference import load_model
from sync_tva.io import load_torch, save_torch
from sync_tva.models import SyncTVADialogue

CONFIGS = Path(__file__).parents[1] / "configs"
DIALOGUE = ["model.name=sync_tva_dialogue", "model.dialogue.heads=2", "train.num_threads=1"]


def test_the_context_model_spelling_is_the_dialogue_model():
    with pytest.warns(FutureWarning) as caught:
        cfg = load_config(None, ["model.name=sync_tva_context", "model.context.past=3", "model.context.heads=2"])
    assert cfg.model.name == "sync_tva_dialogue" and (cfg.model.dialogue.past, cfg.model.dialogue.heads) == (3, 2)
    said = " ".join(str(w.message) for w in caught)
    assert "model.context.past is deprecated; it sets model.dialogue.past" in said
    assert "model.name=sync_tva_context is deprecated; it is model.name=sync_tva_dialogue" in said


def test_an_old_override_overrides_a_new_file():
    with pytest.warns(FutureWarning, match="model.context.past is deprecated"):
        cfg = load_config(CONFIGS / "demo_dialogue.yaml", ["model.context.past=3"])
    assert (cfg.model.dialogue.past, cfg.model.dialogue.layers) == (3, 1)  # the file's other keys kept


def test_an_old_key_beside_its_new_one_must_agree_with_it(tmp_path):
    both = tmp_path / "both.yaml"
    both.write_text("model:\n  name: sync_tva_dialogue\n  context: {past: 3}\n  dialogue: {past: 2}\n")
    with pytest.raises(ConfigError, match=r"both\.yaml: model\.context\.past=3 and model\.dialogue\.past=2 disagree"):
        load_config(both)
    both.write_text("model:\n  name: sync_tva_dialogue\n  context: {past: 3}\n  dialogue: {past: 3}\n")
    assert load_config(both).model.dialogue.past == 3  # as configs written before the rename carried both
    with pytest.raises(ConfigError, match=r"model\.context\.past=3 and model\.dialogue\.past=2 disagree"):
        load_config(None, ["model.name=sync_tva_dialogue", "model.context.past=3", "model.dialogue.past=2"])


def test_the_demo_context_key_is_its_cueless_share():
    with pytest.warns(FutureWarning, match="data.demo.context is deprecated; it sets data.demo.cueless_share"):
        cfg = load_config(None, ["data.demo.context=0.5"])
    assert cfg.data.demo.cueless_share == 0.5


def test_new_spellings_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        load_config(CONFIGS / "demo_dialogue.yaml", ["model.dialogue.past=3", "data.demo.cueless_share=0.5"])


@pytest.mark.parametrize("name", ["demo", "meld", "iemocap", "iemocap_pickle", "meld_pickle"])
def test_an_old_config_file_name_reads_the_renamed_file(name):
    with pytest.warns(FutureWarning, match=f"{name}_context.yaml was renamed to .*{name}_dialogue.yaml"):
        old = load_config(CONFIGS / f"{name}_context.yaml")
    assert old == load_config(CONFIGS / f"{name}_dialogue.yaml")


def test_an_old_base_file_name_reads_the_renamed_file(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"base: {CONFIGS / 'demo_context.yaml'}\ntrain:\n  epochs: 2\n")
    with pytest.warns(FutureWarning, match="was renamed"):
        cfg = load_config(mine)
    assert cfg.model.name == "sync_tva_dialogue" and cfg.train.epochs == 2


def test_a_missing_file_is_still_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nothing_context.yaml")


def _as_an_earlier_version_wrote_it(ckpt: dict) -> dict:
    """The checkpoint with the dialogue model's old spellings: model name, config section and model part."""
    model = dict(ckpt["config"]["model"])
    model["name"] = "sync_tva_context"
    model["context"] = model.pop("dialogue")
    parts = {"context_schema": ckpt["model_parts"]["dialogue_schema"]}
    return ckpt | {"config": ckpt["config"] | {"model": model}, "model_parts": parts}


@pytest.fixture
def one_thread():
    """train.num_threads=1 sets torch's threads; give the next test back the count it had."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_checkpoint_of_the_context_model_loads_and_resumes(tmp_path, one_thread):
    exp, _ = fit_run(tmp_path, [*DIALOGUE, "train.epochs=1"], base=TINY)
    for name in ("best", "last"):
        path = tmp_path / "checkpoints" / f"{name}.pt"
        save_torch(path, _as_an_earlier_version_wrote_it(load_torch(path)))
    with pytest.warns(FutureWarning) as caught:
        trained = load_model(tmp_path)
    assert {"model.context is deprecated", "sync_tva_context is deprecated"} <= {
        said for w in caught for said in ("model.context is deprecated", "sync_tva_context is deprecated") if said in str(w.message)
    }
    assert isinstance(trained.model, SyncTVADialogue) and trained.cfg.model.dialogue.heads == 2
    assert trained.model.dialogue_schema.relations == exp.model.dialogue_schema.relations
    _, state = fit_run(tmp_path, [*DIALOGUE, "train.epochs=2"], base=TINY)  # the same config, resumed (silently)
    assert [h["epoch"] for h in state.history] == [1, 2]
