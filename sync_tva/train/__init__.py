"""Training and evaluation: loop, losses, metrics, checkpoints, run logging."""

from ..metrics import Metrics, compute_metrics
from .checkpoint import TrainState, load_checkpoint, save_checkpoint
from .experiment import Experiment, TrainedModel, build_experiment, checkpoint_extra
from .loop import Predictions, collect_logits, evaluate, fit, train_one_epoch
from .losses import FocalLoss, class_weights, make_loss

__all__ = [
    "TrainedModel",
    "Experiment",
    "build_experiment",
    "checkpoint_extra",
    "fit",
    "train_one_epoch",
    "collect_logits",
    "evaluate",
    "Predictions",
    "TrainState",
    "save_checkpoint",
    "load_checkpoint",
    "make_loss",
    "FocalLoss",
    "class_weights",
    "Metrics",
    "compute_metrics",
]
