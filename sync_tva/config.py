"""Typed, strict configuration tree: YAML loading, dotted ``key=value`` overrides, validation.

Every experiment is a YAML file over these dataclasses. An unknown or misspelt key, or a
value of the wrong type, is a :class:`ConfigError` that names the source, the dotted key and
the closest valid key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from .errors import ConfigError

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "FeaturesConfig",
    "ModelConfig",
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "config_to_dict",
]

MODALITIES = ("text", "audio", "visual")


@dataclass
class DemoConfig:
    """Size and difficulty of the built-in synthetic corpus (see ``sync_tva.data.synthetic``)."""

    n_dialogues: int = 160  # conversations in the corpus, split into train/dev/test
    min_turns: int = 6  # fewest utterances in one conversation
    max_turns: int = 14  # most utterances in one conversation
    text_dim: int = 48  # width of a text node feature
    audio_dim: int = 32  # width of an audio node feature
    visual_dim: int = 48  # width of a visual node feature
    text_nodes: list[int] = field(default_factory=lambda: [8, 32])  # [min, max] text nodes per utterance
    audio_nodes: list[int] = field(default_factory=lambda: [4, 16])  # [min, max] audio nodes per utterance
    visual_nodes: list[int] = field(default_factory=lambda: [4, 16])  # [min, max] visual nodes per utterance
    signal_fraction: float = 0.5  # share of a modality's nodes that carry its cue; the rest are noise
    noise: float = 1.0  # standard deviation of the Gaussian noise on every node
    split: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])  # train/dev/test share of dialogues


@dataclass
class ColumnsConfig:
    """Which CSV columns hold what (data.name=csv and meld)."""

    text: str = "Utterance"  # the transcript
    label: str = "Emotion"  # the emotion name
    speaker: str = "Speaker"  # the speaker name
    dialogue: Union[str, list[str]] = "Dialogue_ID"  # column(s) whose values together identify the dialogue
    utterance: Union[str, list[str]] = "Utterance_ID"  # column(s) identifying the utterance inside its dialogue


@dataclass
class DataConfig:
    """Which data set to read and how."""

    name: str = "demo"  # registered data set: see sync_tva.data.list_datasets()
    root: Optional[str] = None  # data set folder (meld, iemocap)
    train: Optional[str] = None  # csv: training CSV path
    dev: Optional[str] = None  # csv: dev CSV path (absent: carved from train with dev_fraction)
    test: Optional[str] = None  # csv: test CSV path
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)  # csv: column mapping
    labels: Optional[list[str]] = None  # explicit label order; None: the data set's own label set
    media: Optional[str] = None  # csv: clip path template, e.g. train_splits/dia{Dialogue_ID}_utt{Utterance_ID}.mp4
    path: Optional[str] = None  # features_pickle: the pickle file
    layout: Optional[str] = None  # features_pickle: which tuple layout the pickle has
    dev_fraction: float = 0.1  # share of training dialogues held out (seeded) when a source has no dev split
    test_sessions: list[int] = field(default_factory=lambda: [5])  # iemocap: sessions used for testing
    demo: DemoConfig = field(default_factory=DemoConfig)  # synthetic corpus settings (name=demo)


@dataclass
class TextFeaturesConfig:
    """Text extractor: a transformers encoder's token states (see ``sync_tva.features.text``)."""

    model: str = "roberta-large"  # hub name (must be in the Hugging Face cache offline) or a local directory
    nodes: Literal["tokens", "utterance"] = "tokens"  # tokens: a node per token (group); utterance: one mean vector
    max_nodes: int = 0  # tokens: group contiguous tokens into at most this many nodes; 0 keeps every token
    max_length: int = 128  # tokens kept per utterance (the tokenizer truncates)
    batch_size: int = 16  # utterances per encoder forward pass


@dataclass
class VisualFeaturesConfig:
    """Visual extractor: torchvision ResNet-50 embeddings of sampled frames (see ``sync_tva.features.visual``)."""

    weights: Optional[str] = "IMAGENET1K_V2"  # torchvision ResNet50_Weights name; null: random init (seeded)
    fps: float = 2.0  # frames sampled per second of the clip
    max_frames: int = 16  # most frames per utterance; longer clips are sampled evenly
    image_size: int = 224  # centre-crop side fed to the network (the shorter side is resized to 8/7 of it)
    batch_size: int = 32  # frames per forward pass


@dataclass
class AudioFeaturesConfig:
    """Audio extractor: openSMILE descriptors of the decoded, resampled track (see ``sync_tva.features.audio``)."""

    feature_set: Literal["ComParE_2016", "eGeMAPSv02"] = "ComParE_2016"  # openSMILE feature set
    level: Literal["frames", "functionals"] = "frames"  # frames: pooled LLD windows as nodes; functionals: one node
    window_s: float = 0.5  # frames: seconds of low-level descriptors averaged into one node
    max_nodes: int = 32  # frames: most nodes per utterance (windows widen to fit); 0: no limit
    sample_rate: int = 16000  # audio is resampled to this rate (mono) before openSMILE


@dataclass
class FeaturesConfig:
    """Raw media to cached node features: extractors, feature store, device and sharding."""

    store: str = "~/.cache/sync_tva/features"  # feature store folder, shared by extract and run
    device: str = "auto"  # auto, cpu, cuda or cuda:N for the encoders
    shard: Optional[str] = None  # "i/n" (0-based i): extract only this shard of the utterances
    progress: bool = True  # show a progress bar with ETA on stderr
    text: TextFeaturesConfig = field(default_factory=TextFeaturesConfig)  # text extractor
    visual: VisualFeaturesConfig = field(default_factory=VisualFeaturesConfig)  # visual extractor
    audio: AudioFeaturesConfig = field(default_factory=AudioFeaturesConfig)  # audio extractor


@dataclass
class GraphConfig:
    """Which graph schema turns an utterance into a heterograph."""

    schema: str = "utterance"  # schema name (sync_tva/graphs/schemas/NAME.yaml) or a path to a YAML file
    builder: str = "utterance"  # registered builder: utterance (node per piece) or pooled (node per modality)


@dataclass
class ModelConfig:
    """Sync-TVA architecture and its ablation switches."""

    modalities: list[str] = field(default_factory=lambda: list(MODALITIES))  # non-empty subset of text/audio/visual
    hidden: int = 64  # model width shared by all blocks
    msde: bool = True  # modality-specific dynamic enhancement; off = a linear projection only
    msde_heads: int = 4  # heads of the MSDE self-attention
    gat_layers: int = 2  # heterogeneous GAT layers (0 allowed)
    gat_heads: int = 4  # heads per GATConv; hidden must be divisible by it
    caf: bool = True  # cross-modal attention fusion; off = concatenation of the pooled summaries
    caf_heads: int = 4  # heads of the CAF cross-attention
    dropout: float = 0.1  # dropout on features in every block
    attn_dropout: float = 0.0  # dropout on GAT attention coefficients


@dataclass
class TrainConfig:
    """Optimisation, early stopping and run bookkeeping."""

    epochs: int = 40  # upper bound on training epochs
    batch_size: int = 32  # utterances per step
    lr: float = 2e-3  # AdamW learning rate
    weight_decay: float = 1e-2  # AdamW weight decay
    patience: int = 8  # epochs without a better dev weighted F1 before stopping
    loss: Literal["ce", "weighted_ce", "focal"] = "ce"  # weighted_ce uses inverse train class frequencies
    focal_gamma: float = 2.0  # focusing parameter of the focal loss
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    num_threads: int = 0  # torch CPU threads; 0 keeps torch's default
    resume: bool = True  # continue from OUT/checkpoints/last.pt when it exists


@dataclass
class Config:
    """The whole experiment."""

    seed: int = 0  # fixes data generation, initialisation and shuffling
    data: DataConfig = field(default_factory=DataConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)  # raw-media extraction (csv, meld, iemocap)

    def __post_init__(self) -> None:
        _check_semantics(self)


def _check_semantics(cfg: Config) -> None:
    """Cross-field rules that types alone cannot express."""
    mods = cfg.model.modalities
    if not mods:
        raise ConfigError("model.modalities: must name at least one of text, audio, visual")
    for m in mods:
        if m not in MODALITIES:
            raise ConfigError(f"model.modalities: unknown modality {m!r}; choose from {list(MODALITIES)}")
    if len(set(mods)) != len(mods):
        raise ConfigError(f"model.modalities: repeated modality in {mods}")
    if cfg.model.gat_layers < 0:
        raise ConfigError("model.gat_layers: must be >= 0")
    for key in ("gat_heads", "msde_heads", "caf_heads"):
        heads = getattr(cfg.model, key)
        if heads < 1 or cfg.model.hidden % heads:
            raise ConfigError(f"model.{key}: {heads} must be >= 1 and divide model.hidden={cfg.model.hidden}")
    for key in ("epochs", "batch_size", "patience"):
        if getattr(cfg.train, key) < 1:
            raise ConfigError(f"train.{key}: must be >= 1, got {getattr(cfg.train, key)}")


# ----------------------------------------------------------------------------------------------
# Building dataclasses from plain dicts, strictly.


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against annotation ``tp`` and convert it (dicts become dataclasses)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a mapping, got {value!r}")
        return _build(tp, value, key, source)
    if origin in (Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _convert(value, option, key, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{source}: {key} = {value!r} does not match {_type_name(tp)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{source}: {key} = {value!r} is not one of {list(choices)}{extra}")
        return value
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        return [_convert(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a mapping, got {value!r}")
        return {_convert(k, key_tp, key, source): _convert(v, val_tp, f"{key}.{k}", source) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. a column named 0 or a path given as a number
    if tp in (int, float, str, bool) and (type(value) is not tp):
        raise ConfigError(f"{source}: {key} must be {tp.__name__}, got {value!r} ({type(value).__name__})")
    return value


def _build(cls: type, raw: dict, prefix: str, source: str) -> Any:
    """Instantiate dataclass ``cls`` from ``raw``, rejecting unknown keys with a suggestion."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for name, value in raw.items():
        dotted = f"{prefix}.{name}" if prefix else str(name)
        if name not in names:
            valid = [f"{prefix}.{n}" if prefix else n for n in names]
            hint = difflib.get_close_matches(dotted, valid, n=1, cutoff=0.5)
            extra = f"; did you mean {hint[0]!r}?" if hint else f"; valid keys: {', '.join(valid)}"
            raise ConfigError(f"{source}: unknown key {dotted!r}{extra}")
        kwargs[name] = _convert(value, hints[name], dotted, source)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def config_to_dict(cfg: Any) -> dict:
    """The config as plain YAML-ready data."""
    return dataclasses.asdict(cfg)


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``a.b=value``; the value is read as YAML so ``[text,audio]``, ``3`` and ``null`` work."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. train.epochs=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not YAML: keep the literal string
    return key, value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Merge dotted overrides into a raw config dict (in place) and return it."""
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(raw, key, value)
    return raw


def _deep_merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def config_from_dict(raw: dict, source: str) -> Config:
    """A Config from plain data (e.g. the copy stored in a checkpoint), validated like a file."""
    return _build(Config, raw, "", source)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file's values (``base:`` files first), then the overrides."""
    raw: dict = {}
    source = "defaults"
    if path is not None:
        raw = _read_with_bases(Path(path))
        source = str(path)
    if overrides:
        apply_overrides(raw, overrides)
        source = f"{source} + overrides" if path is not None else "overrides"
    return _build(Config, raw, "", source)


def _read_with_bases(path: Path) -> dict:
    """A config may name ``base: other.yaml`` (relative to itself) to inherit and override."""
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    return _deep_merge(_read_with_bases(path.parent / base), data)
