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
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ..config import TextFeaturesConfig
from ..errors import ConfigError
from ..records import RawUtterance
from .base import ExtractionFailure, Extractor, NodeFeatures, weights_digest

__all__ = ["TextExtractor", "load_text_encoder"]


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
    """

    modality = "text"

    def __init__(self, cfg: TextFeaturesConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.tokenizer, self.model = load_text_encoder(cfg.model)
        self.model.eval().to(device)
        self.dim = int(self.model.config.hidden_size)
        self._digest = weights_digest(self.model)

    def describe(self) -> dict[str, Any]:
        return {
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
        enc = self.tokenizer(
            [u.text for u in utts],
            padding=True,
            truncation=True,
            max_length=self.cfg.max_length,
            return_tensors="pt",
            return_special_tokens_mask=True,
        )
        special = enc.pop("special_tokens_mask").bool()
        states = self.model(**{k: v.to(self.device) for k, v in enc.items()}).last_hidden_state  # [B, L, H]
        states = states.float().cpu().numpy()
        out: list[NodeFeatures | ExtractionFailure] = []
        for b in range(len(utts)):
            keep = (enc["attention_mask"][b].bool() & ~special[b]).numpy()
            if not keep.any():  # empty transcript: the sentence token stands for the utterance
                keep = enc["attention_mask"][b].bool().numpy() & (np.arange(keep.size) == 0)
            rows = states[b][keep]  # [n_tokens, H]
            pieces = self.tokenizer.convert_ids_to_tokens(enc["input_ids"][b][torch.from_numpy(keep)].tolist())
            if self.cfg.nodes == "utterance":
                out.append(NodeFeatures(rows.mean(axis=0, keepdims=True).astype(np.float32), tokens=[utts[b].text]))
                continue
            grouped, idx = group_rows(rows, self.cfg.max_nodes)
            labels = [self.tokenizer.convert_tokens_to_string([pieces[j] for j in i]).strip() for i in idx]
            out.append(NodeFeatures(np.ascontiguousarray(grouped, dtype=np.float32), tokens=labels))
        return out
