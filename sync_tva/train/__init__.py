"""Training and evaluation: loop, losses, metrics, checkpoints, run logging."""

from .checkpoint import TrainState, load_checkpoint, save_checkpoint
from .experiment import Experiment, build_experiment, load_run
from .loop import Predictions, evaluate, fit, predict, train_one_epoch
from .losses import FocalLoss, class_weights, make_loss
from .metrics import Metrics, compute_metrics

__all__ = [
    "Experiment",
    "build_experiment",
    "load_run",
    "fit",
    "train_one_epoch",
    "predict",
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
