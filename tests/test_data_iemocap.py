"""The IEMOCAP reader on a tiny tree in the released layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync_tva.config import load_config
from sync_tva.data.folds import fold_splits, make_folds, parse_folds
from sync_tva.data.iemocap import read_iemocap
from sync_tva.data.labels import IEMOCAP_LABELS
from sync_tva.errors import DataError
from sync_tva.testing import make_iemocap_tree

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_iemocap_tree(tmp_path_factory.mktemp("iemocap"))


def cfg(root: Path, *extra: str):
    return load_config(ROOT / "configs" / "iemocap.yaml", [f"data.root={root}", *extra])


def test_sessions_split_labels_and_media(tree):
    raw = read_iemocap(cfg(tree, "data.dev_fraction=0.25"))
    assert raw.labels == IEMOCAP_LABELS
    assert {u.dialogue[:5] for u in raw.test} == {"Ses05"}
    assert {u.dialogue[:5] for u in raw.train + raw.dev} == {"Ses01", "Ses02"}
    assert len(raw.train) + len(raw.dev) + len(raw.test) == 3 * 2 * 3  # 3 sessions x 2 dialogues x 3 labelled
    assert raw.dev and not {u.dialogue for u in raw.dev} & {u.dialogue for u in raw.train}
    assert "left out 6 utterances" in raw.notes[0] and "'xxx': 6" in raw.notes[0]
    utt = next(u for u in raw.test if u.uid == "Ses05M_impro01_M003")
    assert IEMOCAP_LABELS[utt.label] == "happy"
    assert utt.speaker == "Ses05M"
    assert utt.text == "That I did. That I did."
    assert utt.audio.path == tree / "Session5" / "sentences" / "wav" / "Ses05M_impro01" / "Ses05M_impro01_M003.wav"
    assert utt.video.path.name == "Ses05M_impro01.avi"
    assert (utt.video.start_s, utt.video.end_s) == pytest.approx((1.7, 2.1))


def test_label_subset_and_test_sessions(tree):
    raw = read_iemocap(cfg(tree, "data.labels=[neutral,happy]", "data.test_sessions=[1]"))
    assert raw.labels == ("neutral", "happy")
    assert {u.dialogue[:5] for u in raw.test} == {"Ses01"}
    assert all(u.label in (0, 1) for u in raw.train + raw.dev + raw.test)


def test_other_labels_error_refuses_unused_emotions(tree):
    with pytest.raises(DataError, match=r"Ses01.*emotion '\w+' is outside data.labels \['neutral'\] and data.other_labels=error"):
        read_iemocap(cfg(tree, "data.labels=[neutral]", "data.other_labels=error"))


def test_errors(tree, tmp_path):
    with pytest.raises(DataError, match="not IEMOCAP emotions"):
        read_iemocap(cfg(tree, "data.labels=[joy]"))
    with pytest.raises(DataError, match="no folder Session4"):
        read_iemocap(cfg(tree, "data.test_sessions=[4]"))
    with pytest.raises(DataError, match="no Session1..Session5 folders"):
        read_iemocap(cfg(tmp_path))


def test_every_record_carries_its_session_for_session_folds(tree):
    raw = read_iemocap(cfg(tree, "data.dev_fraction=0.25"))
    assert all(u.session == u.dialogue[:5] for u in raw.train + raw.dev + raw.test)  # Session1's dialogues are Ses01*
    assert {u.session for u in raw.test} == {"Ses05"} and {u.session for u in raw.train + raw.dev} == {"Ses01", "Ses02"}
    pool = raw.train + raw.dev
    folds = make_folds(pool, parse_folds("session:2"), seed=0)
    assert sorted(g for f in folds for g in f.groups) == ["Ses01", "Ses02"]
    for fold in folds:
        split = fold_splits(raw, fold, 0.5, seed=0)
        assert {u.session for u in split.test} == set(fold.groups)
        assert not {u.session for u in split.train + split.dev} & set(fold.groups)
