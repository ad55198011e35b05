"""Audio nodes: openSMILE descriptors (ComParE_2016 or eGeMAPSv02) of the decoded, resampled track.

Paper, Sec. 3.1: audio frames are nodes. openSMILE's low-level descriptors (10 ms hops) are
averaged over windows of ``window_s`` seconds, one node per window; ``level="functionals"``
gives the feature set's utterance-level statistics as a single node instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import opensmile

from ..config import AudioFeaturesConfig
from ..errors import ConfigError
from ..records import RawUtterance
from .base import ExtractionFailure, Extractor, NodeFeatures
from .decode import decode_audio

__all__ = ["AudioExtractor", "pool_windows"]


def pool_windows(lld: np.ndarray, starts: np.ndarray, window_s: float, max_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Average descriptor rows by time window; returns ``(nodes [n, dim], spans [n, 2])``.

    A window widens when the clip would otherwise give more than ``max_nodes`` nodes.
    """
    duration = float(starts[-1]) + 1e-6 if len(starts) else 0.0
    if max_nodes > 0:
        window_s = max(window_s, duration / max_nodes)
    slot = np.floor(starts / window_s).astype(np.int64)  # [n_frames] window index of each frame
    used = np.unique(slot)
    nodes = np.stack([lld[slot == s].mean(axis=0) for s in used])
    spans = np.stack([used * window_s, (used + 1) * window_s], axis=1)
    return nodes.astype(np.float32), spans.astype(np.float32)


class AudioExtractor(Extractor):
    """openSMILE on each utterance's audio (one process call per utterance: openSMILE has no batching).

    Shapes: frames: ``[n_windows, n_llds]`` (65 for ComParE_2016, 25 for eGeMAPSv02);
    functionals: ``[1, n_functionals]`` (6373 / 88).
    """

    modality = "audio"

    def __init__(self, cfg: AudioFeaturesConfig) -> None:
        if cfg.window_s <= 0 or cfg.sample_rate < 8000 or cfg.max_nodes < 0:
            raise ConfigError("features.audio: window_s must be > 0, sample_rate >= 8000, max_nodes >= 0")
        self.cfg = cfg
        level = opensmile.FeatureLevel.Functionals if cfg.level == "functionals" else opensmile.FeatureLevel.LowLevelDescriptors
        self.smile = opensmile.Smile(feature_set=opensmile.FeatureSet[cfg.feature_set], feature_level=level)
        self.dim = len(self.smile.feature_names)

    def describe(self) -> dict[str, Any]:
        return {
            "extractor": "audio",
            "tool": f"opensmile {opensmile.__version__}",
            "feature_set": self.cfg.feature_set,
            "level": self.cfg.level,
            "window_s": self.cfg.window_s if self.cfg.level == "frames" else None,
            "max_nodes": self.cfg.max_nodes if self.cfg.level == "frames" else None,
            "sample_rate": self.cfg.sample_rate,
            "mono": True,
        }

    def _one(self, utt: RawUtterance) -> NodeFeatures:
        if utt.audio is None:
            raise ExtractionFailure(utt.source, "no audio for this utterance")
        signal = decode_audio(utt.audio, self.cfg.sample_rate)
        table = self.smile.process_signal(signal, self.cfg.sample_rate)
        values = table.to_numpy(dtype=np.float32)
        if not len(values) or not np.isfinite(values).all():
            raise ExtractionFailure(str(utt.audio.path), f"openSMILE gave {len(values)} rows or non-finite values")
        duration = len(signal) / self.cfg.sample_rate
        if self.cfg.level == "functionals":
            return NodeFeatures(values[:1], spans=np.array([[0.0, duration]], np.float32))
        starts = table.index.get_level_values("start").total_seconds().to_numpy()
        nodes, spans = pool_windows(values, starts, self.cfg.window_s, self.cfg.max_nodes)
        return NodeFeatures(nodes, spans=spans)

    def extract(self, utts: list[RawUtterance]) -> list[NodeFeatures | ExtractionFailure]:
        out: list[NodeFeatures | ExtractionFailure] = []
        for utt in utts:
            try:
                out.append(self._one(utt))
            except ExtractionFailure as exc:
                out.append(exc)
        return out
