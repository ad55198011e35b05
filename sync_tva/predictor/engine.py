"""The prediction engine: raw records through the run's own extractors and model, to a :class:`PredictionSet`.

:class:`Predictor` takes the :class:`~sync_tva.predictor.adapters.Inputs` of an adapter,
extracts their features with exactly the run's extractor settings (``cfg.features``, through
:func:`~sync_tva.features.build_extractors`, :func:`~sync_tva.features.extract` and the run's
feature store), reads them back (a missing modality is refused or, when allowed, left absent),
and classifies them with :func:`sync_tva.inference.predict`, the trainer's own batching and
``collect_logits`` path; attention is taken batch by batch as that path plans the batches.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.ids import check_unique
from ..data.registry import get_source
from ..errors import DataError
from ..features import Extractor, FeatureStore, build_extractors, extract
from ..features.pipeline import open_store, read_back
from ..graphs import make_batch, plan_utterances, planned_utterances
from ..inference import TrainedModel, load_model, predict
from ..models import eval_mode, normalize_speakers
from ..records import RawSplits, RawUtterance, Utterance, check_utterance
from ..train.loop import Predictions
from .adapters import Inputs, csv_inputs, file_inputs, text_inputs
from .results import BatchAttention, PredictionSet, UtterancePrediction

__all__ = ["Predictor"]


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

    # --- inputs: each adapter's records, through the engine ------------------------------------------

    def predict_clip(self, path: str | Path, text: str | None = None, *, attention: bool = False) -> PredictionSet:
        """One media file (a video clip or an audio file) with an optional transcript; a set of one."""
        return self.predict_files([path], [text] if text is not None else None, attention=attention)

    def predict_text(self, text: str | Sequence[str], *, attention: bool = False) -> PredictionSet:
        """One sentence or several, text only (ids ``text``, ``text-2``...)."""
        texts = [text] if isinstance(text, str) else list(text)
        return self.predict_inputs(text_inputs(texts, self.modalities), attention=attention)

    def predict_files(self, paths: Sequence[str | Path], texts: Sequence[str] | None = None, *, attention: bool = False) -> PredictionSet:
        """Media files, each its own one-utterance conversation; ``texts`` gives one transcript per file."""
        inputs = file_inputs([Path(p).expanduser() for p in paths], texts, self.modalities)
        return self.predict_inputs(inputs, attention=attention)

    def predict_csv(
        self, path: str | Path, *, media: str | None = None, media_root: str | Path | None = None, attention: bool = False
    ) -> PredictionSet:
        """A CSV of utterances or whole conversations, read with the run's column mapping (``data.columns``).

        ``media`` is a clip path template like ``data.media`` (default: the run's), filled from each
        row and resolved under ``media_root`` (default: the CSV's folder). Without a label column
        (or with it empty) the predictions are unlabelled; with one, :meth:`PredictionSet.metrics` scores them.
        """
        root = Path(media_root).expanduser() if media_root is not None else None
        inputs = csv_inputs(Path(path).expanduser(), self.trained.cfg.data, self.labels, self.modalities, media=media, media_root=root)
        return self.predict_inputs(inputs, attention=attention)

    def predict_inputs(self, inputs: Inputs, *, attention: bool = False) -> PredictionSet:
        """An adapter's raw records: extracted, read back, normalised by speaker when the run does, predicted."""
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

    # --- the run's extractors and batching, shared with callers --------------------------------------

    def extractors(self) -> list[Extractor]:
        """The run's extractors (``cfg.features``), loaded on first use and kept."""
        if self._extractors is None:
            self._extractors = build_extractors(self.trained.data_config(), self.modalities)
        return self._extractors

    @property
    def reads_conversations(self) -> bool:
        """Whether the run's model reads each utterance with its conversation (a dialogue model)."""
        return self.trained.model.needs_dialogue

    def planned_batches(self, utterances: Sequence[Utterance]) -> list[list[Utterance]]:
        """The utterances of each batch as prediction batches them: whole dialogues together for a dialogue model.

        Anything that runs the model on part of a prediction set (drawings, attention) batches
        through this, so a conversation is never cut apart.
        """
        dialogue_builder = self.trained.model.dialogue_builder()
        return planned_utterances(utterances, plan_utterances(utterances, self.trained.cfg.train.batch_size, dialogue_builder=dialogue_builder))

    # --- internals --------------------------------------------------------------------------------

    def _check_raw_run(self) -> None:
        """Raw inputs need a run whose features came from the extractors, not from a feature-ready source."""
        name = self.trained.cfg.data.name
        if get_source(name).kind != "raw":
            raise DataError(
                f"run {self.trained.checkpoint.parents[1]} was trained on data.name={name!r}, whose features do not come "
                "from media extractors; new clips, sentences and CSVs need a run on raw media (csv, meld, iemocap). "
                "Predict featured records with Predictor.predict_utterances"
            )

    def _refuse_absent(self, inputs: Inputs) -> None:
        """A DataError naming the inputs that lack a modality the run needs, unless ``allow_missing``."""
        lacking = {r.source: inputs.absent[r.uid] for r in inputs.records if inputs.absent.get(r.uid)}
        if lacking and not self.allow_missing:
            shown = "; ".join(f"{src} has no {', '.join(mods)}" for src, mods in list(lacking.items())[:5])
            more = f" (and {len(lacking) - 5} more)" if len(lacking) > 5 else ""
            raise DataError(
                f"the run needs {self.modalities}, but {shown}{more}. Give the missing input (a clip for audio and visual, "
                "--text for text, --media TEMPLATE for a CSV's clips) or pass allow_missing (--allow-missing) to predict with those nodes absent"
            )

    def _featurize(self, inputs: Inputs) -> list[Utterance]:
        """Extract into the run's feature store (cached files are reused), then read each record back."""
        cfg = self.trained.cfg
        extractors = self.extractors()
        store = open_store(cfg)
        raw = RawSplits(name=inputs.name, labels=self.labels, train=[], dev=[], test=inputs.records)
        extract(raw, extractors, store, chunk=cfg.features.chunk, progress=cfg.features.progress)
        failures = {(f["uid"], f["extractor"]): f for f in store.failures() if f["dataset"] == inputs.name and f["split"] == "test"}
        return [self._read_back(r, inputs, extractors, store, failures) for r in inputs.records]

    def _read_back(
        self, record: RawUtterance, inputs: Inputs, extractors: list[Extractor], store: FeatureStore, failures: dict
    ) -> Utterance:
        """The model's record of ``record``: stored features; zero nodes where a modality is absent (allowed)."""
        utt, missing = read_back(inputs.name, "test", record, extractors, store)
        by_modality = {ex.modality: ex for ex in extractors}
        for modality in missing:
            if modality in inputs.absent.get(record.uid, []):
                continue
            failure = failures.get((record.uid, by_modality[modality].key), {})
            path = failure.get("path", record.source)
            why = failure.get("reason", "extraction failed") + ("" if path == record.source else f" ({path})")
            if not self.allow_missing:
                raise DataError(f"{record.source}: cannot extract {modality}: {why}; pass allow_missing (--allow-missing) to predict without it")
            print(f"warning: {record.source}: no {modality} nodes: {why}", file=sys.stderr)
        check_utterance(utt, len(self.labels), record.source)
        return utt

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

    def _item(self, utt: Utterance, probs: np.ndarray, labelled: bool) -> UtterancePrediction:
        """The row of one featured record: its probabilities by label name, and its label when the input gave one."""
        return UtterancePrediction(
            uid=utt.uid, probs={name: float(p) for name, p in zip(self.labels, probs)},
            text=utt.text, dialogue=utt.dialogue, speaker=utt.speaker,
            true=self.labels[utt.label] if labelled else None,
        )

    @torch.no_grad()
    def _attention(self, utterances: list[Utterance]) -> list[BatchAttention]:
        """Attention maps per planned batch, batched as :func:`sync_tva.inference.predict` batches them."""
        trained, out = self.trained, []
        dialogue_builder = trained.model.dialogue_builder()
        for chunk in self.planned_batches(utterances):
            batch = make_batch(chunk, trained.builder, dialogue_builder=dialogue_builder)
            on = batch.to(trained.device)
            with eval_mode(trained.model):
                result = trained.model(on.graph, dialogue=on.dialogue, return_attention=True)
            out.append(BatchAttention(uids=batch.uids, graph=batch.graph, maps=result.attention, dialogue=batch.dialogue))
        return out
