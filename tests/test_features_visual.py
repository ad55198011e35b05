"""Visual extractor: real torchvision ResNet-50 (random init) on frames PyAV decodes from generated clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sync_tva.config import VisualFeaturesConfig
from sync_tva.errors import ConfigError
from sync_tva.features.base import ExtractionFailure
from sync_tva.features.decode import frame_times, sample_frames
from sync_tva.features.visual import VisualExtractor
from sync_tva.records import MediaRef, RawUtterance
from sync_tva.testing import write_clip

CPU = torch.device("cpu")
SMALL = {"weights": None, "image_size": 32, "max_frames": 4}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    write_clip(folder / "short.mp4", seconds=1.0, fps=10)
    write_clip(folder / "long.mp4", seconds=3.0, fps=10, seed=1)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return folder


def utt(path: Path, uid: str = "u", **window) -> RawUtterance:
    ref = MediaRef(path, **window)
    return RawUtterance(uid=uid, dialogue="d", speaker="s", label=0, text="", audio=ref, video=ref, source=str(path))


def test_frame_sampling_rate_and_cap():
    assert frame_times(1.0, 2.0, 16).tolist() == [0.25, 0.75]
    assert len(frame_times(10.0, 2.0, 16)) == 16  # capped, spread evenly over the clip
    assert len(frame_times(0.1, 2.0, 16)) == 1  # a short clip still gives one frame


def test_frames_move_and_windows_cut(clips):
    frames, times = sample_frames(MediaRef(clips / "short.mp4"), fps=4, max_frames=16, short_side=48)
    assert frames.shape == (4, 48, 64, 3) and frames.dtype == np.uint8
    assert times.tolist() == pytest.approx([0.125, 0.375, 0.625, 0.875])
    assert not np.array_equal(frames[0], frames[-1])  # the square moved
    _, window_times = sample_frames(MediaRef(clips / "long.mp4", 1.0, 2.0), fps=2, max_frames=16, short_side=48)
    assert window_times.tolist() == pytest.approx([0.25, 0.75])  # relative to the window start


def test_shapes_spans_and_failures(clips):
    ex = VisualExtractor(VisualFeaturesConfig(**SMALL, fps=2), CPU, seed=0)
    out = ex.extract([utt(clips / "short.mp4", "a"), utt(clips / "missing.mp4", "b"),
                      utt(clips / "long.mp4", "c"), utt(clips / "corrupt.mp4", "d")])
    assert out[0].feat.shape == (2, 2048) and out[0].feat.dtype == np.float32
    assert out[2].feat.shape == (4, 2048)  # 3 s at 2 fps is 6 frames, capped at max_frames=4
    np.testing.assert_allclose(out[0].spans, [[0.0, 0.5], [0.5, 1.0]])
    assert isinstance(out[1], ExtractionFailure) and out[1].reason == "file not found"
    assert isinstance(out[3], ExtractionFailure) and "corrupt.mp4" in out[3].path and "cannot open media" in out[3].reason
    alone = ex.extract([utt(clips / "short.mp4")])[0].feat  # batching frames of several clips changes nothing
    np.testing.assert_allclose(alone, out[0].feat, rtol=1e-4, atol=1e-4)


def test_fingerprint_follows_weights_and_sampling():
    fp = VisualExtractor(VisualFeaturesConfig(**SMALL), CPU, seed=0).fingerprint
    assert fp == VisualExtractor(VisualFeaturesConfig(**SMALL), CPU, seed=0).fingerprint  # seeded: same on every shard
    assert fp != VisualExtractor(VisualFeaturesConfig(**SMALL), CPU, seed=1).fingerprint
    assert fp != VisualExtractor(VisualFeaturesConfig(**SMALL, fps=1.0), CPU, seed=0).fingerprint


def test_enum_weights_missing_offline_name_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=r"IMAGENET1K_V2: weight file .*resnet50-11ad3fa6.pth .*TORCH_HOME"):
        VisualExtractor(VisualFeaturesConfig(weights="IMAGENET1K_V2"), CPU, seed=0)
    with pytest.raises(ConfigError, match=r"choose from \['IMAGENET1K_V1', 'IMAGENET1K_V2'\]"):
        VisualExtractor(VisualFeaturesConfig(weights="IMAGENET"), CPU, seed=0)


def test_enum_weights_load_from_the_torch_cache(tmp_path, monkeypatch):
    from torchvision.models import resnet50

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    target.parent.mkdir(parents=True)
    torch.manual_seed(3)
    torch.save(resnet50().state_dict(), target)  # stands in for the downloaded file
    ex = VisualExtractor(VisualFeaturesConfig(weights="IMAGENET1K_V2", image_size=32), CPU, seed=0)
    assert ex.describe()["weights"] == "IMAGENET1K_V2"
    assert torch.equal(ex.backbone.module.conv1.weight, torch.load(target, weights_only=True)["conv1.weight"])
