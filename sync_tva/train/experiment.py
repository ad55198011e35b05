"""Assemble an experiment from a config: data, graph schema and builder, model, device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Config, load_config
from ..errors import CheckpointError, ConfigError
from ..data import DatasetSplits, load_dataset
from ..graphs import GraphSchema, get_builder, load_schema
from ..graphs.builder import UtteranceGraphBuilder
from ..models import SyncTVA
from .checkpoint import load_checkpoint

__all__ = ["Experiment", "build_experiment", "load_run", "resolve_device", "seed_everything"]


@dataclass
class Experiment:
    """Everything a run trains and evaluates; ``schema`` is already restricted to the chosen modalities."""

    cfg: Config
    data: DatasetSplits
    schema: GraphSchema
    builder: UtteranceGraphBuilder
    model: SyncTVA
    device: torch.device


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but no CUDA GPU is visible; use train.device=cpu or auto")
    return device


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA); data generation and shuffling take their own seeds."""
    torch.manual_seed(seed)


def _check_modalities(cfg: Config, data: DatasetSplits) -> dict[str, int]:
    dims = data.feature_dims()
    missing = [m for m in cfg.model.modalities if m not in dims]
    if missing:
        raise ConfigError(
            f"model.modalities asks for {missing}, but data set {data.name!r} provides only {sorted(dims)}; "
            f"set model.modalities=[{','.join(m for m in cfg.model.modalities if m in dims) or 'text'}]"
        )
    return {m: dims[m] for m in cfg.model.modalities}


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
    device = resolve_device(cfg.train.device)
    return Experiment(cfg=cfg, data=data, schema=schema, builder=builder, model=model.to(device), device=device)


def load_run(run_dir: str | Path, checkpoint: str = "best") -> Experiment:
    """Rebuild a finished run's experiment from ``RUN/config.yaml`` and load ``checkpoints/<checkpoint>.pt``."""
    run_dir = Path(run_dir)
    path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if not (run_dir / "config.yaml").is_file() or not path.is_file():
        raise CheckpointError(f"{run_dir}: not a finished run (needs config.yaml and {path.relative_to(run_dir)})")
    exp = build_experiment(load_config(run_dir / "config.yaml"))
    exp.model.load_state_dict(load_checkpoint(path)["model"])
    exp.model.eval()
    return exp
