"""Small media files for tests, examples and benchmarks: clips with sound and moving frames, wavs,
a tiny text encoder, and MELD and IEMOCAP trees in their released layouts.

Everything is written with the libraries the package reads with (PyAV, tokenizers, transformers),
so whatever consumes these files exercises real decoding and real ``from_pretrained`` loading.
Sizes are small by default (a second of 64x48 video, a two-layer 32-wide RoBERTa) so a test
suite can build them on the fly; pass larger sizes for benchmarks.

Example::

    from sync_tva.testing import make_meld_tree
    root = make_meld_tree(tmp / "meld", per_split=4)   # three CSVs and 12 mp4 clips

This module imports only the standard library, numpy and PyAV (``tokenizers`` and
``transformers`` inside :func:`make_text_model`): it sits at the foot of the pipeline and
depends on nothing else in ``sync_tva``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "FAST",
    "MELD_EMOTIONS",
    "SENTENCES",
    "SPEECH_KINDS",
    "built_once",
    "make_clip_csv",
    "make_iemocap_tree",
    "make_meld_tree",
    "make_speech_model",
    "make_text_model",
    "write_clip",
    "write_wav",
]

SENTENCES = [
    "Oh my God, he is lost it.",
    "What?",
    "You must have had your hands full.",
    "That I did. That I did.",
    "So let us talk a little bit about your duties.",
    "I am not sure that is a good idea!",
    "Why would you say that to me?",
    "Okay, fine, whatever you want.",
]
MELD_EMOTIONS = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]


def _tone(seconds: float, rate: int, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def write_clip(path: Path, seconds: float = 1.0, fps: int = 10, size: tuple[int, int] = (64, 48), seed: int = 0,
               sample_rate: int = 16000, audio: bool = True, audio_codec: str = "aac", audio_layout: str = "mono") -> Path:
    """An mp4/avi (by suffix) with an MPEG-4 video of a moving square and, optionally, a tone
    (``audio_codec`` e.g. ``aac`` or ``libmp3lame``); with more than one channel the tone is on the
    first and the others are silent, so a mono downmix keeps it at a known share."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        aus = out.add_stream(audio_codec, rate=sample_rate, layout=audio_layout) if audio else None
        background = rng.integers(0, 255, size=3)
        for i in range(int(seconds * fps)):
            img = np.empty((height, width, 3), np.uint8)
            img[:] = background
            x = (i * 4) % (width - 8)
            img[10:18, x : x + 8] = 255 - background  # the square moves 4 px per frame
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        if aus is not None:
            tone = _tone(seconds, sample_rate, 220.0 + 40 * seed)
            signal = np.zeros((aus.codec_context.channels, len(tone)), np.float32)  # [channels, samples]
            signal[0] = tone
            per_frame = aus.codec_context.frame_size or 1024  # samples per encoder frame: 1024 for AAC, 1152 for MP3
            for start in range(0, signal.shape[1], per_frame):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(signal[:, start : start + per_frame]), format="fltp", layout=audio_layout)
                frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
                for packet in aus.encode(frame):
                    out.mux(packet)
            for packet in aus.encode(None):
                out.mux(packet)
    return path


def write_wav(path: Path, seconds: float = 1.0, sample_rate: int = 16000, seed: int = 0) -> Path:
    """A 16-bit mono wav tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    signal = (_tone(seconds, sample_rate, 200.0 + 30 * seed) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(signal[None, :], format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def make_text_model(folder: Path, hidden: int = 32) -> Path:
    """A tiny random RoBERTa and a byte-level BPE tokenizer trained on SENTENCES, saved with save_pretrained."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(SENTENCES * 4, vocab_size=300, min_frequency=1, special_tokens=specials)
    vocab, merges = bpe.save_model(str(folder))
    tokenizer = RobertaTokenizerFast(vocab_file=vocab, merges_file=merges)
    tokenizer.save_pretrained(str(folder))
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=160, pad_token_id=tokenizer.pad_token_id,
    )
    RobertaModel(config).save_pretrained(str(folder))
    return folder


def make_meld_tree(root: Path, per_split: int = 12, corrupt: tuple[str, str] | None = None,
                   missing: tuple[str, str] | None = None, clips: bool = True) -> Path:
    """MELD's exact layout: three ``*_sent_emo.csv`` and the three clip folders, ``per_split`` utterances each.

    ``corrupt``/``missing`` are ``(split, "diaD_uttU")``: that clip is garbage bytes, or absent.
    """
    files = {"train": ("train_sent_emo.csv", "train_splits"), "dev": ("dev_sent_emo.csv", "dev_splits_complete"),
             "test": ("test_sent_emo.csv", "output_repeated_splits_test")}
    header = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
              "Season", "Episode", "StartTime", "EndTime"]
    root.mkdir(parents=True, exist_ok=True)
    for s, (split, (csv_name, folder)) in enumerate(files.items()):
        with open(root / csv_name, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for k in range(per_split):
                dia, utt = k // 4, k % 4
                emotion = MELD_EMOTIONS[(k + s) % len(MELD_EMOTIONS)]
                writer.writerow([k + 1, SENTENCES[(k + s) % len(SENTENCES)], ["Ross", "Rachel"][k % 2], emotion,
                                 "neutral", dia, utt, 1, 1, "00:00:01,000", "00:00:02,000"])
                name = f"dia{dia}_utt{utt}"
                if not clips or (split, name) == missing:
                    continue
                clip = root / folder / f"{name}.mp4"
                if (split, name) == corrupt:
                    clip.parent.mkdir(parents=True, exist_ok=True)
                    clip.write_bytes(np.random.default_rng(k).integers(0, 255, 4000, dtype=np.uint8).tobytes())
                else:
                    write_clip(clip, seconds=0.6 + 0.1 * (k % 3), seed=k)
    return root


def make_clip_csv(folder: Path, rows: int = 8) -> Path:
    """``train.csv`` (and an identical ``test.csv``) of ``rows`` utterances in dialogues of two turns,
    whose ``Clip`` column holds each clip's path relative to ``folder``: read it with ``data.media={Clip}``."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID", "Clip"])
        for k in range(rows):
            clip = write_clip(folder / "clips" / f"c{k}.mp4", seconds=0.6, seed=k)
            writer.writerow([SENTENCES[k % len(SENTENCES)], "A", ["joy", "anger"][k % 2], k // 2, k % 2, clip.relative_to(folder)])
    (folder / "test.csv").write_text((folder / "train.csv").read_text())
    return folder


def make_iemocap_tree(root: Path, sessions: tuple[int, ...] = (1, 2, 5)) -> Path:
    """IEMOCAP's released layout, one dialogue of four utterances per session (one labelled xxx, left out)."""
    codes = ["neu", "fru", "xxx", "hap"]
    for session in sessions:
        base = root / f"Session{session}"
        for gender in "FM":
            dialogue = f"Ses{session:02d}{gender}_impro01"
            evaluation, transcript = [], []
            for k, code in enumerate(codes):
                uid = f"{dialogue}_{'FM'[k % 2]}{k:03d}"
                start, end = 0.2 + k * 0.5, 0.6 + k * 0.5
                evaluation += [f"[{start:.4f} - {end:.4f}]\t{uid}\t{code}\t[2.5000, 2.5000, 2.5000]",
                               f"C-E1:\t{code};\t()", ""]
                transcript.append(f"{uid} [{start:08.4f}-{end:08.4f}]: {SENTENCES[k]}")
                write_wav(base / "sentences" / "wav" / dialogue / f"{uid}.wav", seconds=end - start, seed=k)
            (base / "dialog" / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
            (base / "dialog" / "EmoEvaluation" / f"{dialogue}.txt").write_text(
                "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n" + "\n".join(evaluation))
            (base / "dialog" / "transcriptions").mkdir(parents=True, exist_ok=True)
            (base / "dialog" / "transcriptions" / f"{dialogue}.txt").write_text("\n".join(transcript) + "\n")
            write_clip(base / "dialog" / "avi" / "DivX" / f"{dialogue}.avi", seconds=2.2, seed=session, audio=True)
    return root


def built_once(base: Path, name: str, build: Callable[[Path], object]) -> Path:
    """``base/name`` built by ``build(folder)`` the first time anyone asks for it under ``base``.

    A ``.built`` marker is written after ``build`` returns, so a build interrupted half-way is redone.
    """
    folder = base / name
    done = folder / ".built"
    if not done.exists():
        build(folder)
        done.write_text("ok")
    return folder


# Config overrides that make every extractor tiny and fast (random ResNet-50 on 32 px crops, eGeMAPS LLDs).
FAST = [
    "features.visual.weights=null",
    "features.visual.image_size=32",
    "features.visual.max_frames=4",
    "features.audio.feature_set=eGeMAPSv02",
    "features.progress=false",
]


SPEECH_KINDS = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")


def make_speech_model(folder: Path, kind: str = "wav2vec2", group_norm: bool = False, hidden: int = 32, seed: int = 0) -> Path:
    """A tiny random speech encoder of ``kind`` (one of SPEECH_KINDS) and its Wav2Vec2FeatureExtractor, saved with save_pretrained.

    The convolutional stack has the real kernels and strides (a frame every 20 ms reading 25 ms of
    16 kHz audio) at 16 channels, under two ``hidden``-wide transformer layers; weights are seeded.
    ``group_norm`` gives the base models' feature encoder (group norm over time, trained without an
    attention mask) instead of the large models' layer norm (with one); data2vec-audio has only the latter.
    """
    import torch
    from transformers import (
        Data2VecAudioConfig,
        Data2VecAudioModel,
        HubertConfig,
        HubertModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        WavLMConfig,
        WavLMModel,
    )

    classes = {"wav2vec2": (Wav2Vec2Config, Wav2Vec2Model), "hubert": (HubertConfig, HubertModel),
               "wavlm": (WavLMConfig, WavLMModel), "data2vec-audio": (Data2VecAudioConfig, Data2VecAudioModel)}
    if kind not in classes or (group_norm and kind == "data2vec-audio"):
        raise ValueError(f"kind {kind!r} (group_norm={group_norm}): expected one of {SPEECH_KINDS}; data2vec-audio has no group norm")
    config_cls, model_cls = classes[kind]
    sizes = dict(hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * hidden,
                 conv_dim=(16,) * 7, num_conv_pos_embedding_groups=2)
    if kind == "data2vec-audio":
        config = config_cls(**sizes, conv_pos_kernel_size=5, num_conv_pos_embeddings=2)
    else:
        config = config_cls(**sizes, num_conv_pos_embeddings=16, feat_extract_norm="group" if group_norm else "layer")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = model_cls(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=not group_norm).save_pretrained(str(folder))
    return folder
