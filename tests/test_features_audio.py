"""Audio extractor: real openSMILE on tracks PyAV decodes and resamples from generated wavs and mp4 clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sync_tva.config import AudioFeaturesConfig
from sync_tva.features.audio import AudioExtractor, pool_windows
from sync_tva.features.base import ExtractionFailure
from sync_tva.features.decode import decode_audio
from sync_tva.records import MediaRef, RawUtterance
from sync_tva.testing import write_clip, write_wav


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("audio")
    write_wav(folder / "a.wav", seconds=1.6, sample_rate=44100)
    write_clip(folder / "clip.mp4", seconds=1.0)
    write_clip(folder / "silent.mp4", seconds=0.5, audio=False)
    return folder


def utt(path: Path) -> RawUtterance:
    return RawUtterance(uid="u", dialogue="d", speaker="s", label=0, text="", audio=MediaRef(path), source=str(path))


def test_decode_resamples_to_mono_at_the_asked_rate(media):
    signal = decode_audio(MediaRef(media / "a.wav"), 16000)
    assert signal.dtype == np.float32 and abs(len(signal) - 1.6 * 16000) < 200
    window = decode_audio(MediaRef(media / "a.wav", 0.5, 1.0), 16000)
    assert abs(len(window) - 8000) <= 1


def test_frame_nodes_pool_windows(media):
    ex = AudioExtractor(AudioFeaturesConfig(feature_set="eGeMAPSv02", window_s=0.5))
    assert ex.dim == 25
    out = ex.extract([utt(media / "a.wav"), utt(media / "clip.mp4")])
    assert out[0].feat.shape == (4, 25)  # 1.6 s in 0.5 s windows
    assert out[0].feat.dtype == np.float32 and np.isfinite(out[0].feat).all()
    np.testing.assert_allclose(out[0].spans[0], [0.0, 0.5])
    assert out[1].feat.shape[1] == 25 and out[1].feat.shape[0] >= 2


def test_functionals_and_compare(media):
    functionals = AudioExtractor(AudioFeaturesConfig(feature_set="eGeMAPSv02", level="functionals"))
    assert functionals.extract([utt(media / "clip.mp4")])[0].feat.shape == (1, 88)
    compare = AudioExtractor(AudioFeaturesConfig(feature_set="ComParE_2016", window_s=0.25, max_nodes=3))
    assert compare.extract([utt(media / "a.wav")])[0].feat.shape == (3, 65)  # windows widened to fit 3 nodes


def test_failures_do_not_stop_the_batch(media):
    ex = AudioExtractor(AudioFeaturesConfig(feature_set="eGeMAPSv02"))
    out = ex.extract([utt(media / "silent.mp4"), utt(media / "gone.wav"), utt(media / "a.wav")])
    assert isinstance(out[0], ExtractionFailure) and out[0].reason == "no audio stream"
    assert isinstance(out[1], ExtractionFailure) and out[1].path.endswith("gone.wav")
    assert out[2].feat.shape == (4, 25)


def test_fingerprint_follows_feature_set_and_pooling():
    a = AudioExtractor(AudioFeaturesConfig(feature_set="eGeMAPSv02")).fingerprint
    assert a == AudioExtractor(AudioFeaturesConfig(feature_set="eGeMAPSv02")).fingerprint
    assert a != AudioExtractor(AudioFeaturesConfig(feature_set="ComParE_2016")).fingerprint
    assert a != AudioExtractor(AudioFeaturesConfig(feature_set="eGeMAPSv02", window_s=1.0)).fingerprint


def test_pool_windows_means_by_window():
    lld = np.arange(6, dtype=np.float32)[:, None]
    nodes, spans = pool_windows(lld, np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]), window_s=0.3, max_nodes=0)
    assert nodes[:, 0].tolist() == pytest.approx([1.0, 4.0])
    np.testing.assert_allclose(spans, [[0.0, 0.3], [0.3, 0.6]], atol=1e-6)


def test_stereo_mp3_in_mp4_is_downmixed_and_resampled(tmp_path):
    """Java-SED's tracks: stereo MP3 at 44.1 kHz inside MP4 decode to mono at the asked rate, tone intact.

    The clip's left channel carries a 420 Hz tone of peak 0.45 (0.3, modulated by 1 + 0.5 sin), the right is silent."""
    clip = write_clip(tmp_path / "stereo.mp4", seconds=1.5, seed=5, sample_rate=44100, audio_codec="libmp3lame", audio_layout="stereo")
    signal = decode_audio(MediaRef(clip), 16000)
    assert signal.ndim == 1 and signal.dtype == np.float32
    assert abs(len(signal) / 16000 - 1.5) < 0.1  # MP3 priming/padding adds a few ms at most
    spectrum = np.abs(np.fft.rfft(signal))
    peak_hz = np.argmax(spectrum) * 16000 / len(signal)
    assert abs(peak_hz - 420.0) < 5.0
    middle = signal[4000:-4000]
    assert 0.15 < np.abs(middle).max() < 0.35  # the mono downmix halves the left channel's 0.45 (silent right)
