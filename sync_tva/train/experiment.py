"""Assemble an experiment from a config (data, graph schema and builder, model, device) and the trained-model container."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from ..config import Config
from ..device import resolve_device
from ..errors import ConfigError, DataError
from ..features import load_dataset
from ..graphs import GraphSchema, get_builder, load_schema
from ..graphs.builder import UtteranceGraphBuilder
from ..models import GraphModel, InputNormalizer, build_model, normalize_speakers, speaker_normalizer
from ..records import SPLITS, DatasetSplits, Utterance

__all__ = ["TrainedModel", "Experiment", "build_experiment", "seed_everything", "checkpoint_extra", "speaker_normalized"]


@dataclass(kw_only=True)
class TrainedModel:
    """A model with what it takes to feed it: config, label names, schema (restricted to the chosen
    modalities), graph builder and device; ``checkpoint`` is where it was loaded from (None: built here)."""

    cfg: Config
    labels: tuple[str, ...]
    schema: GraphSchema
    builder: UtteranceGraphBuilder
    model: GraphModel
    device: torch.device
    checkpoint: Path | None = None
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
        where = f", checkpoint={str(self.checkpoint)!r}" if self.checkpoint is not None else ""
        return f"{type(self).__name__}({self.cfg.model.name!r}, labels={list(self.labels)}, schema={self.schema.name!r}{where})"


@dataclass(kw_only=True, repr=False)
class Experiment(TrainedModel):
    """A trained model plus the data it trains and evaluates on (``labels`` are ``data.labels``)."""

    data: DatasetSplits


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
    _check_coverage(cfg.model.modalities, data)
    return chosen


MOSTLY_MISSING = 0.5  # a modality with no nodes in more than this share of training utterances is an error


def _no_nodes(utts: list[Utterance], modality: str) -> int:
    """How many of ``utts`` have no ``modality`` node (empty transcript, failed or absent media)."""
    return sum(1 for u in utts if modality not in u.features or len(u.features[modality]) == 0)


def _check_coverage(modalities: list[str], data: DatasetSplits) -> None:
    """A modality missing from most training utterances is a DataError naming the modalities to use; fewer, a counted warning."""
    n_train = max(len(data.train), 1)
    share = {m: _no_nodes(data.train, m) / n_train for m in modalities}
    lacking = [m for m in modalities if share[m] > MOSTLY_MISSING]
    if lacking:
        usable = [m for m in modalities if m not in lacking]
        fix = f"set model.modalities=[{','.join(usable)}]" if usable else "check data.root and data.media"
        counts = ", ".join(f"{m} in {share[m]:.0%}" for m in lacking)
        raise DataError(
            f"data set {data.name!r}: {len(data.train)} training utterances, of which those with no nodes: {counts} "
            f"(more than {MOSTLY_MISSING:.0%}): the data lacks that modality; {fix}"
        )
    for m in modalities:
        counts = {s: _no_nodes(data.split(s), m) for s in SPLITS}
        if any(counts.values()):
            where = ", ".join(f"{n} of {len(data.split(s))} {s}" for s, n in counts.items())
            print(f"warning: data set {data.name!r}: {where} utterances have no {m} nodes "
                  "(empty transcript or failed media); they train and predict without them", file=sys.stderr)


def _check_labels(data: DatasetSplits) -> None:
    """Name the labels that no training utterance carries: the model can hardly predict them."""
    seen = {u.label for u in data.train}
    unseen = [name for i, name in enumerate(data.labels) if i not in seen]
    if unseen and data.train:
        print(f"warning: data set {data.name!r}: labels {unseen} have no training example; "
              "the model will hardly ever predict them", file=sys.stderr)


def build_experiment(cfg: Config, data: DatasetSplits | None = None) -> Experiment:
    """Load the data (unless given), build the schema, builder and a freshly seeded model."""
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    data = data if data is not None else load_dataset(cfg)
    dims = _check_modalities(cfg, data)
    _check_labels(data)
    schema = load_schema(cfg.graph.schema).restrict(cfg.model.modalities)
    builder = get_builder(cfg.graph.builder)(schema, dims)
    seed_everything(cfg.seed)
    model = build_model(schema, dims, len(data.labels), cfg.model)
    norm = speaker_normalizer(model)
    if norm is not None:
        norm.fit(u.features for u in data.train)  # pooled statistics of the raw training features
    data = speaker_normalized(model, data)
    for module in model.modules():
        if isinstance(module, InputNormalizer):
            module.fit(u.features for u in data.train)  # statistics of the training split only
    device = resolve_device(cfg.train.device, "train.device")
    return Experiment(
        cfg=cfg, labels=tuple(data.labels), schema=schema, builder=builder, model=model.to(device), device=device,
        text_encoder=data.text_encoder, data=data,
    )


def speaker_normalized(model: nn.Module, data: DatasetSplits) -> DatasetSplits:
    """With ``model.normalize_by=speaker`` (its training statistics fitted): each split standardised per
    speaker with that split's own features (labels are never read), and a note naming who leans on the
    training statistics; otherwise ``data`` itself. ``model`` may be the ``SpeakerNormalizer`` alone."""
    norm = speaker_normalizer(model)
    if norm is None:
        return data
    splits = {}
    for name in SPLITS:
        splits[name], stats = normalize_speakers(model, data.split(name))
        if stats is not None and stats.shrunk():
            print(f"note: speaker normalisation, {name}: {len(stats.shrunk())} of {len(stats.weight)} speakers have fewer than "
                  f"{norm.min_utterances} utterances and lean on the training statistics ({', '.join(stats.shrunk()[:5])}"
                  f"{', ...' if len(stats.shrunk()) > 5 else ''})", file=sys.stderr)
    return replace(data, **splits)


def checkpoint_extra(trained: TrainedModel) -> dict:
    """What a checkpoint needs besides weights to rebuild the model without the data: labels, widths, schemas."""
    return {
        "labels": list(trained.labels), "in_dims": dict(trained.builder.dims), "schema": trained.schema.to_state(),
        "text_encoder": trained.text_encoder, "model_parts": trained.model.checkpoint_parts(),
    }
