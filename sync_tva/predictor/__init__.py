"""Point a trained run at new material: media clips, sentences, CSVs of utterances or conversations.

Three parts, read in order:

- :mod:`~sync_tva.predictor.adapters`: the input adapters, clips, sentences and CSV rows to
  :class:`~sync_tva.records.RawUtterance` records (and which modalities each lacks);
- :mod:`~sync_tva.predictor.engine`: :class:`Predictor`, which extracts those records with exactly
  the run's extractor settings into its feature store, reads them back and classifies them through
  :func:`sync_tva.inference.predict`, the trainer's own batching;
- :mod:`~sync_tva.predictor.results`: the trainer's prediction record
  (:class:`~sync_tva.train.loop.Predictions`) in a :class:`PredictionSet`, read per utterance
  through a thin :class:`UtterancePrediction` view.

Example::

    predictor = Predictor.from_run("runs/meld")
    predictor.predict_clip("clip.mp4", text="I can't believe you did that!")[0].ranked()
    predictor.predict_csv("new_dialogues.csv").metrics()     # when the CSV has labels

Drawing attention belongs to :mod:`sync_tva.viz` (downstream of this package): pass
``PredictionSet.utterances`` to :func:`sync_tva.viz.extract_attention`. The terminal table and
the files of ``python -m sync_tva.predict`` are the command's (``sync_tva/cli/predict.py``).
"""

from .adapters import AUDIO_SUFFIXES, VIDEO_SUFFIXES, Inputs
from .engine import Predictor
from .results import BatchAttention, PredictionSet, UtterancePrediction

__all__ = ["VIDEO_SUFFIXES", "AUDIO_SUFFIXES", "Inputs", "UtterancePrediction", "BatchAttention", "PredictionSet", "Predictor"]
