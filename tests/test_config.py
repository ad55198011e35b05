from pathlib import Path

import pytest

from sync_tva.config import Config, apply_overrides, config_to_dict, load_config, parse_override
from sync_tva.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_demo():
    cfg = load_config()
    assert cfg.data.name == "demo"
    assert cfg.model.modalities == ["text", "audio", "visual"]


def test_demo_yaml_matches_defaults():
    assert config_to_dict(load_config(ROOT / "configs" / "demo.yaml")) == config_to_dict(Config())


def test_misspelt_key_is_named_with_suggestion():
    with pytest.raises(ConfigError, match=r"'train\.epohcs'.*did you mean 'train\.epochs'"):
        load_config(None, ["train.epohcs=3"])


def test_misspelt_section_is_named():
    with pytest.raises(ConfigError, match=r"'modle'.*did you mean 'model'"):
        load_config(None, ["modle.hidden=3"])


def test_unknown_key_in_file_names_the_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("model:\n  hiden: 32\n")
    with pytest.raises(ConfigError, match=rf"{path}.*'model\.hiden'.*'model\.hidden'"):
        load_config(path)


def test_wrong_type_is_an_error():
    with pytest.raises(ConfigError, match=r"model\.hidden must be int"):
        load_config(None, ["model.hidden=wide"])


def test_literal_choice_is_checked():
    with pytest.raises(ConfigError, match=r"train\.loss.*focal"):
        load_config(None, ["train.loss=focall"])


def test_list_override_and_numbers():
    cfg = load_config(None, ["model.modalities=[text,audio]", "train.lr=1e-4", "train.epochs=3"])
    assert cfg.model.modalities == ["text", "audio"]
    assert cfg.train.lr == pytest.approx(1e-4)
    assert cfg.train.epochs == 3


def test_int_accepted_for_float():
    assert isinstance(load_config(None, ["train.lr=1"]).train.lr, float)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.modalities=[]", "at least one"),
        ("model.modalities=[text,smell]", "unknown modality 'smell'"),
        ("model.modalities=[text,text]", "repeated"),
        ("model.gat_heads=3", "divide model.hidden"),
        ("model.gat_layers=-1", ">= 0"),
        ("train.patience=0", r"train\.patience: must be >= 1"),
    ],
)
def test_semantic_checks(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_override_needs_equals():
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.epochs")


def test_override_into_value_is_an_error():
    with pytest.raises(ConfigError, match="is a value"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_base_inheritance(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  hidden: 32\n  gat_layers: 1\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nmodel:\n  gat_layers: 3\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert (cfg.model.hidden, cfg.model.gat_layers) == (32, 3)


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/exp.yaml")


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    assert isinstance(load_config(path), Config)
