"""``sync_tva/cli/run.py``: arguments in any order, and every user error one ``error:`` line that leaves nothing behind."""

from __future__ import annotations

import pytest
from conftest import TINY

from sync_tva.cli import run


def test_overrides_may_stand_before_and_after_the_options():
    args = run.parse_args(["model.hidden=16", "--out", "R", "train.epochs=1", "--config", "c.yaml", "seed=3"])
    assert args.overrides == ["model.hidden=16", "train.epochs=1", "seed=3"] and str(args.out) == "R"
    assert str(args.config) == "c.yaml"


@pytest.mark.parametrize("argv", [["model.hidden=0"], ["train.lr=-1"], ["model.dropout=1.5"], ["model.hiden=8"],
                                  ["data.name=nope"], ["data.name=csv", "data.train=/nonexistent.csv", "data.test=x.csv"]])
def test_bad_input_is_one_error_line_and_creates_nothing(argv, tmp_path, capsys):
    out = tmp_path / "run"
    assert run.main([*TINY, "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error: ")] and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("inside", [False, True])
def test_out_at_or_under_a_file_is_refused_before_any_work(inside, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    out = blocker / "run" if inside else blocker
    assert run.main(["--out", str(out), "data.name=csv"]) == 2  # a data error would come later: the path is checked first
    assert f"error: --out {out}: cannot create the run directory ({blocker} is a file" in capsys.readouterr().err
