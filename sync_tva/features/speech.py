"""Audio nodes from a self-supervised speech encoder: wav2vec 2.0, HuBERT, WavLM or data2vec-audio frame states.

Paper, Sec. 3.1: audio frames are nodes. Here a frame is one of the encoder's hidden states (one
every 20 ms; one layer, or the mean of several as SUPERB-style probes take them) instead of an
openSMILE descriptor, and frames are averaged into the same ``window_s`` windows by
:func:`.audio.pool_windows`, with the same ``max_nodes`` rule and spans, so graphs, schemas and
drawings never know which encoder made the nodes. The encoder stays frozen (fine-tuning it is out
of scope).

Long clips are read in chunks of ``chunk_s`` seconds sharing ``overlap_s`` with their neighbours,
so memory is bounded by ``batch_size`` chunks whatever a clip's length. Chunks of several
utterances share a padded pass with an attention mask only when the encoder gives a padded clip
the states it gives it alone (:meth:`SpeechExtractor.padding_invariant`); otherwise one at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModel, PreTrainedModel
from transformers.feature_extraction_utils import FeatureExtractionMixin

from ..config import AudioFeaturesConfig
from ..errors import ConfigError
from ..records import RawUtterance
from .audio import pool_windows
from .base import ExtractionFailure, Extractor, NodeFeatures, weights_digest
from .decode import decode_audio

__all__ = ["Chunk", "FrameGrid", "SpeechExtractor", "load_speech_encoder", "plan_chunks"]

PROBE_RTOL = 1e-4  # padded-vs-alone difference, relative to the states' largest magnitude, still taken as float noise


def load_speech_encoder(name: str) -> tuple[FeatureExtractionMixin, PreTrainedModel]:
    """Feature extractor and encoder from a local directory or a hub name already in the Hugging Face cache.

    Why never the network: a hub name is resolved with ``local_files_only``, so a missing model
    fails at once with the way to fetch it rather than after a minute of retries offline.
    """
    local = Path(name).expanduser()
    source = str(local) if local.is_dir() else name
    try:
        features = AutoFeatureExtractor.from_pretrained(source, local_files_only=True)
        model = AutoModel.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise _missing_model(name, local, exc) from None
    return features, model


def _missing_model(name: str, local: Path, exc: Exception) -> ConfigError:
    """The error for an unloadable ``features.audio.model``: a folder to fix, or a hub name to fetch into the cache."""
    reason = str(exc).splitlines()[0]
    folder = "config.json, the weights and preprocessor_config.json (written by save_pretrained)"
    if not local.is_dir() and name.startswith(("/", ".", "~")):
        return ConfigError(f"features.audio.model={name!r}: {local} is not a folder; it must hold {folder}")
    if local.is_dir():
        return ConfigError(f"features.audio.model={name!r}: {local} holds no loadable speech encoder ({reason}); it must hold {folder}")
    home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    return ConfigError(
        f"features.audio.model={name!r}: not loadable from the Hugging Face cache HF_HOME={home} ({reason}). Download it on "
        f"a machine with network (huggingface-cli download {name}) and set HF_HOME to that cache, or point "
        f"features.audio.model at a local folder holding {folder}"
    )


@dataclass(frozen=True)
class FrameGrid:
    """Where a convolutional feature encoder's frames sit: frame ``i`` reads samples ``[i * stride, i * stride + receptive)``.

    wav2vec 2.0, HuBERT, WavLM and data2vec-audio share kernels (10,3,3,3,3,2,2) and strides
    (5,2,2,2,2,2,2): a frame every 320 samples (20 ms at 16 kHz) reading 400 (25 ms).
    """

    stride: int  # samples between consecutive frames
    receptive: int  # samples one frame reads

    @classmethod
    def of(cls, kernels: Sequence[int], strides: Sequence[int]) -> FrameGrid:
        """The grid of a stack of unpadded 1-d convolutions."""
        receptive, jump = 1, 1
        for kernel, stride in zip(kernels, strides):
            receptive += (kernel - 1) * jump
            jump *= stride
        return cls(stride=jump, receptive=receptive)

    def frames(self, samples: int) -> int:
        """Frames the encoder gives for ``samples`` samples (0 below one receptive field), as its own ``_get_feat_extract_output_lengths``."""
        return max(0, (samples - self.receptive) // self.stride + 1)

    def samples(self, frames: int) -> int:
        """Fewest samples that give ``frames`` frames (``frames >= 1``)."""
        return (frames - 1) * self.stride + self.receptive


@dataclass(frozen=True)
class Chunk:
    """One encoder input: samples ``[start, end)`` of utterance ``utt``, whose frame 0 is the clip's frame ``first``.

    Of its frames, the clip's ``[keep_from, keep_to)`` are kept; its neighbours supply the others.
    """

    utt: int  # index of the utterance in the extractor's batch
    start: int
    end: int
    first: int
    keep_from: int
    keep_to: int


def plan_chunks(n_frames: int, chunk_frames: int, overlap_frames: int) -> list[tuple[int, int, int]]:
    """``(first, keep_from, keep_to)`` frame indices of the chunks that cover a clip of ``n_frames`` frames.

    Chunks of ``chunk_frames`` frames advance by ``chunk_frames - overlap_frames`` (at least 1); the
    last one is moved back to end with the clip, so it is full length, and each pair of neighbours
    splits the frames they share at the middle: every frame is kept once, from the chunk where it
    has the more context on its nearer side. A clip of at most ``chunk_frames`` frames is one chunk.
    """
    if n_frames <= chunk_frames:
        return [(0, 0, n_frames)]
    hop = chunk_frames - overlap_frames
    firsts = [*range(0, n_frames - chunk_frames, hop), n_frames - chunk_frames]
    cuts = [0, *((prev + chunk_frames + nxt) // 2 for prev, nxt in zip(firsts, firsts[1:])), n_frames]
    return [(first, cuts[k], cuts[k + 1]) for k, first in enumerate(firsts)]


class SpeechExtractor(Extractor):
    """A speech encoder's hidden states, pooled into ``window_s`` windows, as audio nodes (``features.audio.encoder=transformers``).

    Shapes: ``[n_windows, hidden]`` per utterance (768 for base models, 1024 for large ones), with
    spans ``[n_windows, 2]`` in seconds as the openSMILE extractor gives them.

    The fingerprint holds the exact weight bytes, the preprocessing, the layers and the pooling
    and chunking in frames; ``batch_size`` and the device stay out, since padding is masked.
    """

    modality = "audio"

    def __init__(self, cfg: AudioFeaturesConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.features, self.model = load_speech_encoder(cfg.model)
        self.model.eval().to(device)
        config = self.model.config
        if not (hasattr(config, "conv_kernel") and hasattr(config, "conv_stride")):
            raise ConfigError(
                f"features.audio.model={cfg.model!r}: {type(self.model).__name__} has no convolutional feature encoder "
                "(conv_kernel, conv_stride); expected a wav2vec 2.0, HuBERT, WavLM or data2vec-audio encoder"
            )
        self.grid = FrameGrid.of(config.conv_kernel, config.conv_stride)
        rate = int(getattr(self.features, "sampling_rate", 0))
        if rate != cfg.sample_rate:
            raise ConfigError(f"features.audio.sample_rate={cfg.sample_rate}: {cfg.model!r} expects {rate} Hz audio; set features.audio.sample_rate={rate}")
        self.layers = self._resolve_layers(cfg.layer, int(config.num_hidden_layers))
        self.chunk_frames = self.grid.frames(round(cfg.chunk_s * rate))  # most frames whose samples fit in chunk_s
        self.overlap_frames = round(cfg.overlap_s * rate / self.grid.stride)
        if self.chunk_frames < 1 or self.overlap_frames >= self.chunk_frames:
            raise ConfigError(
                f"features.audio.chunk_s={cfg.chunk_s}, overlap_s={cfg.overlap_s}: {self.chunk_frames} and {self.overlap_frames} "
                f"frames of {1000 * self.grid.stride / rate:g} ms; chunks need at least one frame more than the overlap"
            )
        self.dim = int(config.hidden_size)
        self._digest = weights_digest(self.model)
        self.masked = bool(getattr(self.features, "return_attention_mask", False))  # the model takes padding masks (HF: base wav2vec 2.0 must not)
        self.batched = self.masked and self.padding_invariant()
        self._chunked = 0

    def _resolve_layers(self, layer: int | list[int], n_layers: int) -> list[int]:
        """``features.audio.layer`` as sorted indices into the ``n_layers + 1`` hidden states (negative ones count from the end)."""
        wanted = [layer] if isinstance(layer, int) else layer
        bad = [i for i in wanted if not -(n_layers + 1) <= i <= n_layers]
        if bad:
            raise ConfigError(
                f"features.audio.layer={layer!r}: {self.cfg.model!r} has hidden states 0..{n_layers} "
                f"(0: the CNN features entering the transformer, {n_layers}: its last layer; -1 counts from the end)"
            )
        return sorted(i % (n_layers + 1) for i in wanted)

    def describe(self) -> dict[str, Any]:
        local = Path(self.cfg.model).expanduser().is_dir()
        return {
            "extractor": "audio",
            "encoder": "transformers",
            "model_class": type(self.model).__name__,
            "model": Path(self.cfg.model).name if local else self.cfg.model,
            "weights": self._digest,
            "sample_rate": self.cfg.sample_rate,
            "do_normalize": bool(getattr(self.features, "do_normalize", False)),
            "attention_mask": self.masked,
            "layers": self.layers,
            "window_s": self.cfg.window_s,
            "max_nodes": self.cfg.max_nodes,
            "chunk_frames": self.chunk_frames,
            "overlap_frames": self.overlap_frames,
        }

    def take_notes(self) -> list[str]:
        """How the encoder was fed since the last call: clips read in chunks, and one chunk at a time when padding would move states."""
        chunked, self._chunked = self._chunked, 0
        notes = [f"audio: {chunked} clips longer than features.audio.chunk_s={self.cfg.chunk_s} s read in overlapping chunks"] if chunked else []
        if not self.batched:
            why = "its feature extractor gives no attention mask" if not self.masked else "padding moves a clip's states"
            notes.append(f"audio: {self.cfg.model!r} encoded one chunk at a time ({why}; see docs/features.md)")
        return notes

    @torch.no_grad()
    def _states(self, pieces: list[np.ndarray]) -> list[np.ndarray]:
        """The chosen layers' mean state of every frame of each waveform piece, in one padded pass.

        Shapes: pieces ``[n_samples_i]`` -> ``[frames(n_samples_i), hidden]`` each.
        """
        longest = max(len(p) for p in pieces)
        values = np.full((len(pieces), longest), float(getattr(self.features, "padding_value", 0.0)), np.float32)  # [B, L]
        mask = np.zeros((len(pieces), longest), np.int64)  # [B, L] 1 on real samples
        for b, piece in enumerate(pieces):
            values[b, : len(piece)] = piece
            mask[b, : len(piece)] = 1
        extra = {"attention_mask": torch.from_numpy(mask).to(self.device)} if self.masked else {}
        out = self.model(torch.from_numpy(values).to(self.device), output_hidden_states=True, **extra)
        states = torch.stack([out.hidden_states[i] for i in self.layers]).mean(dim=0)  # [B, T, H]
        if states.shape[1] != self.grid.frames(longest):
            raise ConfigError(
                f"features.audio.model={self.cfg.model!r}: gave {states.shape[1]} frames for {longest} samples where its "
                f"convolutions give {self.grid.frames(longest)}; an adapter or a non-wav2vec 2.0 encoder is not supported"
            )
        states = states.float().cpu().numpy()
        return [states[b, : self.grid.frames(len(p))] for b, p in enumerate(pieces)]

    def padding_invariant(self) -> bool:
        """Whether a clip padded beside a longer one, with its mask, gets the states it gets alone (within PROBE_RTOL).

        Why a probe rather than a list of model types: a group norm in the feature encoder
        (the base wav2vec 2.0, HuBERT and WavLM) normalises over time, padding included, and
        data2vec-audio's stacked positional convolutions read padded frames; either moves a clip's
        states when it is batched, so such encoders are given one chunk at a time instead.
        """
        rng = np.random.default_rng(0)
        short, longer = (rng.standard_normal(self.grid.samples(n)).astype(np.float32) for n in (50, 80))
        alone = self._states([short])[0]
        padded = self._states([short, longer])[0]
        return bool(np.abs(alone - padded).max() <= PROBE_RTOL * max(1.0, float(np.abs(alone).max())))

    def _signal(self, utt: RawUtterance) -> np.ndarray:
        """The utterance's audio at the encoder's rate, normalised over the whole clip as its feature extractor does."""
        if utt.audio is None:
            raise ExtractionFailure(utt.source, "no audio for this utterance")
        signal = decode_audio(utt.audio, self.cfg.sample_rate)
        if self.grid.frames(len(signal)) == 0:
            raise ExtractionFailure(
                str(utt.audio.path), f"{len(signal)} samples, fewer than one encoder frame reads ({self.grid.receptive})"
            )
        # The whole clip at once, never per chunk, so chunks share one normalisation.
        return self.features(signal, sampling_rate=self.cfg.sample_rate, return_tensors="np")["input_values"][0].astype(np.float32)

    def _chunks(self, utt: int, n_samples: int) -> list[Chunk]:
        """The encoder inputs covering one clip of ``n_samples`` samples (see :func:`plan_chunks`).

        Each input ends with its last frame's receptive field, so it never exceeds ``chunk_s``; the
        few samples after a clip's last frame (under 20 ms), which no frame reads, are left out.
        """
        n_frames = self.grid.frames(n_samples)
        length = self.grid.samples(min(n_frames, self.chunk_frames))
        plan = plan_chunks(n_frames, self.chunk_frames, self.overlap_frames)
        return [Chunk(utt, f * self.grid.stride, f * self.grid.stride + length, f, keep_from, keep_to) for f, keep_from, keep_to in plan]

    def _batches(self, chunks: list[Chunk]) -> Iterator[list[Chunk]]:
        """Chunks longest first, ``batch_size`` at a time (one at a time when padding would change them)."""
        size = self.cfg.batch_size if self.batched else 1
        ordered = sorted(chunks, key=lambda c: c.end - c.start, reverse=True)
        for i in range(0, len(ordered), size):
            yield ordered[i : i + size]

    def extract(self, utts: list[RawUtterance]) -> list[NodeFeatures | ExtractionFailure]:
        failed: dict[int, ExtractionFailure] = {}
        signals: dict[int, np.ndarray] = {}
        for i, utt in enumerate(utts):
            try:
                signals[i] = self._signal(utt)
            except ExtractionFailure as exc:
                failed[i] = exc
        chunks = {i: self._chunks(i, len(signal)) for i, signal in signals.items()}
        self._chunked += sum(len(c) > 1 for c in chunks.values())
        frames = {i: np.empty((self.grid.frames(len(s)), self.dim), np.float32) for i, s in signals.items()}  # [n_frames, H]
        for group in self._batches([c for cs in chunks.values() for c in cs]):
            for c, states in zip(group, self._states([signals[c.utt][c.start : c.end] for c in group])):
                frames[c.utt][c.keep_from : c.keep_to] = states[c.keep_from - c.first : c.keep_to - c.first]
        out: list[NodeFeatures | ExtractionFailure] = []
        for i, utt in enumerate(utts):
            if i in failed:
                out.append(failed[i])
            elif not np.isfinite(frames[i]).all():
                out.append(ExtractionFailure(utt.source, "the speech encoder gave non-finite states"))
            else:
                starts = np.arange(len(frames[i])) * self.grid.stride / self.cfg.sample_rate  # [n_frames] seconds
                nodes, spans = pool_windows(frames[i], starts, self.cfg.window_s, self.cfg.max_nodes)
                out.append(NodeFeatures(nodes, spans=spans))
        return out
