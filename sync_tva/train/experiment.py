"""Assemble an experiment from a config: data, graph schema and builder, model, device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Config, config_from_dict
from ..data import DatasetSplits, load_dataset
from ..device import resolve_device
from ..errors import CheckpointError, ConfigError, DataError
from ..graphs import GraphSchema, get_builder, load_schema
from ..graphs.builder import UtteranceGraphBuilder
from ..models import SyncTVA
from .checkpoint import load_checkpoint

__all__ = ["Experiment", "build_experiment", "load_run", "seed_everything"]


@dataclass
class Experiment:
    """Everything a run trains and evaluates; ``schema`` is already restricted to the chosen modalities."""

    cfg: Config
    data: DatasetSplits
    schema: GraphSchema
    builder: UtteranceGraphBuilder
    model: SyncTVA
    device: torch.device


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
    model = SyncTVA(schema, dims, len(data.labels), cfg.model)
    device = resolve_device(cfg.train.device, "train.device")
    return Experiment(cfg=cfg, data=data, schema=schema, builder=builder, model=model.to(device), device=device)


def load_run(run_dir: str | Path, checkpoint: str = "best") -> Experiment:
    """Rebuild a run's experiment from the config stored in ``checkpoints/<checkpoint>.pt`` and load its weights."""
    path = Path(run_dir) / "checkpoints" / f"{checkpoint}.pt"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a finished run (no {path.relative_to(run_dir)})")
    ckpt = load_checkpoint(path)
    exp = build_experiment(config_from_dict(ckpt["config"], str(path)))
    try:
        exp.model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model its config builds ({exc})") from None
    exp.model.eval()
    return exp
