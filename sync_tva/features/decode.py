"""Media decoding with PyAV (which carries its own FFmpeg): resampled mono audio and sampled video frames.

Every decoding problem (missing file, corrupt container, no stream of the wanted kind) becomes
an :class:`ExtractionFailure` naming the file, so one bad clip never stops a corpus run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import av
import numpy as np

from ..records import MediaRef
from .base import ExtractionFailure

__all__ = ["decode_audio", "frame_times", "sample_frames"]


def _fail(ref: MediaRef, reason: str) -> ExtractionFailure:
    """A failure naming the file, with the time window in the reason when there is one."""
    if ref.start_s is not None or ref.end_s is not None:
        reason = f"{reason} (window {ref.start_s}-{ref.end_s} s)"
    return ExtractionFailure(str(ref.path), reason)


@contextmanager
def _open(ref: MediaRef) -> Iterator[av.container.InputContainer]:
    """Open ``ref.path`` for reading; a missing or unreadable file is an ExtractionFailure."""
    if not ref.path.is_file():
        raise _fail(ref, "file not found")
    try:
        container = av.open(str(ref.path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise _fail(ref, f"cannot open media: {exc}") from exc
    try:
        yield container
    finally:
        container.close()


def decode_audio(ref: MediaRef, sample_rate: int) -> np.ndarray:
    """The first audio stream of ``ref`` as float32 mono samples at ``sample_rate``, cut to its window."""
    with _open(ref) as container:
        if not container.streams.audio:
            raise _fail(ref, "no audio stream")
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(container.streams.audio[0]):
                chunks.extend(out.to_ndarray()[0] for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray()[0] for out in resampler.resample(None))  # flush the resampler
        except av.FFmpegError as exc:
            raise _fail(ref, f"corrupt audio: {exc}") from exc
    signal = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    start = round((ref.start_s or 0.0) * sample_rate)
    end = None if ref.end_s is None else round(ref.end_s * sample_rate)
    signal = signal[start:end]
    if signal.size == 0:
        raise _fail(ref, "no audio samples in the clip (or its window)")
    return signal


def frame_times(duration_s: float, fps: float, max_frames: int) -> np.ndarray:
    """Sampling instants (seconds from the clip start): ``fps`` per second, at most ``max_frames``, evenly spread."""
    n = min(max_frames, max(1, round(duration_s * fps)))
    return ((np.arange(n) + 0.5) * duration_s / n).astype(np.float64)


def _duration(ref: MediaRef, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    raise _fail(ref, "video duration unknown")


def _rgb(frame: av.VideoFrame, short_side: int, shrink_only: bool) -> np.ndarray:
    """The frame as uint8 RGB ``[H, W, 3]`` with its shorter side scaled to ``short_side`` (FFmpeg's swscale);
    with ``shrink_only`` a frame already smaller keeps its size."""
    scale = short_side / min(frame.width, frame.height)
    if shrink_only:
        scale = min(scale, 1.0)
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    return frame.reformat(width=width, height=height, format="rgb24").to_ndarray()


def sample_frames(
    ref: MediaRef, fps: float, max_frames: int, short_side: int, *, shrink_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Frames of ``ref`` sampled at ``fps`` (at most ``max_frames``), resized; returns ``(frames, times)``.

    Shapes: frames uint8 ``[n, H, W, 3]`` (H or W equals ``short_side``, or less with
    ``shrink_only``); times float32 ``[n]`` in seconds from the start of the utterance (its
    window, for dialogue videos).
    """
    with _open(ref) as container:
        if not container.streams.video:
            raise _fail(ref, "no video stream")
        stream = container.streams.video[0]
        start = ref.start_s or 0.0
        end = ref.end_s if ref.end_s is not None else _duration(ref, container, stream)
        targets = start + frame_times(max(end - start, 1e-3), fps, max_frames)
        if start > 0 and stream.time_base is not None:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)  # to the keyframe before
        frames: list[np.ndarray] = []
        times: list[float] = []
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else math.inf
                while len(frames) < len(targets) and t >= targets[len(frames)] - 0.5 / max(fps, 1e-6):
                    frames.append(_rgb(frame, short_side, shrink_only))
                    times.append(targets[len(times)] - start)
                if len(frames) == len(targets):
                    break
        except av.FFmpegError as exc:
            raise _fail(ref, f"corrupt video: {exc}") from exc
    if not frames:
        raise _fail(ref, "no video frames in the clip (or its window)")
    return np.stack(frames), np.asarray(times, dtype=np.float32)
