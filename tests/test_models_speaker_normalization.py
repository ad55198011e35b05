"""Speaker normalisation: each speaker's own statistics over the inputs given together, shrunk toward training ones."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sync_tva.config import ConfigError, load_config
from sync_tva.graphs import load_schema
from sync_tva.models import SpeakerNormalizer, build_model, normalize_speakers
from sync_tva.records import Utterance
from sync_tva.train.experiment import build_experiment

DIMS = {"audio": 3}


def utterance(uid: str, speaker: str, nodes: np.ndarray, label: int = 0) -> Utterance:
    return Utterance(uid, uid, speaker, label, {"audio": nodes.astype(np.float32)})


def speaker_data(rng: np.random.Generator, speaker: str, n: int, offset: float, scale: float) -> list[Utterance]:
    """``n`` utterances of 4 nodes each, the speaker's voice an offset and a scale on shared noise."""
    return [utterance(f"{speaker}{i}", speaker, offset + scale * rng.normal(size=(4, 3))) for i in range(n)]


def fitted(min_utterances: int = 4) -> tuple[SpeakerNormalizer, list[Utterance]]:
    rng = np.random.default_rng(0)
    train = speaker_data(rng, "ann", 6, 10.0, 2.0) + speaker_data(rng, "bob", 6, -5.0, 0.5)
    return SpeakerNormalizer(["audio"], DIMS, min_utterances=min_utterances).fit(u.features for u in train), train


def test_a_speaker_with_enough_utterances_is_standardised_with_its_own_statistics():
    norm, train = fitted()
    out, stats = norm.transform([u.speaker for u in train], [u.features for u in train])
    for speaker in ("ann", "bob"):
        nodes = np.concatenate([f["audio"] for f, u in zip(out, train) if u.speaker == speaker])
        np.testing.assert_allclose(nodes.mean(axis=0), 0.0, atol=1e-5)
        np.testing.assert_allclose(nodes.std(axis=0), 1.0, atol=1e-5)
    assert stats.weight == {"ann": 1.0, "bob": 1.0} and stats.shrunk() == []


def test_a_lone_or_unnamed_utterance_falls_back_to_the_training_statistics():
    norm, train = fitted()
    pooled = np.concatenate([u.features["audio"] for u in train]).astype(np.float64)
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    out, stats = norm.transform(["carol", "", ""], [{"audio": x}, {"audio": x}, {"audio": x}])
    expected = (x - pooled.mean(axis=0)) / pooled.std(axis=0)
    for item in out:  # two unnamed utterances do not pool into one speaker
        np.testing.assert_allclose(item["audio"], expected, rtol=1e-5)
    assert stats.weight == {"carol": 0.0, "(unnamed)": 0.0} and stats.utterances["(unnamed)"] == 2


def test_shrinkage_weight_grows_linearly_to_the_documented_minimum():
    norm = SpeakerNormalizer(["audio"], DIMS, min_utterances=5)
    assert [norm.weight(n) for n in (1, 2, 3, 5, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="model.speaker_min_utterances"):
        SpeakerNormalizer(["audio"], DIMS, min_utterances=1)


def test_constant_dimension_maps_to_zero_and_labels_are_never_read():
    norm, _ = fitted(min_utterances=2)
    utts = [utterance(f"u{i}", "dan", np.array([[i, 7.0, i * 2.0]]), label=i % 2) for i in range(4)]
    out, _ = normalize_speakers(_model(norm), utts)
    assert all(np.all(u.features["audio"][:, 1] == 0.0) for u in out)  # dan's second dimension never varies
    relabelled, _ = normalize_speakers(_model(norm), [replace(u, label=1 - u.label) for u in utts])
    for a, b in zip(out, relabelled):
        np.testing.assert_array_equal(a.features["audio"], b.features["audio"])
    assert utts[0].features["audio"][0, 1] == 7.0  # the inputs are untouched


def _model(norm: SpeakerNormalizer) -> torch.nn.Module:
    holder = torch.nn.Module()
    holder.speaker_norm = norm
    return holder


def test_training_statistics_travel_in_the_state_dict():
    cfg = load_config(None, ["model.modalities=[audio]", "model.normalize_by=speaker", "model.speaker_min_utterances=4"]).model
    schema = load_schema("utterance")
    model = build_model(schema, DIMS, 2, cfg)
    norm, train = fitted()
    model.speaker_norm.load_state_dict(norm.state_dict())
    again = build_model(schema, DIMS, 2, cfg)
    again.load_state_dict(model.state_dict())
    lone = [utterance("x", "eve", np.ones((2, 3)))]
    np.testing.assert_array_equal(normalize_speakers(model, lone)[0][0].features["audio"],
                                  normalize_speakers(again, lone)[0][0].features["audio"])
    assert normalize_speakers(build_model(schema, DIMS, 2, replace(cfg, normalize_by="none")), lone)[1] is None


def test_build_experiment_normalises_every_split_with_its_own_speakers():
    cfg = load_config(None, ["data.demo.n_dialogues=24", "model.modalities=[audio]", "model.normalize_by=speaker",
                             "model.speaker_min_utterances=2", "model.hidden=16"])
    plain = build_experiment(replace(cfg, model=replace(cfg.model, normalize_by="none")))
    exp = build_experiment(cfg)
    for split in ("train", "dev", "test"):
        utts = exp.data.split(split)
        for speaker in {u.speaker for u in utts}:
            mine = [u for u in utts if u.speaker == speaker]
            if len(mine) >= 2:
                nodes = np.concatenate([u.features["audio"] for u in mine])
                np.testing.assert_allclose(nodes.mean(axis=0), 0.0, atol=1e-4)
        assert [u.uid for u in utts] == [u.uid for u in plain.data.split(split)]
    assert not np.allclose(exp.data.train[0].features["audio"], plain.data.train[0].features["audio"])


def test_min_utterances_below_two_is_a_config_error():
    with pytest.raises(ConfigError, match="model.speaker_min_utterances: 1 must satisfy speaker_min_utterances >= 2"):
        load_config(None, ["model.speaker_min_utterances=1"])


def test_only_speaker_modalities_are_standardised_per_speaker():
    """Text is left alone by default (words are not a trait of the speaker); listing it normalises it too."""
    base = ["data.demo.n_dialogues=24", "model.modalities=[text,audio]", "model.normalize_by=speaker",
            "model.speaker_min_utterances=2", "model.hidden=16"]
    plain = build_experiment(load_config(None, [*base, "model.normalize_by=none"]))
    default = build_experiment(load_config(None, base))
    listed = build_experiment(load_config(None, [*base, "model.speaker_modalities=[text,audio]"]))
    first = {name: exp.data.train[0].features for name, exp in (("plain", plain), ("default", default), ("listed", listed))}
    np.testing.assert_array_equal(first["default"]["text"], first["plain"]["text"])
    assert not np.allclose(first["default"]["audio"], first["plain"]["audio"])
    assert not np.allclose(first["listed"]["text"], first["plain"]["text"])


def test_unknown_speaker_modality_is_a_config_error():
    with pytest.raises(ConfigError, match="model.speaker_modalities: unknown modality 'face'"):
        load_config(None, ["model.speaker_modalities=[face]"])
