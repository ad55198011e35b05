"""Use a trained run: rebuild its model from the checkpoint alone, and predict.

A checkpoint holds the resolved config, the label names, the input widths and the expanded
graph schema besides the weights, so :func:`load_model` needs neither the training data nor
the schema's YAML file. Data is read only when the caller asks for a split
(:meth:`TrainedModel.load_split`), and then only the files that split needs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .config import Config, config_from_dict
from .device import resolve_device
from .errors import CheckpointError
from .features import load_dataset
from .graphs import GraphSchema, get_builder
from .graphs.builder import UtteranceGraphBuilder
from .models import build_model, normalize_speakers
from .records import DatasetSplits, Utterance
from .train.checkpoint import load_checkpoint
from .train.experiment import Experiment, speaker_normalized
from .train.loop import collect_logits

__all__ = ["TrainedModel", "Predictions", "load_model", "load_run", "predict"]


@dataclass
class TrainedModel:
    """A trained model in eval mode with what it takes to feed it: config, label names, schema, graph builder."""

    cfg: Config
    labels: tuple[str, ...]
    schema: GraphSchema
    builder: UtteranceGraphBuilder
    model: nn.Module
    device: torch.device
    checkpoint: Path
    text_encoder: str | None = None  # the fine-tuned text encoder the run's features came from

    def data_config(self) -> Config:
        """The run's config with its label names (and fine-tuned text encoder) fixed, so no split needs the training data."""
        features = self.cfg.features
        if self.text_encoder is not None:
            finetune = replace(features.text.finetune, folder=self.text_encoder)
            features = replace(features, text=replace(features.text, finetune=finetune))
        return replace(self.cfg, data=replace(self.cfg.data, labels=list(self.labels)), features=features)

    def load_split(self, name: str) -> list[Utterance]:
        """The utterances of the run's ``train``, ``dev`` or ``test`` split as the model reads them (features
        through the store; per-speaker normalised over the split when the run normalises by speaker)."""
        return normalize_speakers(self.model, load_dataset(self.data_config(), splits=(name,)).split(name))[0]

    def load_data(self) -> DatasetSplits:
        """All three splits of the run's data set, as :meth:`load_split` gives them."""
        return speaker_normalized(self.model, load_dataset(self.data_config()))

    def __repr__(self) -> str:
        return f"TrainedModel({self.cfg.model.name!r}, labels={list(self.labels)}, schema={self.schema.name!r}, checkpoint={str(self.checkpoint)!r})"


@dataclass
class Predictions:
    """Per-utterance truth, prediction and class probabilities [N, C], in input order."""

    uids: list[str]
    y_true: list[int]
    y_pred: list[int]
    probs: torch.Tensor


def _checkpoint_path(run_dir: Path, checkpoint: str) -> Path:
    path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a finished run (no checkpoints/{checkpoint}.pt)")
    return path


def load_model(run_dir: str | Path, checkpoint: str = "best", *, device: str | None = None) -> TrainedModel:
    """Rebuild a run's model from ``RUN/checkpoints/<checkpoint>.pt`` alone, weights loaded, in eval mode.

    ``device`` (auto, cpu, cuda, cuda:N) defaults to the run's ``train.device``.
    """
    path = _checkpoint_path(Path(run_dir), checkpoint)
    ckpt = load_checkpoint(path)
    missing = [k for k in ("config", "labels", "in_dims", "schema", "model") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}; it was not written by this version of sync_tva")
    cfg = config_from_dict(ckpt["config"], str(path))
    schema = GraphSchema.from_state(ckpt["schema"])
    in_dims = {m: int(d) for m, d in ckpt["in_dims"].items()}
    labels = tuple(ckpt["labels"])
    model = build_model(schema, in_dims, len(labels), cfg.model, **ckpt.get("model_parts", {}))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model its config builds ({exc})") from None
    target = resolve_device(device or cfg.train.device, "device")
    builder = get_builder(cfg.graph.builder)(schema, in_dims)
    return TrainedModel(cfg=cfg, labels=labels, schema=schema, builder=builder, model=model.to(target).eval(), device=target, checkpoint=path, text_encoder=ckpt.get("text_encoder"))


def load_run(run_dir: str | Path, checkpoint: str = "best") -> Experiment:
    """A finished run as an :class:`Experiment`: :func:`load_model` plus all of its data (for evaluation)."""
    trained = load_model(run_dir, checkpoint)
    return Experiment(
        cfg=trained.cfg, data=trained.load_data(), schema=trained.schema, builder=trained.builder, model=trained.model, device=trained.device
    )


def predict(trained: TrainedModel | Experiment, utterances: Sequence[Utterance], *, batch_size: int | None = None) -> Predictions:
    """Class probabilities and predictions for ``utterances`` (model in eval mode)."""
    size = batch_size or trained.cfg.train.batch_size
    out = collect_logits(trained.model, trained.builder, utterances, size, trained.device)
    probs = torch.softmax(out.logits, dim=-1) if out.uids else torch.zeros(0, len(trained.labels))
    return Predictions(uids=out.uids, y_true=out.y_true, y_pred=probs.argmax(dim=-1).tolist(), probs=probs)
