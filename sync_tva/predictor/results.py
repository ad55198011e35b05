"""What a prediction returns: the trainer's prediction record in input order, read per utterance.

:class:`PredictionSet` holds the :class:`~sync_tva.train.loop.Predictions` of a request, one
:class:`UtterancePrediction` view per row, the featured records the model read and, on
request, the attention of each planned batch (:class:`BatchAttention`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dgl import DGLHeteroGraph

from ..errors import DataError
from ..metrics import Metrics, compute_metrics
from ..models import AttentionMaps
from ..records import Utterance
from ..train.loop import Predictions

__all__ = ["UtterancePrediction", "BatchAttention", "PredictionSet"]


@dataclass
class UtterancePrediction:
    """One utterance's row of a :class:`PredictionSet`: every class's probability and where the input came from;
    the top label, its probability and the runner-up are read from ``probs``."""

    uid: str
    probs: dict[str, float]  # label -> probability, in the run's label order
    text: str = ""
    dialogue: str = ""
    speaker: str = ""
    source: str = ""  # the input file (and CSV row) it came from
    true: str | None = None  # the label given in the input, when it had one
    speaker_weight: float | None = None  # speaker normalisation: share of the speaker's own statistics (0: the training ones); None: not used

    def ranked(self) -> list[tuple[str, float]]:
        """Every ``(label, probability)``, most probable first (ties in label order)."""
        return sorted(self.probs.items(), key=lambda kv: -kv[1])

    @property
    def label(self) -> str:
        """The predicted label."""
        return self.ranked()[0][0]

    @property
    def probability(self) -> float:
        return self.ranked()[0][1]

    @property
    def runner_up(self) -> str:
        """The second most probable label (the top one for a single-class run)."""
        return self.ranked()[min(1, len(self.probs) - 1)][0]

    @property
    def runner_up_probability(self) -> float:
        return self.ranked()[min(1, len(self.probs) - 1)][1]

    def to_dict(self) -> dict:
        """A flat JSON-ready record (one line of ``predictions.jsonl``)."""
        return {
            "uid": self.uid, "dialogue": self.dialogue, "speaker": self.speaker, "text": self.text, "source": self.source,
            "true": self.true, "predicted": self.label, "speaker_weight": self.speaker_weight, "probability": self.probability,
            "runner_up": self.runner_up, "runner_up_probability": self.runner_up_probability, "probs": self.probs,
        }


@dataclass
class BatchAttention:
    """The attention maps of one planned batch (model in eval mode), with the batch's graphs on the CPU.

    ``dialogue`` is the batch's dialogue graph for a dialogue model (its maps then also hold
    ``dialogue``), None for the per-utterance model.
    """

    uids: list[str]
    graph: DGLHeteroGraph
    maps: AttentionMaps
    dialogue: DGLHeteroGraph | None = None


@dataclass
class PredictionSet:
    """Predictions in input order, the featured records they came from, and (on request) attention."""

    labels: tuple[str, ...]
    predictions: Predictions  # the trainer's record, in input order
    items: list[UtterancePrediction]  # one per row of ``predictions``
    utterances: list[Utterance]  # the model's inputs, for sync_tva.viz.extract_attention
    labelled: bool  # whether every input carried a label (metrics() needs it)
    attention: list[BatchAttention] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[UtterancePrediction]:
        return iter(self.items)

    def __getitem__(self, i: int) -> UtterancePrediction:
        return self.items[i]

    def probs(self) -> np.ndarray:
        """Class probabilities ``[N, C]`` in the order of ``labels``."""
        return self.predictions.probs.double().numpy().reshape(-1, len(self.labels))

    def metrics(self) -> Metrics:
        """Accuracy, F1s and confusion matrix against the input's labels (the fields of a run's metrics.json)."""
        if not self.labelled:
            raise DataError("these inputs carry no labels, so there is nothing to score the predictions against")
        return compute_metrics(self.predictions.y_true, self.predictions.y_pred, self.labels)

    def to_frame(self) -> pd.DataFrame:
        """One row per utterance: identity, truth, top two labels, then ``p_<label>`` for every class."""
        rows = []
        for p in self.items:
            row = {k: v for k, v in p.to_dict().items() if k != "probs"}
            row.update({f"p_{name}": p.probs[name] for name in self.labels})
            rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return f"PredictionSet({len(self.items)} utterances, labelled={self.labelled}, labels={list(self.labels)})"
