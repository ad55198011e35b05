"""``sync_tva/cli/extract.py``: arguments in any order, and a store that cannot be created is one ``error:`` line."""

from __future__ import annotations

from sync_tva.cli import extract
from sync_tva.testing import make_clip_csv


def test_overrides_may_stand_before_and_after_the_options():
    args = extract.parse_args(["seed=1", "--shard", "0/2", "data.root=D"])
    assert args.overrides == ["seed=1", "data.root=D"] and args.shard == "0/2"


def test_a_store_under_a_file_is_an_error_line(text_model, tmp_path, capsys):
    data = make_clip_csv(tmp_path / "data", rows=4)
    (tmp_path / "taken").write_text("x")
    argv = ["data.name=csv", f"data.root={data}", "data.train=train.csv", "data.test=test.csv", "data.dev_fraction=0.5",
            "model.modalities=[text]", f"features.text.model={text_model}", f"features.store={tmp_path / 'taken'}"]
    assert extract.main(argv) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "taken" in err and "Traceback" not in err
    assert (tmp_path / "taken").read_text() == "x"
