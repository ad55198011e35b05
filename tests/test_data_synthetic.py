import numpy as np
import pytest

from sync_tva.config import DemoConfig, load_config
from sync_tva.data import MELD_LABELS, list_datasets, register_dataset
from sync_tva.data.synthetic import cue_table, make_demo
from sync_tva.errors import DataError, UnknownNameError
from sync_tva.features import load_dataset
from sync_tva.records import Utterance, check_utterance

SMALL = DemoConfig(n_dialogues=20, min_turns=3, max_turns=5)


def test_same_seed_same_corpus_other_seed_differs():
    a, b, c = make_demo(SMALL, 1), make_demo(SMALL, 1), make_demo(SMALL, 2)
    assert [u.uid for u in a.train] == [u.uid for u in b.train]
    assert all(np.array_equal(x.features["audio"], y.features["audio"]) for x, y in zip(a.train, b.train))
    assert not np.array_equal(a.train[0].features["text"], c.train[0].features["text"])


def test_node_counts_dims_and_labels():
    data = make_demo(SMALL, 0)
    assert data.labels == MELD_LABELS
    for utt in data.train + data.dev + data.test:
        assert 8 <= utt.features["text"].shape[0] <= 32
        assert 4 <= utt.features["audio"].shape[0] <= 16
        assert 4 <= utt.features["visual"].shape[0] <= 16
        assert utt.features["text"].dtype == np.float32
        assert len(utt.tokens) == utt.features["text"].shape[0]
        assert utt.spans["audio"].shape == (utt.features["audio"].shape[0], 2)
        check_utterance(utt, len(MELD_LABELS), "demo")
    assert data.feature_dims() == {"text": 48, "audio": 32, "visual": 48}


def test_splits_are_disjoint_by_dialogue():
    data = make_demo(SMALL, 0)
    dialogues = [{u.dialogue for u in split} for split in (data.train, data.dev, data.test)]
    assert all(dialogues) and not (dialogues[0] & dialogues[1] or dialogues[0] & dialogues[2] or dialogues[1] & dialogues[2])


def test_no_single_modality_identifies_the_emotion_but_all_three_do():
    table = cue_table()
    for axis in range(3):
        for symbol in range(3):
            assert len(set(np.take(table, symbol, axis=axis).ravel())) == 7  # any class is possible
    for t in range(3):
        for a in range(3):
            assert len(set(table[t, a, :])) == 3  # a pair still leaves 3 candidates
    assert sorted(np.bincount(table.ravel())) == [3, 4, 4, 4, 4, 4, 4]  # the triple decides


def test_class_imbalance_is_meld_like():
    data = load_dataset(load_config())
    counts = np.bincount([u.label for u in data.train], minlength=7)
    assert counts.argmax() == MELD_LABELS.index("neutral")
    assert counts[0] / counts.sum() > 0.3 and counts.min() > 0


def test_check_utterance_names_the_utterance():
    bad = Utterance("u7", "d3", "Ana", 9, {"text": np.zeros((2, 4), np.float32)})
    with pytest.raises(DataError, match=r"src\.csv: dialogue 'd3', utterance 'u7': label 9 outside 0\.\.6"):
        check_utterance(bad, 7, "src.csv")
    nan = Utterance("u1", "d1", "Ana", 0, {"audio": np.full((2, 4), np.nan, np.float32)})
    with pytest.raises(DataError, match="audio features contain NaN"):
        check_utterance(nan, 7, "src.csv")


def test_dataset_registry_is_loud():
    assert "demo" in list_datasets()
    with pytest.raises(UnknownNameError, match="unknown data set 'nope'; registered: .*demo"):
        load_dataset(load_config(None, ["data.name=nope"]))
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("demo")(lambda cfg: None)


def test_cueless_turns_are_off_by_default_and_leaves_the_corpus_alone():
    plain, again = make_demo(SMALL, 3), make_demo(DemoConfig(n_dialogues=20, min_turns=3, max_turns=5, cueless_share=0.0), 3)
    assert [(u.uid, u.speaker, u.label) for u in plain.train] == [(u.uid, u.speaker, u.label) for u in again.train]
    assert not any("no cue" in u.text for split in (plain.train, plain.dev, plain.test) for u in split)


def test_cueless_share_makes_cueless_turns_that_repeat_their_speakers_previous_emotion():
    cfg = DemoConfig(n_dialogues=40, min_turns=6, max_turns=8, cueless_share=1.0)
    data = make_demo(cfg, 0)
    n_cueless = 0
    for dialogue in data.dialogues("train"):
        speakers = [u.speaker for u in dialogue]
        assert len(set(speakers)) == 2 and all(a != b for a, b in zip(speakers, speakers[1:]))  # two parties, alternating
        for t, utt in enumerate(dialogue):
            if "no cue" in utt.text:
                n_cueless += 1
                assert t >= 2 and utt.label == dialogue[t - 2].label and "no cue" not in dialogue[t - 2].text
    # With share 1 every eligible turn is cueless: turns 2, 3, 6, 7, ... of each dialogue (no chains).
    assert n_cueless == sum(sum(1 for t in range(len(d)) if t % 4 in (2, 3)) for d in data.dialogues("train"))
    cued = [u for u in data.train if "no cue" not in u.text]
    # Cueless turns are pure noise: their pooled text nodes are much closer to zero than cued turns'.
    norm = lambda us: float(np.mean([np.linalg.norm(u.features["text"].mean(axis=0)) for u in us]))  # noqa: E731
    assert norm([u for u in data.train if "no cue" in u.text]) < 0.8 * norm(cued)
