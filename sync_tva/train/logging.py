"""Run output besides checkpoints: TensorBoard scalars and images, plots, and messages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: runs happen on machines without a screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from .metrics import Metrics  # noqa: E402

if TYPE_CHECKING:
    from ..data.records import Utterance
    from .experiment import Experiment

__all__ = ["RunLogger", "plot_confusion_matrix", "plot_curves", "attention_figure"]


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


def plot_curves(history: Sequence[dict]) -> plt.Figure:
    """Training loss and dev scores per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o", ms=3)
    left.set(xlabel="epoch", ylabel="train loss")
    for key in ("dev_accuracy", "dev_weighted_f1", "dev_macro_f1"):
        right.plot(epochs, [h[key] for h in history], marker="o", ms=3, label=key.removeprefix("dev_"))
    right.set(xlabel="epoch", ylabel="dev score", ylim=(0, 1))
    right.legend()
    fig.tight_layout()
    return fig


class RunLogger:
    """Writes TensorBoard events under ``OUT/tensorboard`` and prints without breaking progress bars."""

    def __init__(self, out: Path):
        self.writer = SummaryWriter(log_dir=str(out / "tensorboard"))

    def info(self, message: str) -> None:
        tqdm.write(message)

    def epoch_end(self, exp: "Experiment", record: dict, dev: Metrics) -> None:
        """Scalars, the dev confusion matrix and the attention drawing of ``dev[0]`` for one finished epoch."""
        epoch = record["epoch"]
        self.writer.add_scalar("train/loss", record["train_loss"], epoch)
        for key in ("accuracy", "weighted_f1", "macro_f1"):
            self.writer.add_scalar(f"dev/{key}", getattr(dev, key), epoch)
        fig = plot_confusion_matrix(dev.confusion_matrix, exp.data.labels, title=f"dev, epoch {epoch}")
        self.writer.add_figure("dev/confusion_matrix", fig, epoch)  # closes the figure
        if exp.data.dev:
            self.writer.add_figure("dev/attention", attention_figure(exp, exp.data.dev[0]), epoch)

    def close(self) -> None:
        self.writer.close()


def attention_figure(exp: "Experiment", utterance: "Utterance") -> plt.Figure:
    """The last GAT layer's attention on one utterance (heads averaged, top 3 edges per node).

    One fixed dev utterance per epoch shows how attention sharpens during training; the
    extraction runs in eval mode and restores the model's mode, so training is unaffected.
    """
    # Imported here: viz sits downstream of train in the pipeline (its command imports train).
    from ..viz import draw_attention, extract_attention

    ua = extract_attention(exp, [utterance])[0]
    return draw_attention(ua, top_k=3, modalities=list(exp.schema.node_types), width=7.0)
