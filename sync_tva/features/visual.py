"""Visual nodes: torchvision ResNet-50 embeddings (2048-d, before the classifier) of frames sampled from the clip.

Paper, Sec. 3.1: each sampled video frame is a node. Weights come from torchvision's
``ResNet50_Weights`` enum; ``weights=None`` gives a seeded random initialisation (tests, ablations).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.hub import get_dir
from torchvision.models import ResNet50_Weights, resnet50

from ..config import VisualFeaturesConfig
from ..errors import ConfigError
from ..records import RawUtterance
from .base import ExtractionFailure, Extractor, NodeFeatures, weights_digest
from .decode import sample_frames

__all__ = ["VisualExtractor", "load_resnet50"]

# ImageNet statistics: what every torchvision ResNet-50 weight set was trained with.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def load_resnet50(weights_name: str | None, seed: int) -> torch.nn.Module:
    """ResNet-50 with its classifier replaced by the identity; weights only from the local torch cache.

    Why no download: extraction machines are often offline; a missing file must fail before any
    clip is decoded, with the place to put it.
    """
    if weights_name is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # same seed, same random network on every shard
            model = resnet50(weights=None)
    else:
        try:
            weights = ResNet50_Weights[weights_name]
        except KeyError:
            choices = [w.name for w in ResNet50_Weights]
            raise ConfigError(f"features.visual.weights={weights_name!r}: choose from {choices} or null") from None
        file = Path(get_dir()) / "checkpoints" / os.path.basename(weights.url)
        if not file.is_file():
            raise ConfigError(
                f"features.visual.weights={weights_name}: weight file {file} is not in the torch cache. "
                f"Download {weights.url} on a machine with network and put it there, or set TORCH_HOME to "
                f"a folder holding hub/checkpoints/{file.name}; features.visual.weights=null uses random weights"
            )
        model = resnet50()
        model.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    model.fc = torch.nn.Identity()  # 2048-d pooled features instead of ImageNet logits
    return model.eval()


class VisualExtractor(Extractor):
    """Sampled frames, resized and centre-cropped, through ResNet-50; frames of a batch share forward passes.

    Shapes: ``[n_frames, 2048]`` per utterance, ``n_frames <= max_frames``; spans are
    ``(t - 0.5/fps, t + 0.5/fps)`` around each frame's time.
    """

    modality = "visual"

    def __init__(self, cfg: VisualFeaturesConfig, device: torch.device, seed: int) -> None:
        if cfg.fps <= 0 or cfg.max_frames < 1 or cfg.image_size < 16:
            raise ConfigError("features.visual: fps must be > 0, max_frames >= 1 and image_size >= 16")
        self.cfg = cfg
        self.device = device
        self.seed = seed
        self.batch_size = cfg.batch_size
        self.model = load_resnet50(cfg.weights, seed).to(device)
        self.dim = 2048
        self.resize = cfg.image_size * 8 // 7  # 256 for 224, as in torchvision's ImageNet evaluation
        self._digest = weights_digest(self.model)
        self._mean = torch.tensor(_MEAN, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(_STD, device=device).view(1, 3, 1, 1)

    def describe(self) -> dict[str, Any]:
        return {
            "extractor": "visual",
            "model": "torchvision.resnet50",
            "weights": self.cfg.weights or f"random(seed={self.seed})",
            "digest": self._digest,
            "fps": self.cfg.fps,
            "max_frames": self.cfg.max_frames,
            "resize": self.resize,
            "crop": self.cfg.image_size,
            "mean": _MEAN,
            "std": _STD,
        }

    def _crop(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 ``[n, H, W, 3]`` to a normalised float ``[n, 3, S, S]`` centre crop."""
        s = self.cfg.image_size
        h, w = frames.shape[1:3]
        top, left = (h - s) // 2, (w - s) // 2
        x = torch.from_numpy(np.ascontiguousarray(frames[:, top : top + s, left : left + s]))
        x = x.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)  # [n, 3, S, S]
        return (x - self._mean) / self._std

    @torch.no_grad()
    def extract(self, utts: list[RawUtterance]) -> list[NodeFeatures | ExtractionFailure]:
        results: list[NodeFeatures | ExtractionFailure | None] = [None] * len(utts)
        crops: list[torch.Tensor] = []
        owners: list[tuple[int, np.ndarray]] = []
        for i, utt in enumerate(utts):
            if utt.video is None:
                results[i] = ExtractionFailure(utt.source, "no video for this utterance")
                continue
            try:
                frames, times = sample_frames(utt.video, self.cfg.fps, self.cfg.max_frames, self.resize)
            except ExtractionFailure as exc:
                results[i] = exc
                continue
            crops.append(self._crop(frames))
            owners.append((i, times))
        if crops:
            pixels = torch.cat(crops)  # [sum of frames, 3, S, S]
            feats = torch.cat([self.model(chunk) for chunk in pixels.split(self.batch_size)]).cpu().numpy()
            offset = 0
            half = 0.5 / self.cfg.fps
            for i, times in owners:
                n = len(times)
                spans = np.stack([np.maximum(times - half, 0.0), times + half], axis=1).astype(np.float32)
                results[i] = NodeFeatures(feats[offset : offset + n].astype(np.float32), spans=spans)
                offset += n
        return results  # type: ignore[return-value]  (every slot is filled above)
