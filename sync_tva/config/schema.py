"""The typed config tree: one dataclass per section, every default commented, every range declared.

Numeric ranges are declared on the field (``bounded(default, RULE)``, see :mod:`.ranges`) and
checked, with the dotted key in the message, when a :class:`Config` is built; rules that span
several fields are each section's ``check_rules``. A key only some data sources or models read
is declared ``owned_by`` them, and a field the code sets is ``derived`` (see :mod:`.owners`).
Reading YAML and overrides is :mod:`.loader`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal, Optional, Union

from ..errors import ConfigError
from .owners import check_owned, derived, owned_by, reads
from .ranges import (
    AT_LEAST_ONE,
    AT_LEAST_TWO,
    DROPOUT,
    NON_NEGATIVE,
    OPEN_UNIT,
    POSITIVE,
    UNIT,
    Section,
    bounded,
)

__all__ = [
    "MODALITIES",
    "RESULT_NEUTRAL_KEYS",
    "AudioFeaturesConfig",
    "ColumnsConfig",
    "Config",
    "DataConfig",
    "DemoConfig",
    "DialogueConfig",
    "FeaturesConfig",
    "FinetuneConfig",
    "GraphConfig",
    "ModelConfig",
    "TextFeaturesConfig",
    "TrainConfig",
    "VisualFeaturesConfig",
]

MODALITIES = ("text", "audio", "visual")

# Keys that cannot change what a run computes, so a resumed run may differ from the interrupted
# one in them (sync_tva.train.checkpoint compares every other key and refuses on a difference).
RESULT_NEUTRAL_KEYS = frozenset(
    {
        "train.epochs",  # raising the bound is how an interrupted or finished run is continued
        "train.resume",  # whether to resume at all
        "train.device",  # where the same computation runs
        "train.num_threads",  # how many CPU threads run it
        "train.prefetch_workers",  # who builds the same batches' graphs
        "features.progress",  # a progress bar on stderr
        "features.device",  # where the encoders run; the store is keyed by the extractors' fingerprints
        "features.shard",  # which part of the extraction this process does
        "features.chunk",  # how many utterances go to the extractors at a time
        "features.store",  # where cached features live, not what they are
    }
)


def _check_node_range(key: str, value: list[int]) -> None:
    """A ``[min, max]`` count range: two entries with ``0 < min <= max``."""
    if len(value) != 2 or not 0 < value[0] <= value[1]:
        raise ConfigError(f"{key}: {value!r} must satisfy [min, max] with 0 < min <= max")


@dataclass
class DemoConfig(Section):
    """Size and difficulty of the built-in synthetic corpus (see ``sync_tva.data.synthetic``)."""

    n_dialogues: int = bounded(160, AT_LEAST_ONE)  # conversations in the corpus, split into train/dev/test
    min_turns: int = bounded(6, AT_LEAST_ONE)  # fewest utterances in one conversation
    max_turns: int = bounded(14, AT_LEAST_ONE)  # most utterances in one conversation
    text_dim: int = bounded(48, POSITIVE)  # width of a text node feature
    audio_dim: int = bounded(32, POSITIVE)  # width of an audio node feature
    visual_dim: int = bounded(48, POSITIVE)  # width of a visual node feature
    text_nodes: list[int] = field(default_factory=lambda: [8, 32])  # [min, max] text nodes per utterance
    audio_nodes: list[int] = field(default_factory=lambda: [4, 16])  # [min, max] audio nodes per utterance
    visual_nodes: list[int] = field(default_factory=lambda: [4, 16])  # [min, max] visual nodes per utterance
    signal_fraction: float = bounded(0.5, UNIT)  # share of a modality's nodes that carry its cue; the rest are noise
    noise: float = bounded(1.0, NON_NEGATIVE)  # standard deviation of the Gaussian noise on every node
    split: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])  # train/dev/test share of dialogues
    cueless_share: float = bounded(0.0, UNIT)  # share of turns without cues that repeat their speaker's previous emotion (dialogues become two-party); 0: off

    def check_rules(self, prefix: str) -> None:
        """Turn and node ranges are ``[min, max]``; the split is three positive shares summing to 1."""
        if self.min_turns > self.max_turns:
            rule = f"min_turns <= max_turns={self.max_turns}"
            raise ConfigError(f"{prefix}.min_turns: {self.min_turns} must satisfy {rule}")
        for name in ("text_nodes", "audio_nodes", "visual_nodes"):
            _check_node_range(f"{prefix}.{name}", getattr(self, name))
        split = self.split
        if len(split) != 3 or min(split) <= 0 or not math.isclose(sum(split), 1.0, abs_tol=1e-6):
            rule = "[train, dev, test] shares > 0 with sum 1"
            raise ConfigError(f"{prefix}.split: {split!r} must satisfy {rule}")


@dataclass
class ColumnsConfig(Section):
    """Which CSV columns hold what (data.name=csv and meld)."""

    text: str = "Utterance"  # the transcript
    label: str = "Emotion"  # the emotion name
    speaker: str = "Speaker"  # the speaker name
    dialogue: Union[str, list[str]] = "Dialogue_ID"  # column(s) whose values together identify the dialogue
    utterance: Union[str, list[str]] = "Utterance_ID"  # column(s) identifying the utterance inside its dialogue
    session: Optional[str] = None  # the recording-session column (the group of run --folds session:K); None: no session column


RAW_READERS = ("csv", "meld", "iemocap")  # the sources that read media files (their own CSVs or folders)


@dataclass
class DataConfig(Section):
    """Which data set to read and how; a key only some sources read is refused under the others."""

    name: str = "demo"  # registered data set: see sync_tva.data.list_datasets()
    root: Optional[str] = owned_by(RAW_READERS, default=None)  # meld, iemocap: the data set folder; csv: the folder relative CSV paths and media are read from
    train: Optional[str] = owned_by(("csv",), default=None)  # training CSV path
    dev: Optional[str] = owned_by(("csv",), default=None)  # dev CSV path (absent: carved from train with dev_fraction)
    test: Optional[str] = owned_by(("csv",), default=None)  # test CSV path
    columns: ColumnsConfig = owned_by(("csv", "meld"), default_factory=ColumnsConfig)  # column mapping of the CSVs (a trained run's CSV predictions read it too)
    labels: Optional[list[str]] = None  # label names in class-index order; None: the data set's own label set
    other_labels: Optional[Literal["error", "drop"]] = owned_by(RAW_READERS, default=None)  # rows labelled outside data.labels: error, or drop (counted in a note); None: the reader's convention (iemocap drops, csv/meld refuse)
    media: Optional[str] = owned_by(("csv",), default=None)  # clip path template, e.g. train_splits/dia{Dialogue_ID}_utt{Utterance_ID}.mp4
    path: Optional[str] = owned_by(("features_pickle",), default=None)  # the pickle file
    layout: Optional[str] = owned_by(("features_pickle",), default=None)  # which tuple layout the pickle has (docs/pickles.md)
    dev_fraction: float = bounded(0.1, OPEN_UNIT)  # share of training dialogues held out (seeded) when a source has no dev split, and in --folds
    test_sessions: list[int] = owned_by(("iemocap",), default_factory=lambda: [5])  # sessions used for testing
    demo: DemoConfig = owned_by(("demo",), default_factory=DemoConfig)  # synthetic corpus settings

    def check_rules(self, prefix: str) -> None:
        """Keys of another source than ``name`` keep their defaults."""
        check_owned(self, prefix, DataConfig())


@dataclass
class FinetuneConfig(Section):
    """Fine-tuning the text encoder as an utterance classifier before extraction (see ``sync_tva.features.finetune``)."""

    epochs: int = bounded(0, NON_NEGATIVE)  # training epochs on the train split's labels; 0 keeps the frozen encoder
    context_turns: int = derived(0, "mirrors features.text.context_turns, which sets the turns for fine-tuning and extraction alike")  # always features.text.context_turns (set as the config is built); kept here so the fine-tuning request key of a stored encoder is unchanged
    lr: float = bounded(5e-5, POSITIVE)  # AdamW peak learning rate
    weight_decay: float = bounded(1e-2, NON_NEGATIVE)  # AdamW weight decay on weight matrices (never on biases or LayerNorm)
    warmup: float = bounded(0.1, UNIT)  # share of the steps with a linear warm-up; the rest decays linearly to 0
    batch_size: int = bounded(16, AT_LEAST_ONE)  # utterances per optimiser step
    max_length: int = bounded(128, AT_LEAST_ONE)  # tokens per input (context and utterance together; the tokenizer truncates)
    seed: int = bounded(0, NON_NEGATIVE)  # head initialisation, dropout and shuffling; independent of the run seed
    folder: Optional[str] = derived(None, "is set from a trained run's checkpoint; to extract with an encoder folder of your own, set features.text.model=DIR and features.text.finetune.epochs=0")  # the fine-tuned encoder a trained run's features came from (sync_tva.inference sets it, so its training data is not needed); None: fine-tune or find it in the store


@dataclass
class TextFeaturesConfig(Section):
    """Text extractor: a transformers encoder's token states (see ``sync_tva.features.text``)."""

    model: str = "roberta-large"  # hub name (must be in the Hugging Face cache offline) or a local directory
    nodes: Literal["tokens", "utterance"] = "tokens"  # tokens: a node per token (group); utterance: one mean vector
    max_nodes: int = bounded(0, NON_NEGATIVE)  # tokens: group contiguous tokens into at most this many nodes; 0 keeps every token
    max_length: int = bounded(128, AT_LEAST_ONE)  # tokens kept per utterance (the tokenizer truncates)
    batch_size: int = bounded(16, AT_LEAST_ONE)  # utterances per encoder forward pass
    context_turns: int = bounded(0, NON_NEGATIVE)  # previous turns of the dialogue ("speaker: text") given as a first segment, when fine-tuning and when extracting; text nodes stay the utterance's tokens
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # fine-tune the encoder first (epochs > 0)

    def __post_init__(self) -> None:
        """Fine-tuning reads the same context turns as extraction: one setting, mirrored into ``finetune``."""
        if self.finetune.context_turns != self.context_turns:
            self.finetune = replace(self.finetune, context_turns=self.context_turns)  # a copy: a shared section stays as it was


@dataclass
class VisualFeaturesConfig(Section):
    """Visual extractor: a backbone's embeddings of sampled frames or of the faces in them (see ``sync_tva.features.visual``)."""

    backbone: str = "resnet50"  # torchvision classification model name, fer_mini_xception (FER2013 expression CNN), or module:function (see sync_tva.features.backbones)
    weights: Optional[str] = "IMAGENET1K_V2"  # torchvision backbones: weights enum name (file in the torch cache) or a local state-dict file; null: random init (seeded); ignored by fer_mini_xception and module:function
    expression_probs: bool = False  # fer_mini_xception: append the 7 FER2013 expression probabilities to its 128-d features
    face: Literal["none", "mtcnn"] = "none"  # none: the whole frame (centre crop); mtcnn: the largest face of each frame (needs the faces extra)
    face_margin: float = bounded(0.2, NON_NEGATIVE)  # mtcnn: margin added on each side, as a share of the face box, before squaring it
    no_face: Literal["frame", "drop"] = "frame"  # mtcnn: a frame without a face gives the whole frame (frame) or no node (drop); both are counted
    min_face: int = bounded(20, AT_LEAST_ONE)  # mtcnn: smallest face side in pixels of the decoded frame
    fps: float = bounded(2.0, POSITIVE)  # frames sampled per second of the clip
    max_frames: int = bounded(16, AT_LEAST_ONE)  # most frames per utterance; longer clips are sampled evenly
    image_size: int = bounded(224, POSITIVE)  # torchvision backbones: crop side fed to the network (the shorter side is resized to 8/7 of it)
    thumbnail: int = bounded(48, NON_NEGATIVE)  # side in pixels of the crop thumbnail stored with each node, for drawings and the explorer; 0: none
    batch_size: int = bounded(32, AT_LEAST_ONE)  # frames per forward pass


@dataclass
class AudioFeaturesConfig(Section):
    """Audio extractor: openSMILE descriptors or a speech encoder's frame states (see ``sync_tva.features.audio``, ``.speech``)."""

    encoder: Literal["opensmile", "transformers"] = "opensmile"  # opensmile: descriptors (feature_set); transformers: a speech encoder's hidden states (model, layer)
    feature_set: Literal["ComParE_2016", "eGeMAPSv02"] = "ComParE_2016"  # openSMILE feature set
    level: Literal["frames", "functionals"] = "frames"  # frames: pooled LLD windows as nodes; functionals: one node
    window_s: float = bounded(0.5, POSITIVE)  # frames: seconds of low-level descriptors averaged into one node
    max_nodes: int = bounded(32, NON_NEGATIVE)  # frames: most nodes per utterance (windows widen to fit); 0: no limit
    sample_rate: int = bounded(16000, POSITIVE)  # audio is resampled to this rate (mono) before openSMILE or the speech encoder (which must expect it)
    model: str = "microsoft/wavlm-base-plus"  # transformers: hub name (must be in the Hugging Face cache) or a local directory (wav2vec 2.0, HuBERT, WavLM, data2vec-audio)
    layer: Union[int, list[int]] = -1  # transformers: hidden state taken (0: CNN features, N: layer N, -1: last), or a list of them averaged, e.g. [6,7,8,9]
    chunk_s: float = bounded(20.0, POSITIVE)  # transformers: longest stretch of audio in one encoder pass; longer clips go in overlapping chunks
    overlap_s: float = bounded(2.0, NON_NEGATIVE)  # transformers: seconds two neighbouring chunks share; each frame comes from the chunk where it sits farther from an edge
    batch_size: int = bounded(8, AT_LEAST_ONE)  # transformers: chunks per encoder pass, padded with a mask; encoders whose states padding moves (group norm, data2vec-audio) take one at a time (docs/features.md)

    def check_rules(self, prefix: str) -> None:
        """Chunks must advance; a layer list is non-empty; openSMILE's functionals have no speech-encoder counterpart."""
        if self.overlap_s >= self.chunk_s:
            raise ConfigError(f"{prefix}.overlap_s: {self.overlap_s!r} must satisfy overlap_s < chunk_s={self.chunk_s!r}")
        if isinstance(self.layer, list) and not self.layer:
            raise ConfigError(f"{prefix}.layer: [] must name at least one hidden state, e.g. -1 or [6,7,8,9]")
        if self.encoder == "transformers" and self.level == "functionals":
            raise ConfigError(
                f"{prefix}.level: functionals are openSMILE's utterance statistics; with {prefix}.encoder=transformers "
                f"use level=frames ({prefix}.max_nodes=1 gives one node, the mean of every frame)"
            )


@dataclass
class FeaturesConfig(Section):
    """Raw media to cached node features: extractors, feature store, device and sharding."""

    store: str = "~/.cache/sync_tva/features"  # feature store folder, shared by extract and run
    device: str = "auto"  # auto, cpu, cuda or cuda:N for the encoders
    shard: Optional[str] = None  # "i/n" (0-based i): extract only this shard of the utterances
    progress: bool = True  # show a progress bar with ETA on stderr
    chunk: int = bounded(64, AT_LEAST_ONE)  # utterances handed to the extractors at a time (progress and store writes); text/visual/audio batch sizes stay per extractor
    text: TextFeaturesConfig = field(default_factory=TextFeaturesConfig)  # text extractor
    visual: VisualFeaturesConfig = field(default_factory=VisualFeaturesConfig)  # visual extractor
    audio: AudioFeaturesConfig = field(default_factory=AudioFeaturesConfig)  # audio extractor


@dataclass
class GraphConfig(Section):
    """Which graph schema turns an utterance into a heterograph."""

    schema: str = "utterance"  # schema name (sync_tva/graphs/schemas/NAME.yaml) or a path to a YAML file
    builder: str = "utterance"  # registered builder: utterance (node per piece) or pooled (node per modality)


@dataclass
class DialogueConfig(Section):
    """The dialogue model (model.name=sync_tva_dialogue): graph attention over each dialogue's utterances."""

    schema: str = "dialogue"  # dialogue schema name (sync_tva/graphs/schemas/dialogue/NAME.yaml) or a path to a YAML file
    layers: int = bounded(2, NON_NEGATIVE)  # graph-attention layers over the dialogue; 0 gives back the per-utterance model
    heads: Optional[int] = bounded(None, POSITIVE)  # heads per relation's GATConv; None: model.heads; must divide model.hidden
    past: int = bounded(8, NON_NEGATIVE)  # earlier turns of the dialogue each utterance hears; 0: none
    future: int = bounded(4, NON_NEGATIVE)  # later turns it hears; 0: an online model that never looks ahead
    speakers: bool = True  # split each direction into same-speaker and other-speaker relations
    sequence: Literal["gru", "none"] = "gru"  # a GRU over each dialogue's turns before the graph layers (bidirectional unless future=0); none: graph only


BLOCK_HEADS = ("msde_heads", "gat_heads", "caf_heads")  # the encoder's attention blocks; each takes model.heads unless set


@dataclass
class ModelConfig(Section):
    """Sync-TVA architecture and its ablation switches; a key only some models read is refused under the others."""

    name: str = "sync_tva"  # registered model (sync_tva.models.list_models())
    modalities: list[str] = field(default_factory=lambda: list(MODALITIES))  # non-empty subset of text/audio/visual
    hidden: int = bounded(64, POSITIVE)  # model width shared by all blocks
    heads: int = bounded(4, POSITIVE)  # attention heads of every block whose own count is unset (msde_heads, gat_heads, caf_heads, dialogue.heads)
    msde: bool = True  # modality-specific dynamic enhancement; off = a linear projection only
    msde_heads: Optional[int] = bounded(None, POSITIVE)  # heads of the MSDE self-attention; None: model.heads; must divide hidden
    gat_layers: int = bounded(2, NON_NEGATIVE)  # heterogeneous GAT layers (0 allowed)
    gat_heads: Optional[int] = bounded(None, POSITIVE)  # heads per GATConv; None: model.heads; must divide hidden
    caf: bool = True  # cross-modal attention fusion; off = concatenation of the pooled summaries
    caf_heads: Optional[int] = bounded(None, POSITIVE)  # heads of the CAF cross-attention; None: model.heads; must divide hidden
    dropout: float = bounded(0.1, DROPOUT)  # dropout on features in every block
    attn_dropout: float = bounded(0.0, DROPOUT)  # dropout on GAT attention coefficients
    gat_impl: Literal["fused", "per_relation"] = "fused"  # fused: all relations of a GAT layer in one pass; per_relation: one GATConv each (the reference)
    normalize: Literal["standard", "robust", "none"] = "standard"  # input normalisation per modality and feature, fitted on the training split
    normalize_by: Literal["none", "speaker"] = "none"  # speaker: standardise each modality per speaker with that speaker's own statistics in the same split (features only, never labels), before model.normalize
    speaker_modalities: list[str] = field(default_factory=lambda: ["audio", "visual"])  # speaker: the modalities standardised per speaker (not text: words are not a trait of the speaker)
    speaker_min_utterances: int = bounded(8, AT_LEAST_TWO)  # speaker: a speaker with fewer utterances in a split is shrunk toward the training statistics (one utterance: the training statistics alone)
    dialogue: DialogueConfig = owned_by(("sync_tva_dialogue",), default_factory=DialogueConfig)  # the dialogue model's graph over each conversation

    def __post_init__(self) -> None:
        """Head counts left unset (None) take ``heads`` now, so every reader sees a number."""
        for name in BLOCK_HEADS:
            if getattr(self, name) is None:
                setattr(self, name, self.heads)
        if self.dialogue.heads is None:
            self.dialogue = replace(self.dialogue, heads=self.heads)  # a copy: a shared section stays as it was

    def check_rules(self, prefix: str) -> None:
        """Keys of other models keep their defaults; modalities are a non-empty subset without repeats; the heads of every block built divide ``hidden``."""
        check_owned(self, prefix, ModelConfig(heads=self.heads))
        mods = self.modalities
        if not mods:
            raise ConfigError(f"{prefix}.modalities: must name at least one of text, audio, visual")
        for m in mods:
            if m not in MODALITIES:
                choices = list(MODALITIES)
                raise ConfigError(f"{prefix}.modalities: unknown modality {m!r}; choose from {choices}")
        if len(set(mods)) != len(mods):
            raise ConfigError(f"{prefix}.modalities: repeated modality in {mods}")
        for m in self.speaker_modalities:
            if m not in MODALITIES:
                raise ConfigError(f"{prefix}.speaker_modalities: unknown modality {m!r}; choose from {list(MODALITIES)}")
        heads = {name: getattr(self, name) for name in BLOCK_HEADS}
        if reads(self, "dialogue"):  # validated only for a model that builds the dialogue layers
            heads["dialogue.heads"] = self.dialogue.heads
        for name, count in heads.items():  # hidden > 0 passed already: blame the heads
            if self.hidden % count:
                raise ConfigError(
                    f"{prefix}.{name}: {count} must divide {prefix}.hidden={self.hidden} "
                    f"(left unset, a block's heads are {prefix}.heads={self.heads})"
                )


@dataclass
class TrainConfig(Section):
    """Optimisation, early stopping and run bookkeeping."""

    epochs: int = bounded(40, AT_LEAST_ONE)  # upper bound on training epochs
    batch_size: int = bounded(32, AT_LEAST_ONE)  # utterances per step
    lr: float = bounded(2e-3, POSITIVE)  # AdamW learning rate
    weight_decay: float = bounded(1e-2, NON_NEGATIVE)  # AdamW weight decay
    patience: int = bounded(8, AT_LEAST_ONE)  # epochs without a better dev weighted F1 before stopping
    loss: Literal["ce", "weighted_ce", "focal"] = "ce"  # weighted_ce uses inverse train class frequencies
    focal_gamma: float = bounded(2.0, NON_NEGATIVE)  # focusing parameter of the focal loss
    grad_clip: float = bounded(1.0, NON_NEGATIVE)  # max gradient norm; 0 disables clipping
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    num_threads: int = bounded(1, NON_NEGATIVE)  # torch CPU threads; 1 holds up when other jobs share the cores, 0 keeps torch's default (one per core)
    modality_dropout: float = bounded(0.0, DROPOUT)  # share of training utterances that lose one of their modalities (at random, never the last) each epoch, so fusion cannot lean on one; 0: off
    prefetch_workers: int = bounded(0, NON_NEGATIVE)  # processes building the next batches' graphs while one trains (same batches, same order); 0: built in the loop
    resume: bool = True  # continue from OUT/checkpoints/last.pt when it exists


@dataclass
class Config(Section):
    """The whole experiment; building one validates every section's ranges and rules."""

    seed: int = bounded(0, NON_NEGATIVE)  # fixes data generation, initialisation and shuffling (numpy needs >= 0)
    data: DataConfig = field(default_factory=DataConfig)  # which data set and how to read it
    graph: GraphConfig = field(default_factory=GraphConfig)  # utterance -> heterograph
    model: ModelConfig = field(default_factory=ModelConfig)  # architecture and ablations
    train: TrainConfig = field(default_factory=TrainConfig)  # optimisation and bookkeeping
    features: FeaturesConfig = field(default_factory=FeaturesConfig)  # raw-media extraction (csv, meld, iemocap)

    def __post_init__(self) -> None:
        """Validate the whole tree as it is built: from a file, a checkpoint or by hand."""
        self.validate("")
