"""Face cropping: blank frames, the crop geometry on a fake detector, and MTCNN on real faces (shared videos)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from sync_tva.errors import ConfigError
from sync_tva.features.decode import sample_frames
from sync_tva.features.faces import FaceCropper, FaceCrops, is_blank, require_facenet, skip_blank, square_box
from sync_tva.records import MediaRef

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "video"  # real clips, only in the project's shared folder
PEXELS = VIDEO / "pexels_wolfgang_langer_emotions.mp4"
JAVA = VIDEO / "javanese"
JAVA_FPS = 29.97  # every Java-SED clip's frame rate (its README)

H, W = 100, 200  # synthetic frames


def textured(rng: np.random.Generator, tag: int) -> np.ndarray:
    """A noisy uint8 ``[H, W, 3]`` frame whose first pixel is ``tag``, so a fake detector knows which frame it got."""
    frame = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    frame[0, 0, 0] = tag
    return frame


# ---------------------------------------------------------------------------- blank frames


def test_is_blank_black_flat_noisy_textured(rng):
    assert is_blank(np.zeros((H, W, 3), np.uint8))
    fade = rng.integers(0, 20, size=(H, W, 3)).astype(np.uint8)  # a dark fade-in step: mean luma ~10, not flat
    assert is_blank(fade)
    assert is_blank(np.full((H, W, 3), (200, 30, 30), np.uint8))  # one flat colour
    almost_flat = np.clip(128 + rng.normal(0, 1.5, size=(H, W, 3)), 0, 255).astype(np.uint8)  # encoder noise on grey
    assert is_blank(almost_flat)
    assert not is_blank(rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8))
    ramp = np.broadcast_to(np.linspace(0, 255, W, dtype=np.float32)[None, :, None], (H, W, 3)).astype(np.uint8)
    assert not is_blank(ramp)
    dim_scene = (ramp // 6).astype(np.uint8)  # dark (mean luma ~21) but with content: kept
    assert not is_blank(dim_scene)
    assert is_blank(dim_scene, max_mean=30.0)


def test_skip_blank_counts(rng):
    frames = np.stack([np.zeros((H, W, 3), np.uint8), textured(rng, 1), np.full((H, W, 3), 90, np.uint8), textured(rng, 2)])
    keep, blank = skip_blank(frames)
    assert keep.dtype == np.int64 and keep.tolist() == [1, 3] and blank == 2
    keep, blank = skip_blank(frames[:0])
    assert keep.tolist() == [] and blank == 0


# ---------------------------------------------------------------------------- geometry, on a fake detector


def test_square_box_margin_and_clipping():
    # 50 x 60 face centred at (125, 50): side 60 * 1.4 = 84 around the centre
    assert square_box(np.array([100.0, 20.0, 150.0, 80.0]), 0.2, W, H) == (83, 8, 167, 92)
    assert square_box(np.array([100.0, 20.0, 150.0, 80.0]), 0.0, W, H) == (95, 20, 155, 80)
    # MTCNN boxes may leave the frame: clipped, so no longer square
    assert square_box(np.array([-10.0, -5.0, 30.0, 35.0]), 0.0, W, H) == (0, 0, 30, 35)
    assert square_box(np.array([175.0, 30.0, 199.0, 60.0]), 0.2, W, H) == (166, 24, 200, 66)


@pytest.fixture
def fake_cropper(monkeypatch):
    """A factory of FaceCroppers whose MTCNN answers from a table keyed by the frame's tag; it records the tags it saw."""
    pytest.importorskip("facenet_pytorch", reason="facenet-pytorch is not installed (pip install 'sync_tva[faces]')")
    seen: list[int] = []
    table = {
        # two faces and two rejects: prob below threshold (huge), shorter side below min_face (wide)
        10: ([[10, 10, 40, 40], [100, 20, 150, 80], [0, 0, 200, 100], [0, 0, 199, 16]], [0.99, 0.95, 0.5, 0.99]),
        20: ([[175, 30, 199, 60]], [0.99]),  # at the right edge: clipped crop
        40: ([[20, 20, 80, 80]], [0.6]),  # only an unlikely face
    }

    def detect(frame: np.ndarray):  # MTCNN.detect's answer for one frame: object arrays, or None and [None]
        tag = int(frame[0, 0, 0])
        seen.append(tag)
        if tag not in table:
            return None, np.array([None], dtype=object)
        boxes, probs = table[tag]
        return np.array(boxes, dtype=np.float32).astype(object), np.array(probs, dtype=np.float32).astype(object)

    def make(**kwargs) -> FaceCropper:
        cropper = FaceCropper(**kwargs)
        monkeypatch.setattr(cropper.detector, "detect", detect)
        return cropper

    make.seen = seen  # type: ignore[attr-defined]
    return make


def five_frames(rng: np.random.Generator) -> np.ndarray:
    """Frames tagged 10, 20, 30 (no face), a black one, 40 (an unlikely face): uint8 ``[5, H, W, 3]``."""
    black = np.zeros((H, W, 3), np.uint8)
    return np.stack([textured(rng, 10), textured(rng, 20), textured(rng, 30), black, textured(rng, 40)])


def test_crop_largest_face_as_fractions(fake_cropper, rng):
    frames = five_frames(rng)
    out = fake_cropper(margin=0.2).crop(frames)
    assert fake_cropper.seen == [10, 20, 30, 40]  # the black frame never reaches the detector
    assert out.kept.dtype == np.int64 and out.kept.tolist() == [0, 1, 2, 4]
    assert (out.blank, out.no_face) == (1, 2)
    assert out.boxes.dtype == np.float32 and out.boxes.shape == (4, 4)
    faces = [[83 / W, 8 / H, 167 / W, 92 / H], [166 / W, 24 / H, 1, 66 / H]]
    expected = np.array([*faces, [0, 0, 1, 1], [0, 0, 1, 1]], np.float32)
    np.testing.assert_array_equal(out.boxes, expected)
    np.testing.assert_array_equal(out.images[0], frames[0, 8:92, 83:167])  # the largest qualifying face
    np.testing.assert_array_equal(out.images[1], frames[1, 24:66, 166:200])  # clipped: 42 x 34
    np.testing.assert_array_equal(out.images[2], frames[2])  # no face: the whole frame
    np.testing.assert_array_equal(out.images[3], frames[4])
    for image, box, i in zip(out.images, out.boxes, out.kept):  # every crop is the slice its stored box names
        x0, y0, x1, y1 = np.round(box * [W, H, W, H]).astype(int)
        np.testing.assert_array_equal(image, frames[i, y0:y1, x0:x1])
    assert not np.shares_memory(out.images[0], frames)


def test_crop_drop_policy_counts_what_it_drops(fake_cropper, rng):
    frames = five_frames(rng)
    out = fake_cropper(no_face="drop").crop(frames)
    assert out.kept.tolist() == [0, 1] and len(out.images) == 2 and out.boxes.shape == (2, 4)
    assert (out.blank, out.no_face) == (1, 2)
    assert len(out.kept) + out.blank + out.no_face == len(frames)


def test_crop_all_blank_and_bad_input(fake_cropper):
    cropper = fake_cropper()
    out = cropper.crop(np.zeros((3, H, W, 3), np.uint8))
    assert fake_cropper.seen == [] and out.images == []
    assert out.boxes.shape == (0, 4) and out.kept.shape == (0,)
    assert (out.blank, out.no_face) == (3, 0)
    with pytest.raises(ValueError, match=r"uint8 \[n, H, W, 3\]"):
        cropper.crop(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ValueError, match="float32"):
        cropper.crop(np.zeros((1, H, W, 3), np.float32))


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"margin": -0.1}, "features.visual.face_margin"),
        ({"margin": 1.5}, "features.visual.face_margin"),
        ({"no_face": "skip"}, "features.visual.no_face"),
        ({"min_face": 5}, "features.visual.min_face"),
        ({"min_face": 20.0}, "features.visual.min_face"),
    ],
)
def test_bad_arguments_name_the_config_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        FaceCropper(**kwargs)


def test_require_facenet_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # what an absent package looks like to import
    with pytest.raises(ConfigError) as info:
        require_facenet()
    assert str(info.value) == "features.visual.face=mtcnn needs facenet-pytorch: pip install 'sync_tva[faces]' (or make install)"
    with pytest.raises(ConfigError, match="facenet-pytorch"):
        FaceCropper()


def test_describe_is_json_and_tracks_the_settings():
    pytest.importorskip("facenet_pytorch", reason="facenet-pytorch is not installed")
    a, b, c = FaceCropper(), FaceCropper(), FaceCropper(margin=0.3)
    assert json.dumps(a.describe(), sort_keys=True) == json.dumps(b.describe(), sort_keys=True)
    assert a.describe() != c.describe() and c.describe()["margin"] == 0.3
    assert a.describe()["digest"] == c.describe()["digest"] and len(a.describe()["digest"]) == 16
    assert a.describe()["version"] and a.describe()["detector"] == "facenet_pytorch.MTCNN"
    assert repr(c) == (
        "FaceCropper(detector='mtcnn', margin=0.3, no_face='frame', min_face=20, threshold=0.9, device='cpu')"
    )


# ---------------------------------------------------------------------------- real faces


@pytest.fixture(scope="module")
def cropper() -> Iterator[FaceCropper]:
    """The real MTCNN on one torch thread: on a shared CPU, two threads wait on each other (10x slower under load)."""
    pytest.importorskip("facenet_pytorch", reason="facenet-pytorch is not installed (pip install 'sync_tva[faces]')")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield FaceCropper()
    torch.set_num_threads(before)


def frames_of(path: Path, fps: float, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames as the visual extractor samples them (shorter side 270), or a skip when the clip is absent."""
    if not path.is_file():
        pytest.skip(f"{path} not found (only in the project's shared folder)")
    return sample_frames(MediaRef(path), fps, max_frames, 270)


def checked_crop(cropper: FaceCropper, frames: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> FaceCrops:
    """``cropper.crop(frames)``, checked: faces in nearly every non-blank frame, each 5-95% of the frame's
    height, each crop inside the frame and enclosing its face.

    95%, not less: the Pexels clip is a close-up whose face boxes span 74-92% of the frame's height.
    """
    faces: list[np.ndarray | None] = []  # each detection, in call order: that of out.kept under no_face="frame"
    detect = cropper.detect

    def recorded(frame: np.ndarray) -> np.ndarray | None:
        faces.append(detect(frame))
        return faces[-1]

    monkeypatch.setattr(cropper, "detect", recorded)
    out = cropper.crop(frames)
    n = len(frames) - out.blank
    assert out.no_face <= 0.1 * n, f"{out.no_face} of {n} frames without a face"
    h, w = frames.shape[1:3]
    for face, box in zip(faces, out.boxes):
        assert (0 <= box).all() and (box <= 1).all() and box[2] > box[0] and box[3] > box[1]
        if face is None:
            continue
        assert 0.05 <= (face[3] - face[1]) / h <= 0.95
        inside = np.clip(face / [w, h, w, h], 0, 1)
        assert (box[:2] <= inside[:2] + 1e-3).all() and (box[2:] >= inside[2:] - 1e-3).all()
    return out


def test_pexels_faces(cropper, monkeypatch):
    frames, _ = frames_of(PEXELS, 0.5, 8)
    checked_crop(cropper, frames, monkeypatch)


def test_java_sed_faces_and_black_opening(cropper, monkeypatch):
    frames, _ = frames_of(JAVA / "01-01-01_01.mp4", 2.0, 8)
    checked_crop(cropper, frames, monkeypatch)
    with open(JAVA / "labels.csv", newline="") as f:
        row = max(csv.DictReader(f), key=lambda r: int(r["black_frames"]))  # the longest black opening
    frames, times = frames_of(JAVA / row["file"], 4.0, 16)
    black_s = int(row["black_frames"]) / JAVA_FPS
    out = checked_crop(cropper, frames, monkeypatch)
    # sample_frames takes the first frame at or after (time - 0.5 / fps): surely black before black_s, maybe up to 1/8 s after
    assert (times < black_s).sum() <= out.blank <= (times - 0.125 < black_s).sum()
    assert out.blank >= 1
    assert out.kept.tolist() == list(range(out.blank, len(frames)))  # the opening frames were blank, and only those


def test_batched_detect_matches_one_by_one(cropper):
    """Why crop detects frame by frame: a batch finds the same faces, but its boxes move by ~1e-5 pixels."""
    frames, _ = frames_of(JAVA / "01-01-01_01.mp4", 1.0, 4)
    boxes, probs = cropper.detector.detect(frames)
    for i, frame in enumerate(frames):
        one_boxes, one_probs = cropper.detector.detect(frame)
        assert len(one_boxes) == len(boxes[i])
        np.testing.assert_allclose(np.asarray(boxes[i], float), np.asarray(one_boxes, float), atol=1e-3)
        np.testing.assert_allclose(np.asarray(probs[i], float), np.asarray(one_probs, float), atol=1e-5)
    whole = cropper.crop(frames)
    alone = [cropper.crop(frames[i : i + 1]) for i in range(len(frames))]  # a crop ignores its neighbours
    np.testing.assert_array_equal(whole.boxes, np.concatenate([a.boxes for a in alone]))
