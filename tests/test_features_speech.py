"""Speech-encoder audio nodes: tiny random wav2vec 2.0, HuBERT, WavLM and data2vec-audio folders, no network.

Tolerances, measured on these tiny models: a clip padded in a batch matches it alone to ~5e-6
(relative); a clip read in chunks matches it whole to ~2e-7 at layer 0 (local: convolutions
only) and to ~3e-4 at the last layer, whose attention sees a chunk instead of the whole clip.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sync_tva import extract, predict, run
from sync_tva.config import AudioFeaturesConfig, load_config
from sync_tva.errors import ConfigError
from sync_tva.features.audio import AudioExtractor
from sync_tva.features.speech import SpeechExtractor, plan_chunks
from sync_tva.predictor import Predictor
from sync_tva.records import MediaRef, RawUtterance
from sync_tva.testing import (
    MELD_EMOTIONS,
    built_once,
    make_meld_tree,
    make_speech_model,
    write_clip,
    write_wav,
)

ROOT = Path(__file__).resolve().parents[1]
MONOLOGUE = ROOT.parent / "shared" / "data" / "audio" / "samples" / "cmu-mosei__84176.wav"
CPU = torch.device("cpu")
FAMILIES = [("wav2vec2", False), ("hubert", False), ("wavlm", False), ("data2vec-audio", False),
            ("wav2vec2", True), ("hubert", True), ("wavlm", True)]  # (kind, group_norm)
BATCHED = {("wav2vec2", False), ("hubert", False), ("wavlm", False)}  # layer norm and masks: padding-invariant


def speech_model(base: Path, kind: str = "wav2vec2", group_norm: bool = False, seed: int = 0) -> Path:
    name = f"speech-{kind}-{'group' if group_norm else 'layer'}-{seed}"
    return built_once(base, name, lambda d: make_speech_model(d, kind, group_norm=group_norm, seed=seed))


def speech(model: Path, **kw) -> SpeechExtractor:
    return SpeechExtractor(AudioFeaturesConfig(encoder="transformers", model=str(model), **kw), CPU)


def utt(path: Path, uid: str = "u") -> RawUtterance:
    return RawUtterance(uid=uid, dialogue="d", speaker="s", label=0, text="", audio=MediaRef(path), source=str(path))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("speech_media")
    write_wav(folder / "a.wav", seconds=1.6, sample_rate=44100)
    write_wav(folder / "long.wav", seconds=7.3, seed=2)
    write_clip(folder / "clip.mp4", seconds=3.0)
    write_clip(folder / "silent.mp4", seconds=0.5, audio=False)
    return folder


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "wavlm", "data2vec-audio"])
def test_the_frame_grid_is_the_encoders_own(base, kind):
    ex = speech(speech_model(base, kind))
    assert (ex.grid.stride, ex.grid.receptive) == (320, 400)  # 20 ms frames reading 25 ms at 16 kHz
    lengths = torch.tensor([399, 400, 719, 720, 16000, 16123])
    own = ex.model._get_feat_extract_output_lengths(lengths).tolist()
    assert [ex.grid.frames(int(n)) for n in lengths] == own
    assert all(ex.grid.frames(ex.grid.samples(n)) == n for n in (1, 7, 1000))


def test_shapes_and_spans_are_opensmiles_windows(base, media):
    ex = speech(speech_model(base), window_s=0.5)
    smile = AudioExtractor(AudioFeaturesConfig(feature_set="eGeMAPSv02", window_s=0.5))
    for clip in ("a.wav", "clip.mp4"):
        ours, theirs = ex.extract([utt(media / clip)])[0], smile.extract([utt(media / clip)])[0]
        assert ours.feat.shape == (len(theirs.feat), 32) and ours.feat.dtype == np.float32
        np.testing.assert_array_equal(ours.spans, theirs.spans)  # the same 0.5 s grid
    # max_nodes widens windows to (last frame start) / max_nodes; openSMILE's frames start every
    # 10 ms, ours every 20 ms, so the widened windows agree to within one of our frames.
    ex, smile = speech(speech_model(base), window_s=0.25, max_nodes=3), AudioExtractor(AudioFeaturesConfig(window_s=0.25, max_nodes=3))
    ours, theirs = ex.extract([utt(media / "a.wav")])[0], smile.extract([utt(media / "a.wav")])[0]
    assert ours.feat.shape == (3, 32) and len(theirs.feat) == 3
    np.testing.assert_allclose(ours.spans, theirs.spans, atol=0.02 + 1e-6)


def test_layers_pick_hidden_states_and_a_list_is_their_mean(base, media):
    model = speech_model(base)
    clip = [utt(media / "a.wav")]
    one, two = (speech(model, layer=i).extract(clip)[0].feat for i in (1, 2))
    mean = speech(model, layer=[2, 1]).extract(clip)[0].feat
    np.testing.assert_allclose(mean, (one + two) / 2, rtol=1e-5, atol=1e-6)  # window means and layer means commute
    assert speech(model, layer=-1).fingerprint == speech(model, layer=2).fingerprint  # two layers: -1 is 2
    with pytest.raises(ConfigError, match=r"features\.audio\.layer=3: .* has hidden states 0\.\.2"):
        speech(model, layer=3)


@pytest.mark.parametrize(("kind", "group_norm"), FAMILIES, ids=lambda v: str(v))
def test_padding_does_not_change_a_clips_nodes(base, media, kind, group_norm):
    ex = speech(speech_model(base, kind, group_norm), batch_size=4)
    assert ex.batched == ((kind, group_norm) in BATCHED)  # the others run one chunk at a time (see the probe)
    alone = ex.extract([utt(media / "a.wav")])[0]
    beside = ex.extract([utt(media / "a.wav"), utt(media / "long.wav", "v")])[0]
    np.testing.assert_allclose(beside.feat, alone.feat, rtol=1e-5, atol=1e-5 * np.abs(alone.feat).max())
    np.testing.assert_array_equal(beside.spans, alone.spans)


def test_chunk_plan_keeps_every_frame_once_from_the_better_placed_chunk():
    assert plan_chunks(50, 100, 10) == [(0, 0, 50)]
    for n, size, overlap in ((1000, 100, 10), (1001, 100, 0), (257, 64, 63)):
        plan = plan_chunks(n, size, overlap)
        assert plan[0][1] == 0 and plan[-1][2] == n and plan[-1][0] == n - size  # the last chunk ends with the clip
        assert all(prev[2] == nxt[1] for prev, nxt in zip(plan, plan[1:]))  # contiguous, no frame twice
        assert all(first <= keep_from < keep_to <= first + size for first, keep_from, keep_to in plan)
        inner = [(keep_from - first, first + size - keep_to) for first, keep_from, keep_to in plan[1:-1]]
        assert all(min(margins) >= overlap // 2 for margins in inner)  # context on both sides of a kept frame


@pytest.mark.parametrize(("kind", "group_norm"), [("wav2vec2", False), ("hubert", True)], ids=lambda v: str(v))
def test_a_long_clip_in_chunks_matches_it_whole(base, media, kind, group_norm):
    model, clip = speech_model(base, kind, group_norm), [utt(media / "long.wav")]
    for layer, rtol in ((0, 1e-5), (-1, 1e-2)):
        whole = speech(model, layer=layer, max_nodes=0).extract(clip)[0]
        chunked = speech(model, layer=layer, max_nodes=0, chunk_s=2.0, overlap_s=0.5)
        parts = chunked.extract(clip)[0]
        np.testing.assert_array_equal(parts.spans, whole.spans)
        if group_norm:  # each chunk normalises its own CNN features over time: close, not equal, even at layer 0
            rtol = 1e-2
        np.testing.assert_allclose(parts.feat, whole.feat, atol=rtol * np.abs(whole.feat).max())
        assert any("read in overlapping chunks" in note for note in chunked.take_notes())


@pytest.mark.skipif(not MONOLOGUE.is_file(), reason=f"{MONOLOGUE} (a 78 s CMU-MOSEI monologue) is not here")
def test_a_78_second_monologue_never_gives_the_encoder_more_than_a_batch_of_chunks(base):
    ex = speech(speech_model(base), batch_size=2)
    inputs: list[tuple[int, int]] = []
    ex.model.register_forward_pre_hook(lambda _, args: inputs.append(tuple(args[0].shape)))
    nodes = ex.extract([utt(MONOLOGUE)])[0]
    assert len(inputs) == 3 and all(b <= 2 and n <= 20 * 16000 for b, n in inputs)  # five chunks of at most 20 s, two per pass
    assert nodes.feat.shape == (32, 32) and np.isfinite(nodes.feat).all()
    assert nodes.spans[-1, 1] == pytest.approx(78.2, abs=0.2)


def test_the_cache_key_follows_weights_layers_and_pooling_only(base, tmp_path):
    model = speech_model(base)
    key = speech(model).fingerprint
    for changed in ({"layer": 1}, {"layer": [1, 2]}, {"window_s": 1.0}, {"max_nodes": 8}, {"chunk_s": 10.0}, {"overlap_s": 1.0}):
        assert speech(model, **changed).fingerprint != key, changed
    assert speech(speech_model(base, seed=1)).fingerprint != key  # other weights, same architecture
    for same in ({"batch_size": 1}, {"feature_set": "eGeMAPSv02"}, {"chunk_s": 20.001}, {"layer": 2}):
        assert speech(model, **same).fingerprint == key, same
    moved = shutil.copytree(model, tmp_path / model.name)
    assert speech(moved).fingerprint == key
    # The speech keys leave openSMILE's description, and so its store folders, exactly as they were.
    smile = AudioExtractor(AudioFeaturesConfig(model=str(model), layer=1, chunk_s=3.0))
    assert smile.fingerprint == AudioExtractor(AudioFeaturesConfig()).fingerprint
    assert set(smile.describe()) == {"extractor", "tool", "feature_set", "level", "window_s", "max_nodes", "sample_rate", "mono"}


def test_bad_settings_fail_before_any_work(base, media):
    model = speech_model(base)
    with pytest.raises(ConfigError, match=r"features\.audio\.sample_rate=8000: .* expects 16000 Hz"):
        speech(model, sample_rate=8000)
    for override, message in (("features.audio.overlap_s=20", r"overlap_s: 20\.0 must satisfy overlap_s < chunk_s"),
                              ("features.audio.layer=[]", r"layer: \[\] must name"),
                              ("features.audio.level=functionals", r"level: functionals are openSMILE's")):
        with pytest.raises(ConfigError, match=message):
            load_config(None, ["features.audio.encoder=transformers", override])
    out = speech(model).extract([utt(media / "silent.mp4"), utt(media / "a.wav")])
    assert out[0].reason == "no audio stream" and out[1].feat.shape == (4, 32)


def test_a_missing_model_folder_is_one_error_line(tmp_path, capfd):
    meld = make_meld_tree(tmp_path / "meld", per_split=1)
    gone = tmp_path / "no_such_model"
    args = ["--config", str(ROOT / "configs" / "meld.yaml"), f"data.root={meld}", f"features.store={tmp_path / 'store'}",
            "model.modalities=[audio]", "features.audio.encoder=transformers", f"features.audio.model={gone}"]
    assert extract.main(args) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"error: features.audio.model='{gone}': {gone} is not a folder; it must hold config.json, the weights " \
        "and preprocessor_config.json (written by save_pretrained)", err


def test_a_run_on_clips_with_a_speech_encoder_predicts_a_new_clip_from_its_checkpoint(base, tmp_path):
    model = speech_model(base)
    meld = make_meld_tree(tmp_path / "meld", per_split=8)
    out = tmp_path / "run"
    args = ["--config", str(ROOT / "configs" / "meld.yaml"), "--out", str(out), f"data.root={meld}",
            f"features.store={tmp_path / 'store'}", "features.progress=false", "model.modalities=[audio]",
            "features.audio.encoder=transformers", f"features.audio.model={model}", "features.audio.layer=[1,2]",
            "model.hidden=16", "model.heads=2",
            "train.epochs=2", "train.batch_size=8", "train.num_threads=1"]
    assert run.main(args) == 0
    clip = write_wav(tmp_path / "new.wav", seconds=1.3, seed=5)
    assert predict.main(["--run", str(out), str(clip), "--out", str(tmp_path / "p")]) == 0
    row = pd.read_csv(tmp_path / "p" / "predictions.csv").iloc[0]
    assert row["uid"] == "new" and sum(row[f"p_{name}"] for name in MELD_EMOTIONS) == pytest.approx(1.0, abs=1e-5)
    audio = Predictor.from_run(out).predict_clip(clip).utterances[0].features["audio"]
    np.testing.assert_allclose(audio, speech(model, layer=[1, 2]).extract([utt(clip)])[0].feat, rtol=1e-5, atol=1e-6)
