import json

import pytest
from conftest import run_command

from sync_tva.cli.run import main

# A smaller demo than the default, still large enough for fusion to be learnt.
SMALL_DEMO = ["data.demo.n_dialogues=90", "train.epochs=12", "train.patience=4"]


def cli(out, *overrides):
    """Run ``python -m sync_tva.run`` as a user would; return the parsed metrics.json."""
    return json.loads((run_command(out, *SMALL_DEMO, *overrides) / "metrics.json").read_text())


def test_misspelt_override_fails_naming_the_key(capsys, tmp_path):
    assert main(["--out", str(tmp_path), "train.epohcs=3"]) == 2
    err = capsys.readouterr().err
    assert "train.epohcs" in err and "did you mean 'train.epochs'" in err


def test_missing_config_file_is_a_clean_error(capsys):
    assert main(["--config", "/nonexistent.yaml"]) == 2
    assert "config file not found: /nonexistent.yaml" in capsys.readouterr().err


@pytest.mark.slow
def test_end_to_end_demo_run_is_complete_reproducible_and_fusion_wins(tmp_path):
    full = cli(tmp_path / "full")
    run = tmp_path / "full"
    for name in ("config.yaml", "metrics.json", "history.json", "confusion_matrix.png", "curves.png"):
        assert (run / name).is_file(), name
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    test = full["test"]
    assert set(test) == {"accuracy", "weighted_f1", "macro_f1", "per_class_f1", "confusion_matrix", "macro_f1_labels"}
    assert len(test["per_class_f1"]) == 7 and len(test["confusion_matrix"]) == 7

    again = cli(tmp_path / "again")
    assert again == full, "the same seed must give identical metrics on CPU"

    text_only = cli(tmp_path / "text", "model.modalities=[text]")
    assert full["test"]["weighted_f1"] >= text_only["test"]["weighted_f1"] + 0.15
