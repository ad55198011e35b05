"""Sections chosen by name (sync_tva/config/owners.py): a key of another data source or model, one head count, derived fields."""

import copy
import dataclasses
import warnings

import pytest

from sync_tva.config import Config, DataConfig, ModelConfig, config_from_dict, config_to_dict, load_config
from sync_tva.config.owners import owners_of
from sync_tva.data import list_datasets
from sync_tva.errors import ConfigError
from sync_tva.models import list_models
from sync_tva.run import main

BLOCK_HEADS = ("msde_heads", "gat_heads", "caf_heads")


@pytest.mark.parametrize(
    "overrides, owner",
    [
        (["data.name=csv", "data.layout=iemocap"], "data.name=features_pickle"),
        (["model.context.past=3"], "model.name=sync_tva_context"),
    ],
    ids=["data.layout on csv", "model.context.past on sync_tva"],
)
def test_run_refuses_a_key_of_another_source_or_model(tmp_path, capsys, overrides, owner):
    out = tmp_path / "run"
    assert main(["--out", str(out), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: overrides: ") and err.count("\n") == 1, err
    key, value = overrides[-1].split("=")
    assert f"{key}: {int(value) if value.isdigit() else repr(value)} is a key of {owner};" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "key, value, owners",
    [
        ("data.root", "/d", {"csv", "meld", "iemocap"}),
        ("data.train", "t.csv", {"csv"}),
        ("data.dev", "d.csv", {"csv"}),
        ("data.test", "t.csv", {"csv"}),
        ("data.columns.text", "said", {"csv", "meld"}),
        ("data.other_labels", "drop", {"csv", "meld", "iemocap"}),
        ("data.media", "{Clip}.mp4", {"csv"}),
        ("data.path", "f.pkl", {"features_pickle"}),
        ("data.layout", "iemocap", {"features_pickle"}),
        ("data.test_sessions", "[1]", {"iemocap"}),
        ("data.demo.n_dialogues", "12", {"demo"}),
    ],
)
def test_a_data_key_is_read_by_its_sources_only(key, value, owners):
    for name in list_datasets():
        overrides = [f"data.name={name}", f"{key}={value}"]
        if name in owners:
            load_config(None, overrides)
        else:
            with pytest.raises(ConfigError, match=rf"{key}: .* is a key of data\.name=.*; data\.name={name} does not read it"):
                load_config(None, overrides)


@pytest.mark.parametrize("name", ["demo", "csv", "meld", "iemocap", "features_pickle", "sync_tva", "sync_tva_context"])
def test_keys_shared_by_every_source_and_model_stay_allowed(name):
    section = "data" if name in list_datasets() else "model"
    shared = ["data.labels=[a,b]", "data.dev_fraction=0.2", "model.hidden=32", "model.heads=2", "model.caf=false"]
    cfg = load_config(None, [f"{section}.name={name}", *shared])
    assert (cfg.data.labels, cfg.data.dev_fraction, cfg.model.hidden, cfg.model.caf) == (["a", "b"], 0.2, 32, False)


def test_every_owner_is_a_registered_name():
    sections = {"data": (DataConfig, list_datasets()), "model": (ModelConfig, list_models())}
    for prefix, (cls, registered) in sections.items():
        for f in dataclasses.fields(cls):
            assert set(owners_of(f) or ()) <= set(registered), f"{prefix}.{f.name}"


def test_a_config_built_by_hand_is_checked_too():
    with pytest.raises(ConfigError, match=r"^data\.layout: 'x' is a key of data\.name=features_pickle"):
        Config(data=DataConfig(name="csv", layout="x"))


def test_the_written_config_holds_what_its_source_and_model_read():
    csv = config_to_dict(load_config(None, ["data.name=csv", "data.train=t.csv", "data.test=t.csv"]))
    assert {"train", "columns", "media"} <= set(csv["data"]) and not {"layout", "path", "demo", "test_sessions"} & set(csv["data"])
    assert "context" not in csv["model"] and "folder" not in csv["features"]["text"]["finetune"]
    context = load_config(None, ["model.name=sync_tva_context", "model.context.past=3"])
    assert config_to_dict(context)["model"]["context"]["past"] == 3
    for cfg in (load_config(None, ["data.name=csv"]), context):
        assert config_from_dict(config_to_dict(cfg), "written") == cfg


def _as_written_before(cfg: Config) -> dict:
    """``cfg`` as the previous version wrote it: every key of every source and model, no model.heads."""
    old = dataclasses.asdict(cfg)
    del old["model"]["heads"]
    return old


@pytest.mark.parametrize("overrides", [["data.name=csv"], ["data.name=features_pickle", "model.gat_heads=2"], ["model.name=sync_tva_context"]])
def test_a_config_written_by_the_previous_version_still_loads(overrides):
    cfg = load_config(None, overrides)
    old = _as_written_before(cfg)
    kept = copy.deepcopy(old)
    assert config_from_dict(old, "old checkpoint") == cfg
    assert old == kept  # the checkpoint's own mapping is left as it was


def test_a_previous_config_with_a_key_its_source_never_read_is_refused():
    old = _as_written_before(load_config(None, ["data.name=csv"]))
    old["data"]["layout"] = "iemocap"
    with pytest.raises(ConfigError, match=r"^old: data\.layout: 'iemocap' is a key of data\.name=features_pickle"):
        config_from_dict(old, "old")


def test_one_head_count_for_every_block_unless_set():
    cfg = load_config(None, ["model.name=sync_tva_context", "model.hidden=6", "model.heads=2", "model.gat_heads=3"])
    assert [getattr(cfg.model, k) for k in BLOCK_HEADS] + [cfg.model.context.heads] == [2, 3, 2, 2]
    assert config_from_dict(config_to_dict(cfg), "written") == cfg
    with pytest.raises(ConfigError, match=r"model\.msde_heads: 4 must divide model\.hidden=6 \(left unset, a block's heads are model\.heads=4\)"):
        load_config(None, ["model.hidden=6"])


def test_context_heads_must_divide_hidden_only_when_the_context_model_is_built():
    explicit = ["model.hidden=6", "model.msde_heads=3", "model.gat_heads=3", "model.caf_heads=3"]  # model.heads=4 is left to the context
    assert load_config(None, explicit).model.context.heads == 4
    with pytest.raises(ConfigError, match=r"model\.context\.heads: 4 must divide model\.hidden=6"):
        load_config(None, [*explicit, "model.name=sync_tva_context"])


def test_one_context_turns_setting_for_finetuning_and_extraction():
    cfg = load_config(None, ["features.text.context_turns=2"])
    assert cfg.features.text.finetune.context_turns == 2
    assert "context_turns" not in config_to_dict(cfg)["features"]["text"]["finetune"]
    with pytest.warns(FutureWarning, match=r"features\.text\.finetune\.context_turns is deprecated; it sets features\.text\.context_turns"):
        old_spelling = load_config(None, ["features.text.finetune.context_turns=3"])
    assert (old_spelling.features.text.context_turns, old_spelling.features.text.finetune.context_turns) == (3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # both spellings agreeing, as earlier versions wrote them: no warning
        assert load_config(None, ["features.text.finetune.context_turns=2", "features.text.context_turns=2"]) == cfg
    with pytest.raises(ConfigError, match=r"context_turns=1 and features\.text\.context_turns=2 disagree; .*keep features\.text\.context_turns"):
        load_config(None, ["features.text.finetune.context_turns=1", "features.text.context_turns=2"])


def test_the_finetuned_folder_is_set_by_the_code_not_by_a_config():
    with pytest.raises(ConfigError, match=r"features\.text\.finetune\.folder: not a setting; .*set features\.text\.model=DIR"):
        load_config(None, ["features.text.finetune.folder=/tuned"])
    assert load_config(None, ["features.text.finetune.folder=null"]) == Config()  # as earlier versions wrote it
    cfg = Config()
    text = cfg.features.text
    tuned = dataclasses.replace(text, finetune=dataclasses.replace(text.finetune, folder="/tuned"))
    run = dataclasses.replace(cfg, features=dataclasses.replace(cfg.features, text=tuned))
    assert run.features.text.finetune.folder == "/tuned" and config_to_dict(run) == config_to_dict(cfg)
