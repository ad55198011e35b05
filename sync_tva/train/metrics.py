"""The metrics record under its old ``train`` path; its definition is :mod:`sync_tva.metrics`, shared with fine-tuning.

Kept only while ``predictor.py``, ``train/logging.py`` and a test import it from here; once they
import :mod:`sync_tva.metrics`, delete this module.
"""

from ..metrics import Metrics, compute_metrics

__all__ = ["Metrics", "compute_metrics"]
