"""``data/splits.py``: carving a dev split out of the training dialogues."""

from __future__ import annotations

import pytest

from sync_tva.data.splits import carve_dev
from sync_tva.errors import ConfigError


@pytest.mark.parametrize(("n", "fraction", "warned"), [(40, 0.1, False), (3, 0.1, True), (10, 0.01, True), (10, 0.9, True)])
def test_dev_carve_warns_when_a_side_is_nearly_empty(n, fraction, warned, capsys):
    train, dev = carve_dev(range(n), fraction, seed=0)
    assert train and dev and len(train) + len(dev) == n
    err = capsys.readouterr().err
    assert ("warning: dev carve" in err) == warned
    if warned:
        assert "data.dev_fraction" in err or "data.dev" in err


def test_dev_carve_refuses_a_single_dialogue():
    with pytest.raises(ConfigError, match=r"1 training dialogue.*data.dev"):
        carve_dev(["only"], 0.5, seed=0)
