"""Face detection and cropping: what a visual extractor encodes instead of the whole frame.

Why: in emotion recognition the visual features are face crops through expression CNNs; a
whole frame is mostly background, clothes and lighting, and the face covers a few percent of it.
The detector is facenet-pytorch's MTCNN (Zhang et al. 2016), whose P-, R- and O-net weights
ship inside the wheel, so nothing is downloaded and offline machines detect as well.

Only ``MTCNN.detect`` is used: the crop is cut here, in numpy, from the same integer pixel box
that :class:`FaceCrops` stores, so a crop and its box always agree exactly. Black or blank
frames (fade-ins, title cards) are skipped before detection and counted, never dropped silently.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ConfigError
from .base import weights_digest

__all__ = ["FaceCrops", "FaceCropper", "is_blank", "largest_face", "require_facenet", "skip_blank", "square_box"]

BLANK_MAX_MEAN = 16.0  # mean luma (0-255) below which a frame is black: a fade-in or fade-out
BLANK_MIN_STD = 4.0  # luma std below which a frame is blank: one flat colour, nothing to detect
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 weights of R, G, B
_CPU = torch.device("cpu")


@dataclass
class FaceCrops:
    """The images a visual extractor encodes for one clip's sampled frames, and where they came from."""

    images: list[np.ndarray]  # uint8 RGB [h, w, 3], one per kept frame: the face crop (with margin), or the whole frame when no face was found and the policy is "frame"
    boxes: np.ndarray  # float32 [n_kept, 4]: (x0, y0, x1, y1) of each image as fractions of the frame's width/height (whole frame: 0,0,1,1)
    kept: np.ndarray  # int64 [n_kept]: index of each kept image's frame in the input
    blank: int  # frames skipped as black or blank
    no_face: int  # non-blank frames with no face found (fell back to the whole frame, or dropped)


def _luma(frames: np.ndarray) -> np.ndarray:
    """uint8 ``[..., 3]`` RGB to float32 ``[...]`` luma (0-255)."""
    return frames.astype(np.float32) @ _LUMA


def is_blank(frame: np.ndarray, *, max_mean: float = BLANK_MAX_MEAN, min_std: float = BLANK_MIN_STD) -> bool:
    """uint8 [H, W, 3]: black (mean luma below max_mean, e.g. a fade-in) or blank (luma std below min_std: one flat colour)."""
    luma = _luma(frame)
    return bool(luma.mean() < max_mean or luma.std() < min_std)


def skip_blank(frames: np.ndarray) -> tuple[np.ndarray, int]:
    """indices (int64) of non-blank frames of uint8 [n, H, W, 3], and how many were blank."""
    keep = np.array([not is_blank(frame) for frame in frames], dtype=bool)
    return np.flatnonzero(keep).astype(np.int64), int(len(frames) - keep.sum())


def require_facenet() -> type:
    """The ``facenet_pytorch.MTCNN`` class, imported only when faces are asked for (an optional extra).

    ConfigError (sync_tva.errors.ConfigError) one line when facenet-pytorch is absent: "features.visual.face=mtcnn
    needs facenet-pytorch: pip install 'sync_tva[faces]' (or make install)"; when it is present but
    one of its own imports fails, the message ends with that import error.
    """
    hint = "features.visual.face=mtcnn needs facenet-pytorch: pip install 'sync_tva[faces]' (or make install)"
    try:
        from facenet_pytorch import MTCNN
    except ImportError as exc:
        if exc.name == "facenet_pytorch":
            raise ConfigError(hint) from None
        raise ConfigError(f"{hint}; importing it failed: {exc}") from exc
    return MTCNN


def square_box(box: np.ndarray, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """A detection ``(x0, y0, x1, y1)`` in pixels to the integer pixel box that is cropped.

    The margin (a fraction of the box's width and height) is added on each side, the box is made
    square around its centre (side = max(w, h) after the margin), rounded to whole pixels and
    clipped to the frame; clipping makes a face at the frame's edge a non-square crop. The box
    keeps at least one pixel on each axis.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(round(cx - side / 2), 0), width - 1)
    top = min(max(round(cy - side / 2), 0), height - 1)
    right = min(max(round(cx + side / 2), left + 1), width)
    bottom = min(max(round(cy + side / 2), top + 1), height)
    return left, top, right, bottom


def largest_face(boxes: np.ndarray | None, probs: np.ndarray | None, *, threshold: float, min_face: int) -> np.ndarray | None:
    """The largest-area box among one frame's detections with ``prob >= threshold`` and shorter side ``>= min_face``.

    Shapes: boxes ``[k, 4]`` pixels ``(x0, y0, x1, y1)``, probs ``[k]``, as ``MTCNN.detect`` gives
    one frame (``None`` when it found nothing); returns float64 ``[4]`` or ``None``.
    """
    if boxes is None or len(boxes) == 0:
        return None
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)  # detect gives object-dtype arrays
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ok = (probs >= threshold) & (np.minimum(w, h) >= min_face)
    if not ok.any():
        return None
    area = np.where(ok, w * h, -np.inf)
    return boxes[int(np.argmax(area))]


class FaceCropper:
    """The largest face of each frame (facenet-pytorch MTCNN), with a margin; blank frames skipped.

    Args:
        margin: fraction of the face box's width/height added on each side before squaring.
        no_face: ``"frame"`` keeps the whole frame (box ``0,0,1,1``) when no face is found;
            ``"drop"`` leaves the frame out. Either way :attr:`FaceCrops.no_face` counts it.
        min_face: smallest face side in pixels, both MTCNN's pyramid floor and a filter on boxes.
        threshold: smallest O-net face probability a detection needs to count.
        device: where MTCNN runs.

    Why one ``detect`` call per frame, not one per batch: a batched call's boxes differ from a
    lone frame's by up to 4e-5 pixels (convolution rounding depends on the batch size; measured
    on facenet-pytorch 2.6.0, CPU, 1 or 2 threads), which can move a rounded crop edge by a pixel,
    so a frame's crop would depend on its neighbours and on how many frames were blank. On two
    shared CPU cores a batch of 16 frames of 360x270 took 26-43 ms a frame, one by one 35-49 ms.
    """

    def __init__(
        self,
        *,
        margin: float = 0.2,
        no_face: Literal["frame", "drop"] = "frame",
        min_face: int = 20,
        threshold: float = 0.9,
        device: torch.device = _CPU,
    ) -> None:
        if not 0.0 <= margin <= 1.0:
            raise ConfigError(f"features.visual.face_margin={margin!r}: must be in [0, 1] (a fraction of the face box per side)")
        if no_face not in ("frame", "drop"):
            raise ConfigError(f"features.visual.no_face={no_face!r}: choose 'frame' (keep the whole frame) or 'drop'")
        if isinstance(min_face, bool) or not isinstance(min_face, int) or min_face < 12:
            raise ConfigError(f"features.visual.min_face={min_face!r}: must be an integer >= 12 (pixels; MTCNN's window is 12)")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"face detection threshold={threshold!r}: must be a probability in [0, 1]")
        mtcnn = require_facenet()
        self.margin = margin
        self.no_face = no_face
        self.min_face = min_face
        self.threshold = threshold
        self.device = device
        self.detector = mtcnn(keep_all=True, min_face_size=min_face, device=device, post_process=False).eval()
        self._digest = weights_digest(self.detector)

    def describe(self) -> dict[str, Any]:
        """Detector, weights and cropping rules as plain JSON data, for the extractor's fingerprint."""
        return {
            "detector": "facenet_pytorch.MTCNN",
            "version": importlib.metadata.version("facenet-pytorch"),
            "digest": self._digest,
            "margin": self.margin,
            "no_face": self.no_face,
            "min_face": self.min_face,
            "threshold": self.threshold,
            "blank": {"max_mean": BLANK_MAX_MEAN, "min_std": BLANK_MIN_STD},
        }

    def detect(self, frame: np.ndarray) -> np.ndarray | None:
        """The largest qualifying face box (float64 ``[4]`` pixels) of one uint8 ``[H, W, 3]`` frame, or ``None``."""
        boxes, probs = self.detector.detect(frame)  # one frame in: [k, 4] and [k], or None and [None]
        return largest_face(boxes, probs, threshold=self.threshold, min_face=self.min_face)

    def crop(self, frames: np.ndarray) -> FaceCrops:
        """Face crops of uint8 RGB ``[n, H, W, 3]`` frames of one size; the non-blank ones go through MTCNN one by one.

        Images are copies, not views of ``frames``; ``kept`` stays in frame order.
        """
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 [n, H, W, 3]; got {frames.dtype} {tuple(frames.shape)}")
        height, width = frames.shape[1:3]
        candidates, blank = skip_blank(frames)
        images: list[np.ndarray] = []
        boxes: list[tuple[float, float, float, float]] = []
        kept: list[int] = []
        no_face = 0
        for i in candidates.tolist():
            face = self.detect(frames[i])
            if face is None:
                no_face += 1
                if self.no_face == "drop":
                    continue
                images.append(frames[i].copy())
                boxes.append((0.0, 0.0, 1.0, 1.0))
            else:
                x0, y0, x1, y1 = square_box(face, self.margin, width, height)
                images.append(frames[i, y0:y1, x0:x1].copy())
                boxes.append((x0 / width, y0 / height, x1 / width, y1 / height))
            kept.append(i)
        return FaceCrops(
            images=images,
            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            kept=np.asarray(kept, dtype=np.int64),
            blank=blank,
            no_face=no_face,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(detector='mtcnn', margin={self.margin}, no_face={self.no_face!r}, "
            f"min_face={self.min_face}, threshold={self.threshold}, device={str(self.device)!r})"
        )
