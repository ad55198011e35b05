"""Text extractor: a tiny random RoBERTa loaded with AutoTokenizer/AutoModel from a local directory."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from sync_tva.config import TextFeaturesConfig
from sync_tva.errors import ConfigError
from sync_tva.features.text import TextExtractor, group_rows
from sync_tva.records import RawUtterance
from sync_tva.testing import SENTENCES, make_text_model

CPU = torch.device("cpu")


def utts(texts: list[str]) -> list[RawUtterance]:
    return [RawUtterance(uid=f"u{i}", dialogue="d", speaker="s", label=0, text=t) for i, t in enumerate(texts)]


def test_token_nodes_one_per_token(text_model):
    ex = TextExtractor(TextFeaturesConfig(model=str(text_model)), CPU)
    assert type(ex.model).__name__ == "RobertaModel" and ex.dim == 32
    out = ex.extract(utts(SENTENCES[:3] + [""]))
    n_tokens = [len(ex.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in SENTENCES[:3]]
    assert [o.feat.shape for o in out[:3]] == [(n, 32) for n in n_tokens]
    assert all(o.feat.dtype == np.float32 for o in out)
    assert len(out[0].tokens) == n_tokens[0] and "".join(out[0].tokens).replace(" ", "") == SENTENCES[0].replace(" ", "")
    assert out[3].feat.shape == (0, 32)  # empty transcript: no text node (none invented)


def test_padding_does_not_change_features(text_model):
    ex = TextExtractor(TextFeaturesConfig(model=str(text_model)), CPU)
    alone = ex.extract(utts([SENTENCES[1]]))[0].feat
    batched = ex.extract(utts([SENTENCES[1], SENTENCES[4]]))[0].feat  # padded to the longer sentence
    np.testing.assert_allclose(alone, batched, atol=1e-5)


def test_grouped_and_utterance_nodes(text_model):
    grouped = TextExtractor(TextFeaturesConfig(model=str(text_model), max_nodes=3), CPU)
    out = grouped.extract(utts([SENTENCES[4]]))[0]
    assert out.feat.shape == (3, 32) and len(out.tokens) == 3
    whole = TextExtractor(TextFeaturesConfig(model=str(text_model), nodes="utterance"), CPU)
    assert whole.extract(utts([SENTENCES[4]]))[0].feat.shape == (1, 32)
    x = np.arange(10, dtype=np.float32)[:, None]
    groups, idx = group_rows(x, 4)
    assert groups[:, 0].tolist() == [1.0, 4.0, 6.5, 8.5] and [len(i) for i in idx] == [3, 3, 2, 2]


def test_an_empty_or_blank_transcript_gives_zero_text_nodes_in_every_node_mode(text_model):
    for nodes in ("tokens", "utterance"):
        ex = TextExtractor(TextFeaturesConfig(model=str(text_model), nodes=nodes), CPU)
        empty, words, blank = ex.extract(utts(["", "What?", "  "]))
        assert empty.feat.shape == (0, 32) and blank.feat.shape == (0, 32) and empty.tokens == [], nodes
        assert words.feat.shape[0] >= 1, nodes


def test_fingerprint_follows_model_and_preprocessing(text_model, tmp_path):
    a = TextExtractor(TextFeaturesConfig(model=str(text_model)), CPU)
    assert a.fingerprint == TextExtractor(TextFeaturesConfig(model=str(text_model)), CPU).fingerprint
    assert a.fingerprint != TextExtractor(TextFeaturesConfig(model=str(text_model), max_nodes=4), CPU).fingerprint
    other = make_text_model(tmp_path / "other")  # same architecture, other random weights
    other_fp = TextExtractor(TextFeaturesConfig(model=str(other)), CPU).fingerprint
    assert other_fp != a.fingerprint
    assert len(a.fingerprint) == 12 and "text" in repr(a)


def test_hub_name_offline_fails_fast_with_a_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"features.text.model='roberta-large'.*local directory.*HF_HOME.*HF_HUB_OFFLINE"):
        TextExtractor(TextFeaturesConfig(model="roberta-large"), CPU)
    assert time.monotonic() - start < 30


def test_local_directory_without_model_fails_with_its_path(tmp_path):
    with pytest.raises(ConfigError, match="cannot load tokenizer and model"):
        TextExtractor(TextFeaturesConfig(model=str(tmp_path)), CPU)
