"""From a raw data set to cached node features: build the extractors, fill the store, read it back.

:func:`extract` is what ``python -m sync_tva.extract`` runs; :func:`load_dataset` is the one
place where a reader meets extraction: for a raw source (csv, meld, iemocap) it runs
:func:`materialize`, so ``python -m sync_tva.run`` on raw data extracts whatever is missing
(same store, same fingerprints) and then trains; a featured source (demo, pickles) is read as is.

Each extractor names its own store folder (:attr:`Extractor.key`) and reads a whole split before
extracting it (:meth:`Extractor.prepare`); the text extractor's fine-tuning is prepared in
:mod:`.finetune`, and shards and ranks come from :mod:`sync_tva.distributed`.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from ..config import Config
from ..data.registry import get_source, read_featured, read_raw
from ..device import resolve_device
from ..distributed import group_shard, in_shard, local_gpu
from ..errors import ConfigError
from ..records import SPLITS, DatasetSplits, RawSplits, RawUtterance, Utterance, check_utterance
from .audio import AudioExtractor
from .base import ExtractionFailure, Extractor
from .finetune import text_extractor
from .speech import SpeechExtractor
from .store import FAILURES, FeatureStore
from .visual import VisualExtractor

__all__ = ["ExtractionReport", "build_extractors", "extract", "load_dataset", "materialize", "open_store", "read_back"]


@dataclass
class ExtractionReport:
    """Utterance counts of one extraction run: computed now, found in the store, or failed (any modality)."""

    extracted: int = 0
    cached: int = 0
    failed: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        """``"0 extracted, 36 cached, 0 failed"``: the line a run prints, so a needless recompute shows."""
        return f"{self.extracted} extracted, {self.cached} cached, {self.failed} failed"


def wanted_modalities(cfg: Config, raw: RawSplits) -> list[str]:
    """The model's modalities that this data set can supply (a text-only CSV gives text only)."""
    available = raw.media_modalities()
    return [m for m in cfg.model.modalities if m in available]


def build_extractors(cfg: Config, modalities: list[str]) -> list[Extractor]:
    """One extractor per modality, models loaded now: missing weights fail before any work starts.

    Audio is openSMILE or, with ``features.audio.encoder=transformers``, a speech encoder; both pool
    frames into the same windows, so nothing downstream knows which one made the nodes. Text is
    read by the fine-tuned encoder when ``features.text.finetune.epochs > 0`` (trained first if not stored).
    """
    device = local_gpu(resolve_device(cfg.features.device, "features.device"))
    audio = cfg.features.audio
    makers = {
        "text": lambda: text_extractor(cfg, device),
        "audio": lambda: SpeechExtractor(audio, device) if audio.encoder == "transformers" else AudioExtractor(audio),
        "visual": lambda: VisualExtractor(cfg.features.visual, device, cfg.seed),
    }
    return [makers[m]() for m in modalities]


def open_store(cfg: Config) -> FeatureStore:
    """The store ``features.store`` names; a file at or above it is a ConfigError now, not a traceback mid-extraction."""
    store = FeatureStore(cfg.features.store)
    blocker = next((p for p in (store.root, *store.root.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"features.store={cfg.features.store}: {blocker} is a file, not a directory; choose another store")
    return store


def _chunks(items: list[RawUtterance], size: int) -> Iterator[list[RawUtterance]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def extract(
    raw: RawSplits,
    extractors: list[Extractor],
    store: FeatureStore,
    shard: tuple[int, int] | None = None,
    chunk: int = 16,
    progress: bool = True,
) -> ExtractionReport:
    """Fill ``store`` with every extractor's features of ``raw`` (this shard's part), skipping stored ones.

    Each utterance's file is written as soon as its chunk is done, so a killed run loses at
    most one chunk. Failures are recorded in the store and listed in ``failures.jsonl``.
    """
    report = ExtractionReport()
    todo = {split: [u for u in utts if in_shard(split, u.uid, shard)] for split, utts in raw.splits().items()}
    total = sum(len(v) for v in todo.values())
    bar = tqdm(total=total, unit="utt", desc=f"extract {raw.name}", disable=not progress, file=sys.stderr)
    for split, utts in todo.items():
        for ex in extractors:
            store.describe(raw.name, split, ex.key, ex.describe())
            ex.prepare(split, raw.splits()[split])  # the whole split, not the shard: context turns cross shards
        for batch in _chunks(utts, chunk):
            computed: set[str] = set()
            failed: set[str] = set()
            for ex in extractors:
                key = ex.key
                pending = [u for u in batch if not store.has(raw.name, split, key, u.uid)]
                if not pending:
                    continue
                for utt, result in zip(pending, ex.extract(pending)):
                    if isinstance(result, ExtractionFailure):
                        store.record_failure(raw.name, split, key, utt.uid, result.path, result.reason)
                        failed.add(utt.uid)
                    else:
                        store.save(raw.name, split, key, utt.uid, result)
                        computed.add(utt.uid)
            for utt in batch:
                if utt.uid in failed:
                    report.failed += 1
                elif utt.uid in computed:
                    report.extracted += 1
                else:
                    report.cached += 1
            bar.update(len(batch))
    bar.close()
    for ex in extractors:
        for note in ex.take_notes():
            print(f"note: {note}", file=sys.stderr)
    store.write_failures_index()
    return report


def read_back(dataset: str, split: str, utt: RawUtterance, extractors: list[Extractor], store: FeatureStore) -> tuple[Utterance, list[str]]:
    """The model's record of ``utt`` from the store, and the modalities it has no stored features for (zero nodes there).

    Callers decide what a missing modality means (training: a counted failure; prediction:
    an error unless allowed) and check the record.
    """
    features: dict[str, np.ndarray] = {}
    spans: dict[str, np.ndarray] = {}
    boxes: dict[str, np.ndarray] = {}
    thumbs: dict[str, np.ndarray] = {}
    tokens: list[str] = []
    missing: list[str] = []
    for ex in extractors:
        key = ex.key
        if not store.has(dataset, split, key, utt.uid):
            features[ex.modality] = np.zeros((0, ex.dim), np.float32)
            missing.append(ex.modality)
            continue
        nodes = store.load(dataset, split, key, utt.uid)
        features[ex.modality] = nodes.feat
        for found, kept in ((nodes.spans, spans), (nodes.boxes, boxes), (nodes.thumbs, thumbs)):
            if found is not None:
                kept[ex.modality] = found
        if ex.modality == "text":
            tokens = nodes.tokens
    record = Utterance(
        utt.uid, utt.dialogue, utt.speaker, utt.label, features, text=utt.text, tokens=tokens, spans=spans, boxes=boxes, thumbs=thumbs,
        session=utt.session,
    )
    return record, missing


def _read_checked(raw: RawSplits, split: str, utt: RawUtterance, extractors: list[Extractor], store: FeatureStore) -> Utterance:
    """:func:`read_back` for training: a failed modality keeps zero nodes; the record is checked."""
    record, _ = read_back(raw.name, split, utt, extractors, store)
    check_utterance(record, len(raw.labels), str(store.path(raw.name, split, "*", utt.uid)))
    return record


def materialize(cfg: Config, raw: RawSplits) -> DatasetSplits:
    """Extract what the store lacks for ``raw`` (all shards), then build the model's DatasetSplits from it.

    Utterances whose media failed keep their other modalities; the failed modality has zero
    nodes, and a summary line on stderr points at ``failures.jsonl``.
    """
    for note in raw.notes:
        print(f"note: {note}", file=sys.stderr)
    wanted = wanted_modalities(cfg, raw)
    if len(wanted) < len(cfg.model.modalities):
        # Say so before hours of extraction, not after (build_experiment would refuse it anyway).
        raise ConfigError(
            f"model.modalities asks for {sorted(set(cfg.model.modalities) - set(wanted))}, but data set {raw.name!r} "
            f"has media for {sorted(raw.media_modalities())}; set model.modalities=[{','.join(wanted) or 'text'}]"
        )
    store = open_store(cfg)
    extractors = build_extractors(cfg, wanted)
    shard = group_shard()
    if shard is not None:
        # A distributed run: this rank's share first; the full pass below then finds the other
        # shares stored, or redoes what a slower rank has not finished (no barrier to time out).
        extract(raw, extractors, store, shard=shard, chunk=cfg.features.chunk, progress=cfg.features.progress)
    report = extract(raw, extractors, store, chunk=cfg.features.chunk, progress=cfg.features.progress)
    print(f"features of {raw.name}: {report.summary()} (store {store.root})", file=sys.stderr)
    if report.failed:
        print(
            f"warning: {report.failed} utterances of {raw.name} could not be extracted for some modality; "
            f"they have no nodes there (see {store.root / FAILURES})",
            file=sys.stderr,
        )
    splits = {s: [_read_checked(raw, s, u, extractors, store) for u in utts] for s, utts in raw.splits().items()}
    tuned = next((str(ex.finetuned) for ex in extractors if ex.finetuned is not None), None)
    return DatasetSplits(name=raw.name, labels=raw.labels, text_encoder=tuned, **splits)


def load_dataset(cfg: Config, splits: Collection[str] = SPLITS) -> DatasetSplits:
    """The model-ready splits of ``data.name``: raw sources go through the feature store first.

    A raw source reads and extracts only ``splits`` (the others come back empty); a featured
    source is read whole.
    """
    if get_source(cfg.data.name).kind == "raw":
        return materialize(cfg, read_raw(cfg, splits))
    return read_featured(cfg)
