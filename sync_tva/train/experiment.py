"""Assemble an experiment from a config: data, graph schema and builder, model, device."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import Config
from ..device import resolve_device
from ..errors import ConfigError, DataError
from ..features import load_dataset
from ..graphs import GraphSchema, get_builder, load_schema
from ..graphs.builder import UtteranceGraphBuilder
from ..models import build_model
from ..records import DatasetSplits

__all__ = ["Experiment", "build_experiment", "seed_everything", "checkpoint_extra"]


@dataclass
class Experiment:
    """Everything a run trains and evaluates; ``schema`` is already restricted to the chosen modalities."""

    cfg: Config
    data: DatasetSplits
    schema: GraphSchema
    builder: UtteranceGraphBuilder
    model: nn.Module
    device: torch.device

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names in class-index order."""
        return tuple(self.data.labels)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA); data generation and shuffling take their own seeds."""
    torch.manual_seed(seed)


def _check_widths(data: DatasetSplits, dims: dict[str, int]) -> None:
    """Every utterance's node features must be as wide as the training split's."""
    for split in ("train", "dev", "test"):
        for utt in data.split(split):
            for mod, arr in utt.features.items():
                if mod in dims and arr.shape[1] != dims[mod]:
                    raise DataError(
                        f"data set {data.name!r}, {split} utterance {utt.uid!r} (dialogue {utt.dialogue!r}): "
                        f"{mod} features are {arr.shape[1]} wide, the training split's are {dims[mod]}"
                    )


def _check_modalities(cfg: Config, data: DatasetSplits) -> dict[str, int]:
    """The feature width of each chosen modality; a modality the data lacks is a config error."""
    dims = data.feature_dims()
    missing = [m for m in cfg.model.modalities if m not in dims]
    if missing:
        raise ConfigError(
            f"model.modalities asks for {missing}, but data set {data.name!r} provides only {sorted(dims)}; "
            f"set model.modalities=[{','.join(m for m in cfg.model.modalities if m in dims) or 'text'}]"
        )
    chosen = {m: dims[m] for m in cfg.model.modalities}
    _check_widths(data, chosen)
    return chosen


def build_experiment(cfg: Config, data: DatasetSplits | None = None) -> Experiment:
    """Load the data (unless given), build the schema, builder and a freshly seeded model."""
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    data = data if data is not None else load_dataset(cfg)
    dims = _check_modalities(cfg, data)
    schema = load_schema(cfg.graph.schema).restrict(cfg.model.modalities)
    builder = get_builder(cfg.graph.builder)(schema, dims)
    seed_everything(cfg.seed)
    model = build_model(schema, dims, len(data.labels), cfg.model)
    device = resolve_device(cfg.train.device, "train.device")
    return Experiment(cfg=cfg, data=data, schema=schema, builder=builder, model=model.to(device), device=device)


def checkpoint_extra(exp: Experiment) -> dict:
    """What a checkpoint needs besides weights to rebuild the model without the data: labels, widths, schema."""
    return {"labels": list(exp.data.labels), "in_dims": dict(exp.builder.dims), "schema": exp.schema.to_state()}
