"""Text nodes from a transformers encoder (RoBERTa by default): token states or one utterance vector.

Paper, Sec. 3.1: each text token is a node. Long utterances can be grouped into at most
``max_nodes`` contiguous token groups (mean of their states) to bound the graph size.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from huggingface_hub import constants as hf_constants
from transformers import AutoModel, AutoTokenizer, BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

from ..config import TextFeaturesConfig
from ..errors import ConfigError, DataError
from ..records import RawUtterance
from .base import ExtractionFailure, Extractor, NodeFeatures, weights_digest

__all__ = ["TextExtractor", "dialogue_contexts", "load_text_encoder", "tokenize_utterances"]


def load_text_encoder(name: str) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Tokenizer and encoder from a local directory or a hub name already in the Hugging Face cache.

    Why the cache is tried first with ``local_files_only``: offline, a plain ``from_pretrained``
    retries the network before failing; this way a missing model fails at once with a fix.
    """
    local = Path(name).expanduser()
    source = str(local) if local.is_dir() else name
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModel.from_pretrained(source, local_files_only=True)
        return tokenizer, model
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
        if local.is_dir() or offline or not _hub_reachable():
            raise _missing_model(name, exc) from None
    try:
        return AutoTokenizer.from_pretrained(source), AutoModel.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise _missing_model(name, exc) from None


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint answers a TCP connection within ``timeout_s``.

    Why: without network, ``from_pretrained`` retries for about a minute per file before failing.
    """
    host = urlparse(hf_constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _missing_model(name: str, exc: Exception) -> ConfigError:
    home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    return ConfigError(
        f"features.text.model={name!r}: cannot load tokenizer and model ({str(exc).splitlines()[0]}). "
        f"Either point features.text.model at a local directory holding config.json, the weights and the "
        f"tokenizer files (e.g. saved with save_pretrained), or download {name!r} on a machine with network "
        f"(huggingface-cli download {name}) into the cache HF_HOME={home} and set HF_HOME to it here "
        f"(with HF_HUB_OFFLINE=1 to skip network checks)"
    )


def dialogue_contexts(utts: list[RawUtterance], turns: int) -> list[str]:
    """The ``turns`` turns before each utterance in its dialogue, as ``"speaker: text"`` joined by spaces.

    Records are taken to be in turn order within a dialogue (as every reader gives them); the
    first turn of a dialogue gets ``""``. Fine-tuning and extraction both build context here.
    """
    past: dict[str, list[str]] = {}
    out = []
    for u in utts:
        turns_before = past.setdefault(u.dialogue, [])
        out.append(" ".join(turns_before[-turns:]) if turns else "")
        turns_before.append(f"{u.speaker}: {u.text}")
    return out


def tokenize_utterances(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], contexts: list[str] | None, max_length: int
) -> tuple[BatchEncoding, torch.Tensor]:
    """Model inputs for ``texts`` (after ``contexts`` as a first segment when given) and the mask of each text's own tokens.

    Shapes: every input ``[B, L]``; the mask ``[B, L]`` bool, special tokens, context and padding
    excluded (all False for an empty transcript).
    """
    pair = contexts is not None
    if pair and not tokenizer.is_fast:
        raise ConfigError(f"context turns need a fast tokenizer (sequence ids); {type(tokenizer).__name__} is not")
    enc = tokenizer(
        contexts if pair else texts,
        texts if pair else None,
        padding=True,
        truncation=True,  # longest first: a long context is cut before the utterance
        max_length=max_length,
        return_tensors="pt",
        return_special_tokens_mask=True,
    )
    own = enc["attention_mask"].bool() & ~enc.pop("special_tokens_mask").bool()
    if pair:  # the utterance is the second segment
        segment = [[s == 1 for s in enc.sequence_ids(b)] for b in range(len(texts))]
        own &= torch.tensor(segment, dtype=torch.bool).reshape(own.shape)
    return enc, own


def group_rows(x: np.ndarray, max_nodes: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Average contiguous rows of ``x`` into at most ``max_nodes`` groups; returns the groups and row indices."""
    if max_nodes <= 0 or len(x) <= max_nodes:
        idx = [np.array([i]) for i in range(len(x))]
        return x, idx
    idx = np.array_split(np.arange(len(x)), max_nodes)
    return np.stack([x[i].mean(axis=0) for i in idx]), idx


class TextExtractor(Extractor):
    """Encoder states of an utterance's tokens (special tokens dropped) as text nodes.

    Shapes: ``nodes="tokens"`` gives ``[min(n_tokens, max_nodes), hidden]``;
    ``nodes="utterance"`` gives ``[1, hidden]`` (mean over tokens).

    ``finetuned`` is a folder written by :mod:`.finetune` (the encoder is loaded from it and its
    name, which holds the request's key, enters the fingerprint). With ``cfg.context_turns > 0``
    the previous turns go first (:meth:`prepare` reads them from the split before it is
    extracted); the nodes stay the utterance's own tokens.
    """

    modality = "text"

    def __init__(self, cfg: TextFeaturesConfig, device: torch.device, finetuned: Path | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.finetuned = finetuned
        self.tokenizer, self.model = load_text_encoder(str(finetuned) if finetuned is not None else cfg.model)
        self.model.eval().to(device)
        self.dim = int(self.model.config.hidden_size)
        self._digest = weights_digest(self.model)
        self._contexts: dict[str, str] = {}

    def prepare(self, split: str, utts: list[RawUtterance]) -> None:
        """Remember the previous turns of every utterance of ``split`` (a no-op without context turns)."""
        if self.cfg.context_turns:
            self._contexts = dict(zip((u.uid for u in utts), dialogue_contexts(utts, self.cfg.context_turns)))

    def describe(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"context_turns": self.cfg.context_turns} if self.cfg.context_turns else {}
        if self.finetuned is not None:
            extra["finetuned"] = self.finetuned.name  # text-<key of the fine-tuning request>
        return extra | {
            "extractor": "text",
            "model_class": type(self.model).__name__,
            "model": Path(self.cfg.model).name if Path(self.cfg.model).expanduser().is_dir() else self.cfg.model,
            "weights": self._digest,
            "vocab_size": len(self.tokenizer),
            "nodes": self.cfg.nodes,
            "max_nodes": self.cfg.max_nodes,
            "max_length": self.cfg.max_length,
        }

    @torch.no_grad()
    def extract(self, utts: list[RawUtterance]) -> list[NodeFeatures | ExtractionFailure]:
        contexts = [self._context(u) for u in utts] if self.cfg.context_turns else None
        enc, own = tokenize_utterances(self.tokenizer, [u.text for u in utts], contexts, self.cfg.max_length)
        states = self.model(**{k: v.to(self.device) for k, v in enc.items()}).last_hidden_state  # [B, L, H]
        states = states.float().cpu().numpy()
        out: list[NodeFeatures | ExtractionFailure] = []
        for b in range(len(utts)):
            keep = own[b].numpy()
            if not keep.any() or not utts[b].text.strip():  # empty transcript: no text nodes, never an invented one; counted at training
                out.append(NodeFeatures(np.zeros((0, self.dim), np.float32)))
                continue
            rows = states[b][keep]  # [n_tokens, H]
            pieces = self.tokenizer.convert_ids_to_tokens(enc["input_ids"][b][torch.from_numpy(keep)].tolist())
            if self.cfg.nodes == "utterance":
                out.append(NodeFeatures(rows.mean(axis=0, keepdims=True).astype(np.float32), tokens=[utts[b].text]))
                continue
            grouped, idx = group_rows(rows, self.cfg.max_nodes)
            labels = [self.tokenizer.convert_tokens_to_string([pieces[j] for j in i]).strip() for i in idx]
            out.append(NodeFeatures(np.ascontiguousarray(grouped, dtype=np.float32), tokens=labels))
        return out

    def _context(self, utt: RawUtterance) -> str:
        if utt.uid not in self._contexts:
            raise DataError(f"utterance {utt.uid!r} ({utt.source}): no dialogue context; prepare the extractor with its split first")
        return self._contexts[utt.uid]
