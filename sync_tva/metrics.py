"""Classification metrics for emotion recognition, as a typed record that serialises to JSON.

In the foundation because both training loops report them: the graph model's ``fit`` and the text
encoder's fine-tuning (``features``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

__all__ = ["Metrics", "compute_metrics"]


@dataclass
class Metrics:
    """Accuracy, weighted and macro F1, F1 per class (by label name) and the confusion matrix (rows = truth).

    ``macro_f1`` averages over ``macro_f1_labels``: the classes present in this split's truth
    or predictions. A class that is neither in the split nor ever predicted has no F1 to speak
    of; counting it as 0 would lower the average by the number of label-set classes absent.
    """

    accuracy: float
    weighted_f1: float
    macro_f1: float
    per_class_f1: dict[str, float]
    confusion_matrix: list[list[int]]
    macro_f1_labels: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> Metrics:
    """Metrics of a split; per-class F1 and the confusion matrix over all ``len(labels)`` classes."""
    idx = list(range(len(labels)))
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    per_class = f1_score(y_true, y_pred, labels=idx, average=None, zero_division=0)
    present = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    return Metrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        weighted_f1=float(f1_score(y_true, y_pred, labels=idx, average="weighted", zero_division=0)),
        macro_f1=float(np.mean(per_class[present])) if present else 0.0,
        per_class_f1={name: float(f) for name, f in zip(labels, per_class)},
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        macro_f1_labels=[labels[i] for i in present],
    )
