"""``metrics.py``: the scores of a small case worked by hand, and which classes macro F1 averages over."""

from __future__ import annotations

import json

import pytest

from sync_tva.metrics import compute_metrics


def test_metrics_by_hand():
    m = compute_metrics([0, 0, 1, 2], [0, 1, 1, 1], ["a", "b", "c"])
    assert m.accuracy == 0.5
    assert m.confusion_matrix == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert m.per_class_f1 == pytest.approx({"a": 2 / 3, "b": 0.5, "c": 0.0})
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.5) / 3)
    assert m.weighted_f1 == pytest.approx((2 * 2 / 3 + 0.5) / 4)
    json.dumps(m.to_dict())


def test_macro_f1_covers_the_classes_in_truth_or_predictions():
    m = compute_metrics([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b", "c", "d"])
    assert m.macro_f1_labels == ["a", "b"]
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert m.per_class_f1["c"] == 0.0 and len(m.confusion_matrix) == 4
    assert compute_metrics([0, 0], [0, 3], ["a", "b", "c", "d"]).macro_f1_labels == ["a", "d"]  # a wrong guess counts
