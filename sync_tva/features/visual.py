"""Visual nodes: a backbone's embedding of each sampled frame, or of the largest face in it.

Paper, Sec. 3.1: each sampled video frame is a node. ``features.visual.backbone`` picks the
image encoder (:mod:`sync_tva.features.backbones`: torchvision ResNet-50 by default, the FER2013
expression CNN, or the user's own) and ``features.visual.face`` whether the node reads the whole
frame or the face MTCNN finds in it (:mod:`sync_tva.features.faces`). Each node keeps the box it
read and a thumbnail, so drawings show which face was read.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TF

from ..config import VisualFeaturesConfig
from ..errors import ConfigError
from ..records import RawUtterance
from .backbones import load_backbone
from .base import ExtractionFailure, Extractor, NodeFeatures
from .decode import sample_frames

__all__ = ["VisualExtractor", "FACE_DECODE_SIDE", "thumbnail"]

FACE_DECODE_SIDE = 480  # face mode decodes frames at most this size on their shorter side (never enlarged): MTCNN's cost grows with the area
WHOLE_FRAME = np.array([0.0, 0.0, 1.0, 1.0], np.float32)


def thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    """uint8 ``[side, side, 3]``: the centre square of ``image`` ``[h, w, 3]``, resized (bilinear, antialiased)."""
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = torch.from_numpy(np.ascontiguousarray(image[top : top + s, left : left + s])).permute(2, 0, 1)
    return TF.resize(square, [side, side], antialias=True).permute(1, 2, 0).numpy()


class VisualExtractor(Extractor):
    """Sampled frames (or their faces) through the configured backbone; images of a batch share forward passes.

    Shapes: ``[n_frames, dim]`` per utterance, ``n_frames <= max_frames`` (fewer when blank or
    faceless frames are skipped); spans ``(t - 0.5/fps, t + 0.5/fps)`` around each frame's
    time; boxes ``[n_frames, 4]``; thumbnails ``[n_frames, T, T, 3]`` when ``thumbnail > 0``.
    """

    modality = "visual"

    def __init__(self, cfg: VisualFeaturesConfig, device: torch.device, seed: int) -> None:
        if cfg.fps <= 0 or cfg.max_frames < 1 or cfg.image_size < 16:
            raise ConfigError("features.visual: fps must be > 0, max_frames >= 1 and image_size >= 16")
        self.cfg = cfg
        self.device = device
        self.batch_size = cfg.batch_size
        self.backbone = load_backbone(cfg, seed)
        self.backbone.module.to(device)
        self.dim = self.backbone.dim
        self.cropper = None
        if cfg.face == "mtcnn":
            from .faces import FaceCropper  # facenet-pytorch is an optional extra

            self.cropper = FaceCropper(margin=cfg.face_margin, no_face=cfg.no_face, min_face=cfg.min_face, device=device)
        self.decode_side = FACE_DECODE_SIDE if self.cropper is not None else cfg.image_size * 8 // 7
        self.counts: Counter[str] = Counter()  # frames read, blank, without a face since the last take_notes()

    def describe(self) -> dict[str, Any]:
        return {
            "extractor": "visual",
            **self.backbone.description,
            "fps": self.cfg.fps,
            "max_frames": self.cfg.max_frames,
            "decode_side": self.decode_side,
            "face": self.cropper.describe() if self.cropper is not None else "none",
            "thumbnail": self.cfg.thumbnail,
        }

    def _images(self, utt: RawUtterance) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """The images one utterance's nodes read, their boxes ``[n, 4]`` and times ``[n]``; ExtractionFailure if none."""
        if utt.video is None:
            raise ExtractionFailure(utt.source, "no video for this utterance")
        frames, times = sample_frames(
            utt.video, self.cfg.fps, self.cfg.max_frames, self.decode_side, shrink_only=self.cropper is not None
        )
        self.counts["frames"] += len(frames)
        if self.cropper is None:
            return list(frames), np.tile(WHOLE_FRAME, (len(frames), 1)), times
        crops = self.cropper.crop(frames)
        self.counts["blank"] += crops.blank
        self.counts["no_face"] += crops.no_face
        if not crops.images:
            raise ExtractionFailure(
                str(utt.video),
                f"no usable frame: {len(frames)} sampled, {crops.blank} blank, {crops.no_face} without a face "
                f"(features.visual.no_face={self.cfg.no_face})",
            )
        return crops.images, crops.boxes.astype(np.float32), times[crops.kept]

    def _nodes(self, feats: np.ndarray, images: list[np.ndarray], boxes: np.ndarray, times: np.ndarray) -> NodeFeatures:
        half = 0.5 / self.cfg.fps
        spans = np.stack([np.maximum(times - half, 0.0), times + half], axis=1).astype(np.float32)
        thumbs = np.stack([thumbnail(img, self.cfg.thumbnail) for img in images]) if self.cfg.thumbnail else None
        return NodeFeatures(feats.astype(np.float32), spans=spans, boxes=boxes, thumbs=thumbs)

    @torch.no_grad()
    def extract(self, utts: list[RawUtterance]) -> list[NodeFeatures | ExtractionFailure]:
        results: list[NodeFeatures | ExtractionFailure | None] = [None] * len(utts)
        pending: list[tuple[int, list[np.ndarray], np.ndarray, np.ndarray]] = []
        for i, utt in enumerate(utts):
            try:
                pending.append((i, *self._images(utt)))
            except ExtractionFailure as exc:
                results[i] = exc
        images = [img for _, imgs, _, _ in pending for img in imgs]
        feats = self.backbone.encode(images, self.device, self.batch_size)  # [sum of nodes, dim]
        offset = 0
        for i, imgs, boxes, times in pending:
            results[i] = self._nodes(feats[offset : offset + len(imgs)], imgs, boxes, times)
            offset += len(imgs)
        return results  # type: ignore[return-value]  (every slot is filled above)

    def take_notes(self) -> list[str]:
        """What was skipped since the last call: blank frames and frames without a face (never silently)."""
        counts, self.counts = self.counts, Counter()
        if self.cropper is None or not counts["frames"]:
            return []
        fallback = "whole frame used" if self.cfg.no_face == "frame" else "dropped"
        return [f"visual: {counts['frames']} frames decoded: {counts['blank']} blank skipped, {counts['no_face']} without a face ({fallback})"]
