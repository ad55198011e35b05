"""``metrics.py``: which classes macro F1 averages over."""

from __future__ import annotations

import pytest

from sync_tva.metrics import compute_metrics


def test_macro_f1_covers_the_classes_in_truth_or_predictions():
    m = compute_metrics([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b", "c", "d"])
    assert m.macro_f1_labels == ["a", "b"]
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert m.per_class_f1["c"] == 0.0 and len(m.confusion_matrix) == 4
    assert compute_metrics([0, 0], [0, 3], ["a", "b", "c", "d"]).macro_f1_labels == ["a", "d"]  # a wrong guess counts
