"""Which config changes a resumed run accepts: result-neutral keys only, compared as the current schema writes configs."""

import copy
import functools
import json
import typing
from pathlib import Path

import pytest
from conftest import TINY, fit_run

from sync_tva.config import RESULT_NEUTRAL_KEYS, Config, config_from_dict, config_to_dict, load_config
from sync_tva.errors import CheckpointError
from sync_tva.io import load_torch, save_torch
from sync_tva.train.checkpoint import _config_differences


def test_toggling_progress_does_not_refuse_the_resume(tmp_path):
    fit_run(tmp_path, ["train.epochs=1", "features.progress=true"])  # "interrupted" after one epoch
    _, resumed = fit_run(tmp_path, ["train.epochs=2", "features.progress=false"])
    assert [h["epoch"] for h in resumed.history] == [1, 2]


# A value of its type other than the default for a leaf whose default is None.
NONE_DEFAULT_CHANGES = {"data.labels": ["neutral", "joy"], "features.shard": "0/2"}


def default_leaves() -> dict[str, tuple[object, object]]:
    """``{"a.b": (default, annotation)}`` for every leaf of the resolved default config."""
    leaves = {}

    def walk(section, tree: dict, prefix: str) -> None:
        hints = typing.get_type_hints(type(section))
        for key, value in tree.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(getattr(section, key), value, f"{dotted}.")
            else:
                leaves[dotted] = (value, hints[key])

    walk(Config(), config_to_dict(Config()), "")
    return leaves


def another_value(key: str, value, annotation):
    """A valid value of ``value``'s type that differs from it."""
    if value is None:
        return NONE_DEFAULT_CHANGES[key]
    if typing.get_origin(annotation) is typing.Literal:
        return next(choice for choice in typing.get_args(annotation) if choice != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        if not value:
            return 1 if isinstance(value, int) else 0.5  # a share or a dropout stays below 1
        return value * 2  # doubling keeps every head count dividing hidden
    if isinstance(value, str):
        return f"{value}-changed"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value[:-1]  # fewer modalities
    if isinstance(value, list):
        half = value[0] / 2 if isinstance(value[0], float) else value[0] // 2
        return [value[0] - half, *value[1:-1], value[-1] + half]  # a range stays ordered, a split sums to 1
    raise TypeError(f"{key}: no rule to change a {type(value).__name__}")


LEAVES = default_leaves()


@pytest.mark.parametrize("key", sorted(LEAVES))
def test_a_resume_refuses_a_change_of_every_key_but_the_result_neutral_ones(key):
    old = config_to_dict(Config())
    new = copy.deepcopy(old)
    *sections, name = key.split(".")
    node = functools.reduce(dict.__getitem__, sections, new)
    value, annotation = LEAVES[key]
    node[name] = another_value(key, value, annotation)
    config_from_dict(new, f"{key} changed")  # a value the schema accepts
    expected = [] if key in RESULT_NEUTRAL_KEYS else [f"{key}: {value!r} -> {node[name]!r}"]
    assert _config_differences(old, new) == expected


# TINY less model.heads: the recorded config below is this setting as written before config
# sections were chosen by name (every source's data keys, model.context on the plain model, no
# model.heads), by config_to_dict at commit cee65b0^.
BEFORE_SECTIONS = Path(__file__).parent / "fixtures" / "config_before_sections.json"
TINY_DEFAULT_HEADS = [o for o in TINY if not o.startswith("model.heads=")]


@pytest.mark.filterwarnings("error::FutureWarning")  # the checkpoint's old spellings are not the user's to fix
def test_a_run_started_before_config_sections_by_name_resumes(tmp_path):
    old = json.loads(BEFORE_SECTIONS.read_text())
    assert _config_differences(old, config_to_dict(load_config(None, TINY_DEFAULT_HEADS)))  # the raw dicts do differ
    fit_run(tmp_path, ["train.epochs=1"], base=TINY_DEFAULT_HEADS)
    last = tmp_path / "checkpoints" / "last.pt"
    save_torch(last, load_torch(last) | {"config": old})  # as that run wrote it
    _, resumed = fit_run(tmp_path, ["train.epochs=2"], base=TINY_DEFAULT_HEADS)
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def test_a_changed_setting_is_still_refused_after_normalising(tmp_path):
    fit_run(tmp_path, ["train.epochs=1"])
    with pytest.raises(CheckpointError, match="model.hidden: 16 -> 8"):
        fit_run(tmp_path, ["train.epochs=2", "model.hidden=8"])
