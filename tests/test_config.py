import re
from pathlib import Path

import pytest

from sync_tva.config import (
    RESULT_NEUTRAL_KEYS,
    Config,
    ModelConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_override,
    read_yaml,
)
from sync_tva.errors import ConfigError
from sync_tva.run import main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{"a.b": value}`` for every leaf of a nested mapping."""
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else key
        flat.update(flatten(value, dotted) if isinstance(value, dict) else {dotted: value})
    return flat


def test_defaults_are_the_demo():
    cfg = load_config()
    assert cfg.data.name == "demo"
    assert cfg.model.modalities == ["text", "audio", "visual"]


def test_new_keys_and_their_defaults():
    cfg = load_config(None, ["model.name=other", "model.normalize=robust", "features.chunk=8"])
    assert (cfg.model.name, cfg.model.normalize, cfg.features.chunk) == ("other", "robust", 8)
    default = Config()
    assert (default.model.name, default.model.normalize) == ("sync_tva", "standard")
    assert default.features.chunk == 64
    with pytest.raises(ConfigError, match=r"model\.normalize = 'robus' .*did you mean 'robust'"):
        load_config(None, ["model.normalize=robus"])


def test_demo_yaml_matches_defaults():
    assert config_to_dict(load_config(ROOT / "configs" / "demo.yaml")) == config_to_dict(Config())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_holds_what_its_file_says(path):
    cfg = load_config(path)
    loaded = flatten(config_to_dict(cfg))
    own = flatten({k: v for k, v in read_yaml(path).items() if k != "base"})
    assert own, f"{path.name} sets nothing"
    for key, value in own.items():
        assert loaded[key] == value, key
    if path.name != "demo.yaml":
        assert loaded != flatten(config_to_dict(Config()))
    assert config_from_dict(config_to_dict(cfg), str(path)) == cfg


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


def test_union_error_keeps_every_option_reason():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["data.columns.dialogue=[1,null]"])
    message = str(info.value)
    assert "does not match Union[str, list[str]]" in message
    assert "as str: data.columns.dialogue must be str" in message
    assert r"as list[str]: data.columns.dialogue[1] must be str, got None" in message


def test_optional_error_keeps_the_reason():
    with pytest.raises(ConfigError, match=r"data\.labels = 3 does not match Optional.*must be a list"):
        load_config(None, ["data.labels=3"])


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
    "overrides, key",
    [
        (["model.hidden=0"], "model.hidden"),
        (["model.hidden=-1"], "model.hidden"),
        (["model.msde_heads=0"], "model.msde_heads"),
        (["model.gat_heads=0"], "model.gat_heads"),
        (["model.caf_heads=-2"], "model.caf_heads"),
        (["model.gat_heads=3"], "model.gat_heads"),  # does not divide hidden=64
        (["model.gat_layers=-1"], "model.gat_layers"),
        (["model.dropout=1.5"], "model.dropout"),
        (["model.dropout=1"], "model.dropout"),
        (["model.dropout=-0.1"], "model.dropout"),
        (["model.attn_dropout=1.0"], "model.attn_dropout"),
        (["model.attn_dropout=-0.5"], "model.attn_dropout"),
        (["train.lr=0"], "train.lr"),
        (["train.lr=-1e-3"], "train.lr"),
        (["train.weight_decay=-0.01"], "train.weight_decay"),
        (["train.grad_clip=-1"], "train.grad_clip"),
        (["train.focal_gamma=-2"], "train.focal_gamma"),
        (["train.num_threads=-1"], "train.num_threads"),
        (["train.epochs=0"], "train.epochs"),
        (["train.batch_size=0"], "train.batch_size"),
        (["train.patience=0"], "train.patience"),
        (["data.dev_fraction=0"], "data.dev_fraction"),
        (["data.dev_fraction=1"], "data.dev_fraction"),
        (["data.demo.n_dialogues=0"], "data.demo.n_dialogues"),
        (["data.demo.min_turns=0"], "data.demo.min_turns"),
        (["data.demo.min_turns=9", "data.demo.max_turns=8"], "data.demo.min_turns"),
        (["data.demo.text_dim=0"], "data.demo.text_dim"),
        (["data.demo.audio_dim=-4"], "data.demo.audio_dim"),
        (["data.demo.visual_dim=0"], "data.demo.visual_dim"),
        (["data.demo.text_nodes=[0,4]"], "data.demo.text_nodes"),
        (["data.demo.audio_nodes=[5,4]"], "data.demo.audio_nodes"),
        (["data.demo.visual_nodes=[3]"], "data.demo.visual_nodes"),
        (["data.demo.signal_fraction=1.5"], "data.demo.signal_fraction"),
        (["data.demo.noise=-1"], "data.demo.noise"),
        (["data.demo.split=[0.5,0.3,0.3]"], "data.demo.split"),
        (["data.demo.split=[0.8,0.3,-0.1]"], "data.demo.split"),
        (["data.demo.split=[0.5,0.5]"], "data.demo.split"),
        (["features.chunk=0"], "features.chunk"),
        (["features.text.max_nodes=-1"], "features.text.max_nodes"),
        (["features.text.max_length=0"], "features.text.max_length"),
        (["features.text.batch_size=0"], "features.text.batch_size"),
        (["features.visual.fps=0"], "features.visual.fps"),
        (["features.visual.max_frames=0"], "features.visual.max_frames"),
        (["features.visual.image_size=0"], "features.visual.image_size"),
        (["features.visual.batch_size=0"], "features.visual.batch_size"),
        (["features.audio.window_s=0"], "features.audio.window_s"),
        (["features.audio.window_s=.nan"], "features.audio.window_s"),
        (["features.audio.max_nodes=-1"], "features.audio.max_nodes"),
        (["features.audio.sample_rate=0"], "features.audio.sample_rate"),
        (["seed=-1"], "seed"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_out_of_range_value_names_its_key_and_rule(overrides, key):
    with pytest.raises(ConfigError, match=rf"^overrides: {re.escape(key)}: .* must (satisfy|divide) "):
        load_config(None, overrides)


def test_range_message_reads_key_value_rule():
    with pytest.raises(ConfigError) as info:
        Config(model=ModelConfig(dropout=1.5))
    assert str(info.value) == "model.dropout: 1.5 must satisfy 0 <= dropout < 1"


@pytest.mark.parametrize("hidden", [0, -1])
def test_bad_hidden_is_blamed_on_hidden_not_on_the_heads(hidden):
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"model.hidden={hidden}"])
    assert f"model.hidden: {hidden} must satisfy hidden > 0" in str(info.value)
    assert "heads" not in str(info.value)


@pytest.mark.parametrize(
    "override",
    [
        "model.dropout=0",
        "model.attn_dropout=0.99",
        "model.gat_layers=0",
        "train.weight_decay=0",
        "train.grad_clip=0",
        "train.focal_gamma=0",
        "train.num_threads=0",
        "features.text.max_nodes=0",
        "features.audio.max_nodes=0",
        "data.demo.text_nodes=[3,3]",
        "data.demo.split=[0.6,0.2,0.2]",
        "data.demo.signal_fraction=1",
        "data.dev_fraction=0.99",
    ],
)
def test_boundary_values_are_accepted(override):
    load_config(None, [override])


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.modalities=[]", "at least one"),
        ("model.modalities=[text,smell]", "unknown modality 'smell'"),
        ("model.modalities=[text,text]", "repeated"),
    ],
)
def test_modalities_are_checked(override, message):
    with pytest.raises(ConfigError, match=rf"model\.modalities: .*{message}"):
        load_config(None, [override])


def test_override_needs_equals():
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.epochs")


def test_override_into_value_is_an_error():
    with pytest.raises(ConfigError, match="is a value"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


@pytest.mark.parametrize("text", ["{Clip}", "{a,b}", "clips/{Clip}.mp4", "{conv}_{turn}.mp4"])
def test_braced_override_stays_a_string(text):
    assert parse_override(f"data.media={text}") == ("data.media", text)
    assert load_config(None, ["data.name=csv", f"data.media={text}"]).data.media == text


def test_braced_override_with_colon_or_empty_stays_a_mapping():
    assert parse_override("x={a: 1}") == ("x", {"a": 1})
    assert parse_override("x={a: }") == ("x", {"a": None})
    assert parse_override("x={}") == ("x", {})


def test_base_inheritance(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  hidden: 32\n  gat_layers: 1\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nmodel:\n  gat_layers: 3\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert (cfg.model.hidden, cfg.model.gat_layers) == (32, 3)


def test_base_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"base: cycle .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_config(tmp_path / "a.yaml")


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/exp.yaml")


def test_result_neutral_keys_name_real_keys():
    assert set(RESULT_NEUTRAL_KEYS) <= set(flatten(config_to_dict(Config())))


def test_run_refuses_a_bad_value_before_making_the_run_dir(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--out", str(out), "model.dropout=1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "model.dropout: 1.5 must satisfy 0 <= dropout < 1" in err
    assert not out.exists()


@pytest.mark.parametrize("below", ["", "sub/run"])
def test_run_out_on_a_file_is_a_clean_error(tmp_path, capsys, below):
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory")
    out = blocker / below if below else blocker
    assert main(["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {out}: ") and f"{blocker} is a file" in err
