"""Use a trained run: rebuild its model from the checkpoint alone, and predict.

A checkpoint holds the resolved config, the label names, the input widths and the expanded
graph schema besides the weights, so :func:`load_model` needs neither the training data nor
the schema's YAML file. Data is read only when the caller asks for a split
(:meth:`TrainedModel.load_split`; the container is shared with training, where ``Experiment``
adds the data), and then only the files that split needs.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Sequence

from .config import config_from_dict
from .device import resolve_device
from .errors import CheckpointError
from .graphs import GraphSchema, get_builder
from .models import build_model
from .records import Utterance
from .train.checkpoint import load_checkpoint
from .train.experiment import Experiment, TrainedModel
from .train.loop import Predictions, collect_logits

__all__ = ["TrainedModel", "Predictions", "load_model", "load_run", "predict"]


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
    return Experiment(**{f.name: getattr(trained, f.name) for f in fields(trained)}, data=trained.load_data())


def predict(trained: TrainedModel, utterances: Sequence[Utterance], *, batch_size: int | None = None) -> Predictions:
    """Logits, probabilities and predictions for ``utterances`` in input order (model in eval mode)."""
    return collect_logits(trained.model, trained.builder, utterances, batch_size or trained.cfg.train.batch_size, trained.device)
