"""Point a trained run at new material: media clips, sentences, CSVs of utterances or conversations.

:class:`Predictor` turns each input into :class:`~sync_tva.records.RawUtterance` records,
extracts their features with exactly the run's extractor settings (``cfg.features``, through
:func:`~sync_tva.features.build_extractors`, :func:`~sync_tva.features.extract` and the run's
feature store), and classifies them with :func:`sync_tva.inference.predict`, the trainer's own
batching and ``collect_logits`` path. Results are typed: the trainer's prediction record
(:class:`~sync_tva.train.loop.Predictions`) in a :class:`PredictionSet`, read per utterance
through a thin :class:`UtterancePrediction` view.

Example::

    predictor = Predictor.from_run("runs/meld")
    predictor.predict_clip("clip.mp4", text="I can't believe you did that!")[0].ranked()
    predictor.predict_csv("new_dialogues.csv").metrics()     # when the CSV has labels

Drawing attention belongs to :mod:`sync_tva.viz` (downstream of this module): pass
``PredictionSet.utterances`` to :func:`sync_tva.viz.extract_attention`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from dgl import DGLHeteroGraph

from .data.csv_reader import dropped_note, read_table, rows_to_records
from .data.ids import check_unique, safe_uid
from .data.registry import get_source
from .errors import DataError
from .features import Extractor, FeatureStore, build_extractors, extract
from .features.pipeline import open_store, read_back
from .features.store import store_key
from .graphs import make_batch, plan_utterances, planned_utterances
from .inference import TrainedModel, load_model, predict
from .models import AttentionMaps, eval_mode, normalize_speakers
from .records import MediaRef, RawSplits, RawUtterance, Utterance, check_utterance
from .train.loop import Predictions
from .train.metrics import Metrics, compute_metrics

__all__ = ["VIDEO_SUFFIXES", "AUDIO_SUFFIXES", "UtterancePrediction", "BatchAttention", "PredictionSet", "Predictor"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")  # clips: their track serves audio, frames visual
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a")  # sound only: no visual nodes


@dataclass
class UtterancePrediction:
    """One utterance's row of a :class:`PredictionSet`: every class's probability and where the input came from;
    the top label, its probability and the runner-up are read from ``probs``."""

    uid: str
    probs: dict[str, float]  # label -> probability, in the run's label order
    text: str = ""
    dialogue: str = ""
    speaker: str = ""
    source: str = ""  # the input file (and CSV row) it came from
    true: str | None = None  # the label given in the input, when it had one
    speaker_weight: float | None = None  # speaker normalisation: share of the speaker's own statistics (0: the training ones); None: not used

    def ranked(self) -> list[tuple[str, float]]:
        """Every ``(label, probability)``, most probable first (ties in label order)."""
        return sorted(self.probs.items(), key=lambda kv: -kv[1])

    @property
    def label(self) -> str:
        """The predicted label."""
        return self.ranked()[0][0]

    @property
    def probability(self) -> float:
        return self.ranked()[0][1]

    @property
    def runner_up(self) -> str:
        """The second most probable label (the top one for a single-class run)."""
        return self.ranked()[min(1, len(self.probs) - 1)][0]

    @property
    def runner_up_probability(self) -> float:
        return self.ranked()[min(1, len(self.probs) - 1)][1]

    def to_dict(self) -> dict:
        """A flat JSON-ready record (one line of ``predictions.jsonl``)."""
        return {
            "uid": self.uid, "dialogue": self.dialogue, "speaker": self.speaker, "text": self.text, "source": self.source,
            "true": self.true, "predicted": self.label, "speaker_weight": self.speaker_weight, "probability": self.probability,
            "runner_up": self.runner_up, "runner_up_probability": self.runner_up_probability, "probs": self.probs,
        }


@dataclass
class BatchAttention:
    """The attention maps of one planned batch (model in eval mode), with the batch's graphs on the CPU.

    ``dialogue`` is the batch's context graph for a context model (its maps then also hold
    ``context``), None for the per-utterance model.
    """

    uids: list[str]
    graph: DGLHeteroGraph
    maps: AttentionMaps
    dialogue: DGLHeteroGraph | None = None


@dataclass
class PredictionSet:
    """Predictions in input order, the featured records they came from, and (on request) attention."""

    labels: tuple[str, ...]
    predictions: Predictions  # the trainer's record, in input order
    items: list[UtterancePrediction]  # one per row of ``predictions``
    utterances: list[Utterance]  # the model's inputs, for sync_tva.viz.extract_attention
    labelled: bool  # whether every input carried a label (metrics() needs it)
    attention: list[BatchAttention] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[UtterancePrediction]:
        return iter(self.items)

    def __getitem__(self, i: int) -> UtterancePrediction:
        return self.items[i]

    def probs(self) -> np.ndarray:
        """Class probabilities ``[N, C]`` in the order of ``labels``."""
        return self.predictions.probs.double().numpy().reshape(-1, len(self.labels))

    def metrics(self) -> Metrics:
        """Accuracy, F1s and confusion matrix against the input's labels (the fields of a run's metrics.json)."""
        if not self.labelled:
            raise DataError("these inputs carry no labels, so there is nothing to score the predictions against")
        return compute_metrics(self.predictions.y_true, self.predictions.y_pred, self.labels)

    def to_frame(self) -> pd.DataFrame:
        """One row per utterance: identity, truth, top two labels, then ``p_<label>`` for every class."""
        rows = []
        for p in self.items:
            row = {k: v for k, v in p.to_dict().items() if k != "probs"}
            row.update({f"p_{name}": p.probs[name] for name in self.labels})
            rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return f"PredictionSet({len(self.items)} utterances, labelled={self.labelled}, labels={list(self.labels)})"


@dataclass
class _Inputs:
    """Raw records to predict, which modalities each one lacks on purpose, and whether they carry labels."""

    name: str  # store data set name: the input's stem and a digest of its content
    records: list[RawUtterance]
    absent: dict[str, list[str]] = field(default_factory=dict)  # uid -> modalities the input cannot supply
    labelled: bool = False


def _store_name(stem: str, records: Sequence[RawUtterance]) -> str:
    """``predict-<stem>-<digest>``: the digest covers each record's text and media (path, size, mtime), so an
    edited transcript or a replaced clip never reads stale features from the store."""
    parts = []
    for r in records:
        media = sorted({str(ref) for ref in (r.audio, r.video) if ref is not None})
        stats = [(str(ref.path.resolve()), ref.path.stat().st_size, ref.path.stat().st_mtime_ns) for ref in (r.audio, r.video)
                 if ref is not None and ref.path.is_file()]
        parts.append([r.uid, r.text, media, stats])
    digest = hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]
    return f"predict-{safe_uid(stem)}-{digest}"


def _unique_uids(stems: Sequence[str]) -> list[str]:
    """File-safe ids from input names; a repeated name gets ``-2``, ``-3``... in input order."""
    seen: Counter[str] = Counter()
    out = []
    for stem in stems:
        uid = safe_uid(stem)
        seen[uid] += 1
        out.append(uid if seen[uid] == 1 else f"{uid}-{seen[uid]}")
    return out


class Predictor:
    """A trained run ready for new inputs; the extractors are loaded once, on the first raw input.

    ``allow_missing=True`` predicts inputs that lack a modality the run was trained with (a
    sentence for a tri-modal run, a WAV for a visual run, a clip that fails to decode) with that
    modality's nodes absent, as training does for failed media; otherwise such an input is a
    :class:`~sync_tva.errors.DataError` naming it.
    """

    def __init__(self, trained: TrainedModel, *, allow_missing: bool = False) -> None:
        self.trained = trained
        self.allow_missing = allow_missing
        self.modalities = list(trained.schema.node_types)
        self._extractors: list[Extractor] | None = None

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best", *, device: str | None = None, allow_missing: bool = False) -> "Predictor":
        """The run's model from ``RUN/checkpoints/<checkpoint>.pt`` alone (see :func:`sync_tva.inference.load_model`)."""
        trained = load_model(run_dir, checkpoint, device=device)
        if trained.cfg.train.num_threads > 0:
            torch.set_num_threads(trained.cfg.train.num_threads)  # as the run did
        return cls(trained, allow_missing=allow_missing)

    def __repr__(self) -> str:
        return f"Predictor({self.trained!r}, modalities={self.modalities}, allow_missing={self.allow_missing})"

    @property
    def labels(self) -> tuple[str, ...]:
        return self.trained.labels

    # --- inputs -----------------------------------------------------------------------------------

    def predict_clip(self, path: str | Path, text: str | None = None, *, attention: bool = False) -> PredictionSet:
        """One media file (a video clip or an audio file) with an optional transcript; a set of one."""
        return self.predict_files([path], [text] if text is not None else None, attention=attention)

    def predict_text(self, text: str | Sequence[str], *, attention: bool = False) -> PredictionSet:
        """One sentence or several, text only (ids ``text``, ``text-2``...)."""
        texts = [text] if isinstance(text, str) else list(text)
        uids = _unique_uids(["text"] * len(texts))
        records = [RawUtterance(uid, uid, "", 0, t, source=f"--text {t!r}") for uid, t in zip(uids, texts)]
        absent = {r.uid: [m for m in self.modalities if m != "text"] for r in records}
        return self._predict_inputs(_Inputs(_store_name("text", records), records, absent), attention)

    def predict_files(self, paths: Sequence[str | Path], texts: Sequence[str] | None = None, *, attention: bool = False) -> PredictionSet:
        """Media files, each its own one-utterance conversation; ``texts`` gives one transcript per file."""
        paths = [Path(p).expanduser() for p in paths]
        if texts is not None and len(texts) != len(paths):
            raise DataError(f"{len(texts)} transcripts for {len(paths)} media files: give one per file")
        records, absent = [], {}
        for i, (path, uid) in enumerate(zip(paths, _unique_uids([p.stem for p in paths]))):
            record, lacks = self._media_record(path, uid, None if texts is None else texts[i])
            records.append(record)
            absent[uid] = lacks
        return self._predict_inputs(_Inputs(_store_name(paths[0].stem if paths else "files", records), records, absent), attention)

    def predict_csv(
        self, path: str | Path, *, media: str | None = None, media_root: str | Path | None = None, attention: bool = False
    ) -> PredictionSet:
        """A CSV of utterances or whole conversations, read with the run's column mapping (``data.columns``).

        ``media`` is a clip path template like ``data.media`` (default: the run's), filled from each
        row and resolved under ``media_root`` (default: the CSV's folder). Without a label column
        (or with it empty) the predictions are unlabelled; with one, :meth:`PredictionSet.metrics` scores them.
        """
        path = Path(path).expanduser()
        d = self.trained.cfg.data
        table = read_table(path)
        template = media if media is not None else d.media
        root = Path(media_root).expanduser() if media_root is not None else path.parent
        label_col = d.columns.label
        labelled = label_col in table.columns and bool(table[label_col].str.strip().ne("").any())
        if not labelled:
            table = table.assign(**{label_col: self.labels[0]})  # a placeholder label; the set is marked unlabelled
        dropped: Counter | None = Counter() if d.other_labels == "drop" else None  # the run's rule for other labels
        records = rows_to_records(table, path, d.columns, self.labels, template, root, dropped=dropped)
        if dropped:
            print(f"note: {path}: {dropped_note(dropped, self.labels)}", file=sys.stderr)
        check_unique(records, str(path))
        absent = {r.uid: self._absent(r, text_given=True) for r in records}
        return self._predict_inputs(_Inputs(_store_name(path.stem, records), records, absent, labelled), attention)

    def predict_utterances(self, utterances: Sequence[Utterance], *, labelled: bool = True, attention: bool = False) -> PredictionSet:
        """Featured records (e.g. ``trained.load_split("test")``), as the model sees them; no extraction."""
        utterances = list(utterances)
        check_unique(utterances, "predict_utterances")
        out = predict(self.trained, utterances)
        by_uid = {uid: i for i, uid in enumerate(out.uids)}
        rows = [by_uid[u.uid] for u in utterances]  # input order, whatever order the batches took
        ordered = Predictions(uids=[out.uids[i] for i in rows], y_true=[out.y_true[i] for i in rows], logits=out.logits[rows])
        probs = ordered.probs.numpy()
        items = [self._item(u, probs[k], labelled) for k, u in enumerate(utterances)]
        maps = self._attention(utterances) if attention else None
        return PredictionSet(labels=self.labels, predictions=ordered, items=items, utterances=utterances, labelled=labelled, attention=maps)

    # --- internals --------------------------------------------------------------------------------

    def _media_record(self, path: Path, uid: str, text: str | None) -> tuple[RawUtterance, list[str]]:
        """The record of one media file and the modalities it cannot supply."""
        suffix = path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
            raise DataError(
                f"{path}: unknown file type {path.suffix or '(none)'!r}; give a video clip ({', '.join(VIDEO_SUFFIXES)}), "
                f"an audio file ({', '.join(AUDIO_SUFFIXES)}) or a .csv of utterances"
            )
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        ref = MediaRef(path)
        video = ref if suffix in VIDEO_SUFFIXES else None
        record = RawUtterance(uid, uid, "", 0, text or "", audio=ref, video=video, source=str(path))
        return record, self._absent(record, text_given=text is not None)

    def _absent(self, record: RawUtterance, *, text_given: bool) -> list[str]:
        """The run's modalities that ``record`` cannot supply at all (a failed decode is found later)."""
        has = {"text": text_given, "audio": record.audio is not None, "visual": record.video is not None}
        return [m for m in self.modalities if not has[m]]

    def _check_raw_run(self) -> None:
        """Raw inputs need a run whose features came from the extractors, not from a feature-ready source."""
        name = self.trained.cfg.data.name
        if get_source(name).kind != "raw":
            raise DataError(
                f"run {self.trained.checkpoint.parents[1]} was trained on data.name={name!r}, whose features do not come "
                "from media extractors; new clips, sentences and CSVs need a run on raw media (csv, meld, iemocap). "
                "Predict featured records with Predictor.predict_utterances"
            )

    def _refuse_absent(self, inputs: _Inputs) -> None:
        """A DataError naming the inputs that lack a modality the run needs, unless ``allow_missing``."""
        lacking = {r.source: inputs.absent[r.uid] for r in inputs.records if inputs.absent.get(r.uid)}
        if lacking and not self.allow_missing:
            shown = "; ".join(f"{src} has no {', '.join(mods)}" for src, mods in list(lacking.items())[:5])
            more = f" (and {len(lacking) - 5} more)" if len(lacking) > 5 else ""
            raise DataError(
                f"the run needs {self.modalities}, but {shown}{more}. Give the missing input (a clip for audio and visual, "
                "--text for text, --media TEMPLATE for a CSV's clips) or pass allow_missing (--allow-missing) to predict with those nodes absent"
            )

    def extractors(self) -> list[Extractor]:
        """The run's extractors (``cfg.features``), loaded on first use and kept."""
        if self._extractors is None:
            self._extractors = build_extractors(self.trained.data_config(), self.modalities)
        return self._extractors

    def _predict_inputs(self, inputs: _Inputs, attention: bool) -> PredictionSet:
        self._check_raw_run()
        if not inputs.records:
            raise DataError(f"{inputs.name}: no utterances to predict")
        self._refuse_absent(inputs)
        utterances, weights = self._speaker_normalized(self._featurize(inputs))
        result = self.predict_utterances(utterances, labelled=inputs.labelled, attention=attention)
        by_uid = {r.uid: r.source for r in inputs.records}
        for item in result.items:
            item.source = by_uid[item.uid]
            item.speaker_weight = weights.get(item.uid)
        return result

    def _speaker_normalized(self, utterances: list[Utterance]) -> tuple[list[Utterance], dict[str, float]]:
        """With a run that normalises by speaker: the inputs given together standardised per named speaker,
        and each utterance's share of its speaker's own statistics; a note names who leans on the training ones."""
        normalized, stats = normalize_speakers(self.trained.model, utterances)
        if stats is None:
            return normalized, {}
        shrunk = stats.shrunk()
        if shrunk:
            shown = ", ".join(f"{s} ({stats.utterances[s]} utterance{'s' if stats.utterances[s] > 1 else ''})" for s in shrunk[:5])
            print(f"note: speaker normalisation: {shown}{' ...' if len(shrunk) > 5 else ''}: too few utterances of the speaker among "
                  "these inputs, normalised (partly) with the training statistics; name the speaker in a CSV with more of their "
                  "clips for their own", file=sys.stderr)
        return normalized, {u.uid: stats.weight[u.speaker or "(unnamed)"] for u in utterances}

    def _featurize(self, inputs: _Inputs) -> list[Utterance]:
        """Extract into the run's feature store (cached files are reused), then read each record back."""
        cfg = self.trained.cfg
        extractors = self.extractors()
        store = open_store(cfg)
        raw = RawSplits(name=inputs.name, labels=self.labels, train=[], dev=[], test=inputs.records)
        extract(raw, extractors, store, chunk=cfg.features.chunk, progress=cfg.features.progress)
        failures = {(f["uid"], f["extractor"]): f for f in store.failures() if f["dataset"] == inputs.name and f["split"] == "test"}
        return [self._read_back(r, inputs, extractors, store, failures) for r in inputs.records]

    def _read_back(
        self, record: RawUtterance, inputs: _Inputs, extractors: list[Extractor], store: FeatureStore, failures: dict
    ) -> Utterance:
        """The model's record of ``record``: stored features; zero nodes where a modality is absent (allowed)."""
        utt, missing = read_back(inputs.name, "test", record, extractors, store)
        by_modality = {ex.modality: ex for ex in extractors}
        for modality in missing:
            if modality in inputs.absent.get(record.uid, []):
                continue
            key = store_key(modality, by_modality[modality].fingerprint)
            failure = failures.get((record.uid, key), {})
            path = failure.get("path", record.source)
            why = failure.get("reason", "extraction failed") + ("" if path == record.source else f" ({path})")
            if not self.allow_missing:
                raise DataError(f"{record.source}: cannot extract {modality}: {why}; pass allow_missing (--allow-missing) to predict without it")
            print(f"warning: {record.source}: no {modality} nodes: {why}", file=sys.stderr)
        check_utterance(utt, len(self.labels), record.source)
        return utt

    def _item(self, utt: Utterance, probs: np.ndarray, labelled: bool) -> UtterancePrediction:
        return UtterancePrediction(
            uid=utt.uid, probs={name: float(p) for name, p in zip(self.labels, probs)},
            text=utt.text, dialogue=utt.dialogue, speaker=utt.speaker,
            true=self.labels[utt.label] if labelled else None,
        )

    @property
    def reads_conversations(self) -> bool:
        """Whether the run's model reads each utterance with its conversation (a context model)."""
        return self.trained.model.needs_dialogue

    def planned_batches(self, utterances: Sequence[Utterance]) -> list[list[Utterance]]:
        """The utterances of each batch as prediction batches them: whole dialogues together for a context model.

        Anything that runs the model on part of a prediction set (drawings, attention) batches
        through this, so a conversation is never cut from its context.
        """
        context = self.trained.model.dialogue_builder()
        return planned_utterances(utterances, plan_utterances(utterances, self.trained.cfg.train.batch_size, context=context))

    @torch.no_grad()
    def _attention(self, utterances: list[Utterance]) -> list[BatchAttention]:
        """Attention maps per planned batch, batched as :func:`sync_tva.inference.predict` batches them."""
        trained, out = self.trained, []
        context = trained.model.dialogue_builder()
        for chunk in self.planned_batches(utterances):
            batch = make_batch(chunk, trained.builder, context=context)
            on = batch.to(trained.device)
            with eval_mode(trained.model):
                result = trained.model(on.graph, dialogue=on.dialogue, return_attention=True)
            out.append(BatchAttention(uids=batch.uids, graph=batch.graph, maps=result.attention, dialogue=batch.dialogue))
        return out
