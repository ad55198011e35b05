"""``sync_tva/cli/finetune.py``: arguments in any order."""

from __future__ import annotations

from sync_tva.cli import finetune


def test_overrides_may_stand_before_and_after_the_options():
    args = finetune.parse_args(["seed=1", "--config", "c.yaml", "data.root=D"])
    assert args.overrides == ["seed=1", "data.root=D"] and str(args.config) == "c.yaml"
