"""Run output besides checkpoints: TensorBoard scalars and images, plots, and messages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: runs happen on machines without a screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from ..metrics import Metrics  # noqa: E402

if TYPE_CHECKING:
    from .experiment import Experiment

__all__ = ["RunLogger", "EpochFigure", "plot_confusion_matrix", "plot_curves"]

# A figure drawn from the experiment after each epoch (e.g. the attention on one dev utterance);
# the command that trains passes it in, so train/ does not import the drawing code downstream.
EpochFigure = Callable[["Experiment"], "plt.Figure | None"]


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str = "") -> plt.Figure:
    """A row-normalised confusion matrix with raw counts written in each cell."""
    m = np.asarray(matrix, dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.7 * len(labels)))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, int(m[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of true class")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_curves(history: Sequence[dict], best_key: str = "dev_weighted_f1") -> plt.Figure:
    """Training loss and dev scores per epoch, with the best epoch marked on both panels.

    The best epoch is the first with the highest ``best_key``, the rule by which ``fit`` keeps ``best.pt``.
    """
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o", ms=3)
    left.set(xlabel="epoch", ylabel="train loss")
    for key in ("dev_accuracy", "dev_weighted_f1", "dev_macro_f1"):
        right.plot(epochs, [h[key] for h in history], marker="o", ms=3, label=key.removeprefix("dev_"))
    right.set(xlabel="epoch", ylabel="dev score", ylim=(0, 1))
    if history:
        best = max(history, key=lambda h: h[best_key])  # max() keeps the first of equal scores, as fit does
        for ax in (left, right):
            ax.axvline(best["epoch"], color="0.4", linestyle="--", linewidth=1, label=f"best epoch {best['epoch']}")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


class RunLogger:
    """Writes TensorBoard events under ``OUT/tensorboard`` and prints without breaking progress bars."""

    def __init__(self, out: Path, epoch_figures: dict[str, EpochFigure] | None = None):
        self.writer = SummaryWriter(log_dir=str(out / "tensorboard"))
        self.epoch_figures = dict(epoch_figures or {})

    def info(self, message: str) -> None:
        tqdm.write(message)

    def epoch_end(self, exp: "Experiment", record: dict, dev: Metrics) -> None:
        """Scalars, the dev confusion matrix and every ``epoch_figures`` entry for one finished epoch."""
        epoch = record["epoch"]
        self.writer.add_scalar("train/loss", record["train_loss"], epoch)
        for key in ("accuracy", "weighted_f1", "macro_f1"):
            self.writer.add_scalar(f"dev/{key}", getattr(dev, key), epoch)
        fig = plot_confusion_matrix(dev.confusion_matrix, exp.data.labels, title=f"dev, epoch {epoch}")
        self.writer.add_figure("dev/confusion_matrix", fig, epoch)  # closes the figure
        for tag, draw in self.epoch_figures.items():
            figure = draw(exp)
            if figure is not None:
                self.writer.add_figure(tag, figure, epoch)

    def close(self) -> None:
        self.writer.close()
