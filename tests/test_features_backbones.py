"""Visual backbones: torchvision by name, a local state-dict file, the user's module:function, and the loud failures."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch
from torchvision.models import resnet50

from sync_tva.config import VisualFeaturesConfig
from sync_tva.errors import ConfigError
from sync_tva.features.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TorchvisionPreprocess,
    list_backbones,
    load_backbone,
)
from sync_tva.features.visual import VisualExtractor

CPU = torch.device("cpu")


def images(n: int, h: int = 40, w: int = 52, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_resnet50_whole_frames_equal_the_centre_crop_reference():
    """The registry path gives what ResNet-50 computes on a hand-made centre crop of a frame decoded at 8/7 of the crop."""
    cfg = VisualFeaturesConfig(weights=None, image_size=32)
    backbone = load_backbone(cfg, seed=0)
    frame = images(1, h=36, w=50)[0]  # shorter side 36 = 32 * 8 // 7, as the decoder delivers it
    got = backbone.encode([frame], CPU, batch_size=4)
    torch.manual_seed(0)
    reference = resnet50(weights=None)
    reference.fc = torch.nn.Identity()
    top, left = (36 - 32) // 2, (50 - 32) // 2
    x = torch.from_numpy(frame[top : top + 32, left : left + 32].copy()).permute(2, 0, 1).float()[None] / 255.0
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference.eval()(x).numpy()
    assert got.shape == (1, 2048)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_any_torchvision_classifier_by_name_gives_its_penultimate_width():
    backbone = load_backbone(VisualFeaturesConfig(backbone="mobilenet_v3_small", weights=None, image_size=32), seed=0)
    assert backbone.dim == 1024  # the last Linear (1024 -> 1000) removed
    assert backbone.encode(images(3), CPU, batch_size=2).shape == (3, 1024)
    assert backbone.description["backbone"] == "torchvision.mobilenet_v3_small"


def test_state_dict_file_weights_load_and_enter_the_fingerprint(tmp_path):
    torch.manual_seed(5)
    from torchvision.models import mobilenet_v3_small

    file = tmp_path / "mine.pth"
    torch.save(mobilenet_v3_small().state_dict(), file)
    base = {"backbone": "mobilenet_v3_small", "image_size": 32}
    loaded = VisualExtractor(VisualFeaturesConfig(**base, weights=str(file)), CPU, seed=0)
    assert torch.equal(loaded.backbone.module.features[0][0].weight, torch.load(file, weights_only=True)["features.0.0.weight"])
    assert loaded.fingerprint != VisualExtractor(VisualFeaturesConfig(**base, weights=None), CPU, seed=0).fingerprint
    with pytest.raises(ConfigError, match="no such state-dict file"):
        load_backbone(VisualFeaturesConfig(**base, weights=str(tmp_path / "absent.pth")), seed=0)


def test_user_module_function_backbone(tmp_path, monkeypatch):
    (tmp_path / "my_encoder.py").write_text(textwrap.dedent('''
        import numpy as np, torch

        class Grey:
            def __call__(self, imgs):
                return torch.stack([torch.from_numpy(np.ascontiguousarray(i)).float().mean(-1)[None, :8, :8] / 255 for i in imgs])
            def __repr__(self):
                return "Grey(8x8)"

        def build():
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5)), Grey()

        def broken():
            return "not a module"
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    backbone = load_backbone(VisualFeaturesConfig(backbone="my_encoder:build"), seed=0)
    assert backbone.dim == 5 and backbone.description["preprocess"] == "Grey(8x8)"
    assert backbone.encode(images(2), CPU, batch_size=8).shape == (2, 5)
    with pytest.raises(ConfigError, match=r"must return \(torch.nn.Module, preprocess callable\)"):
        load_backbone(VisualFeaturesConfig(backbone="my_encoder:broken"), seed=0)
    with pytest.raises(ConfigError, match="cannot load 'nope' from module 'my_encoder'"):
        load_backbone(VisualFeaturesConfig(backbone="my_encoder:nope"), seed=0)
    sys.modules.pop("my_encoder", None)


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(ConfigError, match="fer_mini_xception.*torchvision.models.list_models"):
        load_backbone(VisualFeaturesConfig(backbone="resnet5O"), seed=0)
    assert "fer_mini_xception" in list_backbones()


def test_preprocess_resizes_then_crops_and_normalises():
    pre = TorchvisionPreprocess(resize=16, crop=12)
    x = pre([np.full((32, 48, 3), 255, np.uint8), np.zeros((20, 20, 3), np.uint8)])
    assert x.shape == (2, 3, 12, 12)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), (1 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD), rtol=1e-5)
    np.testing.assert_allclose(x[1, :, 0, 0].numpy(), -np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD), rtol=1e-5)
