"""Fine-tune a transformers encoder as an utterance classifier on the training labels, then keep it for extraction.

The strong MELD/IEMOCAP results extract text features from an encoder first fine-tuned on the
data set's own training labels. This step does that once per request: a linear head on the
mean of the utterance's token states (optionally after the ``k`` previous turns as a first
segment), AdamW without decay on biases and LayerNorm, linear warm-up and decay, the epoch
chosen on dev weighted F1. Only the train and dev records it is given are read.

The loop is the graph model's: the same epochs, resume state (loop state and RNG), optimiser
groups (:mod:`sync_tva.epochs`) and metrics (:mod:`sync_tva.metrics`); only the batches and the
linear schedule are its own. :func:`text_extractor` is the text extractor's preparation: it
fine-tunes (or finds, or under torchrun awaits) the encoder a config asks for.

Layout in the feature store::

    STORE/<dataset>/finetune/text-<key>/            save_pretrained encoder + tokenizer, summary.json
    STORE/.finetune-work/<dataset>-text-<key>/      last.pt (per-epoch resume point), best.pt

``key`` hashes the base weights' bytes, the tokenizer, the training data (uid, dialogue,
speaker, text and label of every train and dev record), the label names and every setting,
so the same request is never trained twice and a different one never reuses a folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from ..config import Config, FinetuneConfig
from ..data.registry import read_raw
from ..device import resolve_device
from ..distributed import group_shard
from ..epochs import TrainState, parameter_groups, restore_rng, rng_state
from ..errors import CheckpointError, ConfigError, DataError
from ..io import load_torch, save_torch, write_json
from ..metrics import Metrics, compute_metrics
from ..records import RawSplits, RawUtterance
from .base import weights_digest
from .text import TextExtractor, dialogue_contexts, load_text_encoder, tokenize_utterances

__all__ = ["FinetunedEncoder", "UtteranceClassifier", "finetune_text_encoder", "request_key", "text_extractor", "wait_for_finetuned"]

SUMMARY = "summary.json"
STEP_VERSION = 1  # bump when the training procedure changes: old folders stop matching
MAX_GRAD_NORM = 1.0  # gradient clipping of every step (part of the procedure, hence of STEP_VERSION)


@dataclass(frozen=True)
class FinetunedEncoder:
    """A fine-tuned encoder folder in the store, its request key and summary; ``trained`` is False when found ready."""

    path: Path
    key: str
    summary: dict[str, Any]
    trained: bool


class UtteranceClassifier(nn.Module):
    """Encoder, dropout and a linear head on the mean of the utterance's own token states.

    Shapes: inputs ``[B, L]`` and ``own`` ``[B, L]`` bool -> logits ``[B, n_labels]``. An
    utterance without tokens of its own (empty transcript) is read from the sentence token.
    """

    def __init__(self, encoder: PreTrainedModel, n_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(float(getattr(encoder.config, "hidden_dropout_prob", 0.1)))
        self.head = nn.Linear(int(encoder.config.hidden_size), n_labels)

    def forward(self, inputs: dict[str, torch.Tensor], own: torch.Tensor) -> torch.Tensor:
        states = self.encoder(**inputs).last_hidden_state  # [B, L, H]
        weights = own.clone()
        weights[~own.any(dim=1), 0] = True  # empty transcript: the sentence token
        weights = weights.unsqueeze(-1).to(states.dtype)  # [B, L, 1]
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1)  # [B, H]
        return self.head(self.dropout(pooled))


def _tokenizer_digest(tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of the whole tokenizer (fast: its JSON; slow: its vocabulary)."""
    if tokenizer.is_fast:
        text = tokenizer.backend_tokenizer.to_str()
    else:
        text = json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(f"{type(tokenizer).__name__}|{text}".encode()).hexdigest()


def _records(utts: list[RawUtterance]) -> list[list[Any]]:
    return [[u.uid, u.dialogue, u.speaker, u.text, u.label] for u in utts]


def request_key(
    encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, raw: RawSplits, settings: FinetuneConfig
) -> str:
    """The key of one fine-tuning request: base weights, tokenizer, train and dev records, labels, settings."""
    config = {k: v for k, v in encoder.config.to_dict().items() if not k.startswith("_") and k != "transformers_version"}
    request = {
        "step": STEP_VERSION,
        "max_grad_norm": MAX_GRAD_NORM,
        "model_class": type(encoder).__name__,
        "model_config": config,
        "weights": weights_digest(encoder),
        "tokenizer": _tokenizer_digest(tokenizer),
        "train": _records(raw.train),
        "dev": _records(raw.dev),
        "labels": list(raw.labels),
        "settings": asdict(settings),
    }
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class _Split:
    """Texts, contexts (None without context turns) and labels of one split, in record order."""

    texts: list[str]
    contexts: list[str] | None
    labels: torch.Tensor  # int64 [n]

    @classmethod
    def of(cls, utts: list[RawUtterance], turns: int) -> _Split:
        contexts = dialogue_contexts(utts, turns) if turns else None
        return cls([u.text for u in utts], contexts, torch.tensor([u.label for u in utts], dtype=torch.long))

    def batch(self, idx: list[int], tokenizer: PreTrainedTokenizerBase, max_length: int, device: torch.device) -> tuple[dict, torch.Tensor]:
        """Padded model inputs and the own-token mask of the utterances ``idx``, on ``device``."""
        contexts = [self.contexts[i] for i in idx] if self.contexts is not None else None
        enc, own = tokenize_utterances(tokenizer, [self.texts[i] for i in idx], contexts, max_length)
        return {k: v.to(device) for k, v in enc.items()}, own.to(device)


@torch.no_grad()
def _evaluate(model: UtteranceClassifier, split: _Split, tokenizer: PreTrainedTokenizerBase, settings: FinetuneConfig,
              device: torch.device, labels: list[str]) -> Metrics:
    """The classifier's metrics on ``split`` (eval mode: no dropout, no RNG use)."""
    model.eval()
    preds = []
    for start in range(0, len(split.texts), settings.batch_size):
        idx = list(range(start, min(start + settings.batch_size, len(split.texts))))
        inputs, own = split.batch(idx, tokenizer, settings.max_length, device)
        preds.append(model(inputs, own).argmax(dim=1).cpu())
    return compute_metrics(split.labels.tolist(), torch.cat(preds).tolist(), labels)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _check_splits(raw: RawSplits) -> None:
    for split in ("train", "dev"):
        if not raw.splits()[split]:
            raise DataError(f"data set {raw.name!r}: fine-tuning the text encoder needs {split} utterances, found none")


def finetune_text_encoder(cfg: Config, raw: RawSplits, log: Callable[[str], None] = _stderr) -> FinetunedEncoder:
    """The fine-tuned encoder of ``features.text.model`` on ``raw.train`` (selected on ``raw.dev``), trained unless stored.

    ``raw.test`` is never read. A killed run resumes from the last finished epoch; ``log``
    receives one line per epoch with the dev figures.
    """
    if cfg.features.text.finetune.epochs == 0:
        raise ConfigError("features.text.finetune.epochs=0 keeps the frozen encoder; set it to 1 or more to fine-tune")
    request = _Request.of(cfg, raw)
    if request.published():
        return request.stored()
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    work = Path(cfg.features.store).expanduser() / ".finetune-work" / f"{raw.name}-text-{request.key}"
    summary = _train(cfg, raw, request.encoder, request.tokenizer, work, log) | {"key": request.key}
    _publish(request.encoder, request.tokenizer, summary, work, request.folder)
    return FinetunedEncoder(request.folder, request.key, summary, trained=True)


@dataclass(frozen=True)
class _Request:
    """A fine-tuning request: the base encoder and tokenizer, their request key and the store folder it publishes to."""

    tokenizer: PreTrainedTokenizerBase
    encoder: PreTrainedModel
    key: str
    folder: Path

    @classmethod
    def of(cls, cfg: Config, raw: RawSplits) -> "_Request":
        _check_splits(raw)
        tokenizer, encoder = load_text_encoder(cfg.features.text.model)
        key = request_key(encoder, tokenizer, raw, cfg.features.text.finetune)
        return cls(tokenizer, encoder, key, Path(cfg.features.store).expanduser() / raw.name / "finetune" / f"text-{key}")

    def published(self) -> bool:
        return (self.folder / SUMMARY).is_file()

    def stored(self) -> FinetunedEncoder:
        with open(self.folder / SUMMARY) as fh:
            return FinetunedEncoder(self.folder, self.key, json.load(fh), trained=False)


def wait_for_finetuned(cfg: Config, raw: RawSplits, log: Callable[[str], None] = _stderr, poll_seconds: float = 10.0) -> FinetunedEncoder:
    """The encoder another process is fine-tuning for the same request, once it is published; never trains.

    Under torchrun only rank 0 fine-tunes (the same request on every rank would train it N times
    and race on one work folder); the other ranks wait here. No collective barrier: fine-tuning
    can outlast a process group's timeout, and torchrun stops the waiting ranks if rank 0 fails.
    """
    request = _Request.of(cfg, raw)
    if not request.published():
        log(f"waiting for rank 0 to fine-tune the text encoder into {request.folder}")
        while not request.published():
            time.sleep(poll_seconds)
    return request.stored()


def text_extractor(cfg: Config, device: torch.device) -> TextExtractor:
    """The text extractor ``cfg`` asks for: the base encoder, a trained run's fine-tuned folder, or the request's folder.

    A request not yet stored is fine-tuned now on the reader's train and dev splits (dev carved as
    for the graph model); under torchrun rank 0 fine-tunes and the other ranks wait for its folder.
    """
    settings = cfg.features.text.finetune
    if settings.epochs == 0:
        return TextExtractor(cfg.features.text, device)
    if settings.folder is not None:
        folder = Path(settings.folder)
        if not folder.is_dir():
            raise ConfigError(f"features.text.finetune.folder: {folder} is not a folder (a fine-tuned encoder written by sync_tva.finetune)")
        return TextExtractor(cfg.features.text, device, finetuned=folder)
    raw = read_raw(cfg, ("train", "dev"))
    shard = group_shard()
    tuned = finetune_text_encoder(cfg, raw) if shard is None or shard[0] == 0 else wait_for_finetuned(cfg, raw)
    return TextExtractor(cfg.features.text, device, finetuned=tuned.path)


def _resume(last: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> TrainState:
    """Load the resume point ``last`` into the classifier, optimiser and schedule, restore the RNG; the loop state."""
    saved = load_torch(last)
    if "state" not in saved:
        raise CheckpointError(f"{last}: a resume point of an older fine-tuning loop; delete {last.parent} to start this request over")
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    restore_rng(saved)
    return TrainState(**saved["state"])


def _train(cfg: Config, raw: RawSplits, encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, work: Path,
           log: Callable[[str], None]) -> dict[str, Any]:
    """Train (or resume) in ``work``; leaves the best epoch's weights in ``encoder`` and returns the summary."""
    settings = cfg.features.text.finetune
    device = resolve_device(cfg.features.device, "features.device")
    train, dev = _Split.of(raw.train, settings.context_turns), _Split.of(raw.dev, settings.context_turns)
    torch.manual_seed(settings.seed)  # head initialisation and dropout
    model = UtteranceClassifier(encoder, len(raw.labels)).to(device)
    optimizer = torch.optim.AdamW(parameter_groups(model, settings.weight_decay), lr=settings.lr)
    steps = math.ceil(len(train.texts) / settings.batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(settings.warmup * steps * settings.epochs), steps * settings.epochs)
    state = TrainState()
    if (work / "last.pt").is_file():
        state = _resume(work / "last.pt", model, optimizer, scheduler)
        log(f"fine-tune: resuming from epoch {state.epoch + 1} of {settings.epochs} ({work / 'last.pt'})")
    loss_fn = nn.CrossEntropyLoss()
    for epoch in state.epochs(settings.epochs):
        started = time.time()
        model.train()
        order = np.random.default_rng([settings.seed, epoch]).permutation(len(train.texts)).tolist()
        bar = tqdm(range(steps), desc=f"fine-tune epoch {epoch}/{settings.epochs}", unit="step",
                   disable=not cfg.features.progress, file=sys.stderr)
        total = 0.0
        for step in bar:
            idx = order[step * settings.batch_size : (step + 1) * settings.batch_size]
            inputs, own = train.batch(idx, tokenizer, settings.max_length, device)
            loss = loss_fn(model(inputs, own), train.labels[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        bar.close()
        dev_metrics = _evaluate(model, dev, tokenizer, settings, device, list(raw.labels))
        row = {"epoch": epoch, "train_loss": total / steps, "dev_weighted_f1": dev_metrics.weighted_f1,
               "dev_accuracy": dev_metrics.accuracy, "seconds": time.time() - started}
        if state.record(epoch, dev_metrics.weighted_f1, row):
            save_torch(work / "best.pt", {"epoch": epoch, "encoder": encoder.state_dict()})
        save_torch(work / "last.pt", {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                      "scheduler": scheduler.state_dict(), "state": asdict(state), **rng_state()})
        log(f"fine-tune epoch {epoch}/{settings.epochs}: train loss {row['train_loss']:.4f}, dev weighted F1 "
            f"{row['dev_weighted_f1']:.4f}, accuracy {row['dev_accuracy']:.4f} ({row['seconds']:.0f} s)")
    encoder.load_state_dict(load_torch(work / "best.pt")["encoder"])
    history, best_epoch = state.history, state.best_epoch
    best = history[best_epoch - 1]
    return {
        "base_model": cfg.features.text.model,
        "dataset": raw.name,
        "labels": list(raw.labels),
        "train_utterances": len(train.texts),
        "dev_utterances": len(dev.texts),
        "settings": asdict(settings),
        "history": history,
        "best_epoch": best_epoch,
        "dev_weighted_f1": best["dev_weighted_f1"],
        "dev_accuracy": best["dev_accuracy"],
        "seconds": sum(h["seconds"] for h in history),
        "device": str(device),
    }


def _publish(encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, summary: dict[str, Any], work: Path,
             folder: Path) -> None:
    """Write encoder, tokenizer and summary to a folder in ``work``, rename it to ``folder``, drop ``work``.

    The rename is atomic on one file system: ``folder`` is either absent or complete.
    """
    staging = work / "out"
    shutil.rmtree(staging, ignore_errors=True)  # a half-written one from a killed run
    encoder.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    write_json(staging / SUMMARY, summary)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, folder)
    except OSError:
        if not (folder / SUMMARY).is_file():  # not another process finishing the same request first
            raise
    shutil.rmtree(work)
