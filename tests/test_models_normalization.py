"""InputNormalizer: streaming statistics, constant and empty inputs, modes, checkpoints, and a model that must learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY, fit_run

from sync_tva.config import load_config
from sync_tva.inference import load_model
from sync_tva.models import InputNormalizer, SyncTVA
from sync_tva.models.normalization import signed_log
from sync_tva.records import DatasetSplits, Utterance
from sync_tva.train import build_experiment, evaluate


def chunked(rows: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """``rows`` cut at random places into consecutive chunks, empty ones included."""
    cuts = np.sort(rng.integers(0, len(rows) + 1, size=12))
    return np.split(rows, cuts)


def fitted(rows: dict[str, np.ndarray], mode: str, rng: np.random.Generator) -> InputNormalizer:
    dims = {m: r.shape[1] for m, r in rows.items()}
    norm = InputNormalizer(list(rows), dims, mode=mode)
    chunks = {m: chunked(r, rng) for m, r in rows.items()}
    n = max(len(c) for c in chunks.values())
    return norm.fit({m: c[i] for m, c in chunks.items() if i < len(c)} for i in range(n))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_fit_equals_one_shot_numpy(seed):
    rng = np.random.default_rng(seed)
    scales = np.array([1e-2, 1.0, 1e3, 1e6])
    audio = (rng.normal(size=(300, 4)) * scales + 5 * scales).astype(
        np.float32
    )  # large means, as in openSMILE
    text = rng.normal(size=(77, 3)).astype(np.float32)
    norm = fitted({"audio": audio, "text": text}, "standard", rng)
    for m, rows in {"audio": audio, "text": text}.items():
        x = rows.astype(np.float64)
        np.testing.assert_allclose(norm.get_buffer(f"{m}_mean").numpy(), x.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(norm.get_buffer(f"{m}_inv_std").numpy(), 1 / x.std(axis=0), rtol=1e-5)
        out = norm(m, torch.from_numpy(rows)).double()
        np.testing.assert_allclose(out.mean(dim=0).numpy(), 0.0, atol=1e-4)
        np.testing.assert_allclose(out.std(dim=0, unbiased=False).numpy(), 1.0, rtol=1e-4)


def test_robust_mode_standardises_the_signed_log(rng):
    audio = (rng.lognormal(mean=8.0, sigma=2.0, size=(200, 3)) * np.array([1, -1, 1])).astype(np.float32)
    norm = fitted({"audio": audio}, "robust", rng)
    logged = signed_log(audio.astype(np.float64))
    np.testing.assert_allclose(norm.get_buffer("audio_mean").numpy(), logged.mean(axis=0), rtol=1e-6)
    out = norm("audio", torch.from_numpy(audio)).double()
    np.testing.assert_allclose(out.mean(dim=0).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(dim=0, unbiased=False).numpy(), 1.0, rtol=1e-4)


@pytest.mark.parametrize("mode", ["standard", "robust"])
def test_constant_dimension_gives_finite_zeros(mode, rng):
    rows = rng.normal(size=(50, 3)).astype(np.float32)
    rows[:, 1] = 850_000.0
    norm = fitted({"audio": rows}, mode, rng)
    test = torch.from_numpy(rows.copy())
    test[:5, 1] = 3.0  # a test value the training nodes never had
    out = norm("audio", test)
    assert torch.isfinite(out).all()
    assert torch.equal(out[:, 1].abs(), torch.zeros(50))


def test_empty_arrays_are_skipped_and_a_modality_without_nodes_is_an_error(rng):
    rows = rng.normal(size=(20, 2))
    norm = InputNormalizer(["audio"], {"audio": 2})
    norm.fit(
        [
            {"audio": np.zeros((0, 2))},
            {"audio": rows[:7]},
            {"text": rng.normal(size=(3, 9))},
            {"audio": rows[7:]},
        ]
    )
    np.testing.assert_allclose(norm.get_buffer("audio_mean").numpy(), rows.mean(axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"no training nodes for modalities \['visual'\]"):
        InputNormalizer(["audio", "visual"], {"audio": 2, "visual": 4}).fit(
            [{"audio": rows, "visual": np.zeros((0, 4))}]
        )


def test_wrong_width_and_unknown_modality_name_the_modality(rng):
    norm = InputNormalizer(["audio"], {"audio": 3})
    with pytest.raises(
        ValueError, match=r"item 1, modality 'audio': expected \[n_nodes, 3\], got shape \[4, 2\]"
    ):
        norm.fit([{"audio": rng.normal(size=(4, 3))}, {"audio": rng.normal(size=(4, 2))}])
    norm.fit([{"audio": rng.normal(size=(4, 3))}])
    with pytest.raises(ValueError, match="audio features are 5 wide, expected 3"):
        norm("audio", torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"unknown modality 'text'; this normaliser has \['audio'\]"):
        norm("text", torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"mode='zscore' is not one of .*model\.normalize"):
        InputNormalizer(["audio"], {"audio": 3}, mode="zscore")


def test_forward_before_fit_is_an_error_naming_the_modality():
    norm = InputNormalizer(["text", "audio"], {"text": 2, "audio": 3}, mode="standard")
    assert "fitted=False" in repr(norm)
    with pytest.raises(RuntimeError, match="modality 'audio' were never fitted"):
        norm("audio", torch.zeros(1, 3))


def test_none_mode_is_the_identity_and_holds_no_statistics(rng):
    norm = InputNormalizer(["audio"], {"audio": 3}, mode="none")
    assert norm.fit([{"audio": rng.normal(size=(4, 3))}]) is norm
    x = torch.randn(6, 3) * 1e6
    assert norm("audio", x) is x
    assert dict(norm.state_dict()) == {}


def test_state_dict_round_trip_restores_the_statistics_exactly(rng):
    norm = fitted({"audio": rng.normal(size=(40, 5)) * 1e5, "text": rng.normal(size=(9, 2))}, "robust", rng)
    fresh = InputNormalizer(["audio", "text"], {"audio": 5, "text": 2}, mode="robust")
    fresh.load_state_dict(norm.state_dict())
    for key, value in norm.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    x = torch.randn(3, 5) * 1e5
    assert torch.equal(fresh("audio", x), norm("audio", x))
    assert "fitted=True" in repr(fresh)
    norm.reset_parameters()
    assert "fitted=False" in repr(norm)


# ----------------------------------------------------------------------------------------------
# In the full model: fitted on the training split only, and what makes wildly scaled inputs learnable.

SCALES = np.array([1e-2, 1e-2, 1e-2, 1e6, 1e6, 1e6])  # per-dimension magnitudes 1e8 apart
OFFSETS = np.array([0.0, 0.0, 0.0, 5e6, 5e6, 5e6])  # openSMILE-like large means on the large dimensions
LABELS = ("a0b0", "a0b1", "a1b0", "a1b1")


def scaled_utterances(rng: np.random.Generator, n: int, prefix: str) -> list[Utterance]:
    """Four classes from two binary cues: ``a`` shifts small-scale dimension 0, ``b`` large-scale dimension 4."""
    utts = []
    for i in range(n):
        label = int(rng.integers(4))
        a, b = divmod(label, 2)
        nodes = rng.normal(size=(4, len(SCALES)))  # [4 nodes, 6] in units of each dimension's scale
        nodes[:, 0] += 1.5 * (2 * a - 1)
        nodes[:, 4] += 1.5 * (2 * b - 1)
        feat = (nodes * SCALES + OFFSETS).astype(np.float32)
        utts.append(Utterance(f"{prefix}{i}", f"{prefix}{i}", "s", label, {"audio": feat}))
    return utts


def scaled_data(seed: int = 0) -> DatasetSplits:
    rng = np.random.default_rng(seed)
    return DatasetSplits(
        "scaled",
        LABELS,
        scaled_utterances(rng, 160, "tr"),
        scaled_utterances(rng, 48, "dv"),
        scaled_utterances(rng, 48, "te"),
    )


AUDIO = ["model.modalities=[audio]", "train.num_threads=1"]


def audio_cfg(*extra: str):
    return load_config(None, [*TINY, *AUDIO, *extra])


def test_statistics_come_from_the_training_split_only():
    data = scaled_data()
    exp = build_experiment(audio_cfg(), data)
    rows = np.concatenate([u.features["audio"] for u in data.train]).astype(np.float64)
    norm = exp.model.normalizer
    np.testing.assert_allclose(norm.get_buffer("audio_mean").numpy(), rows.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(norm.get_buffer("audio_inv_std").numpy(), 1 / rows.std(axis=0), rtol=1e-5)
    for u in data.dev + data.test:
        u.features["audio"] = u.features["audio"] * 1000 + 7
    again = build_experiment(audio_cfg(), data).model.normalizer
    for key, value in norm.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_model_checkpoint_carries_the_statistics():
    exp = build_experiment(audio_cfg(), scaled_data())
    fresh = SyncTVA(exp.schema, {"audio": len(SCALES)}, len(LABELS), exp.cfg.model)
    fresh.load_state_dict(exp.model.state_dict())
    for key, value in exp.model.normalizer.state_dict().items():
        assert torch.equal(fresh.normalizer.state_dict()[key], value), key


@pytest.mark.slow  # 12 epochs to learn both cues: 5 s idle, several times that on a busy 2-core machine
def test_model_learns_cues_on_small_and_large_scale_dimensions(tmp_path):
    data = scaled_data()
    exp, _ = fit_run(tmp_path, [*AUDIO, "train.epochs=12", "train.patience=12", "train.lr=5e-3"], data)
    accuracy = evaluate(exp, data.test).accuracy
    assert accuracy > 0.75, accuracy  # chance is 0.25; one cue alone reaches about 0.5 (normalize=none does)
    restored = load_model(tmp_path).model.normalizer  # from the checkpoint alone, no extra code
    for key, value in exp.model.normalizer.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
