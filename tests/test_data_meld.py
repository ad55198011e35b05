"""The MELD preset: the released CSVs and clip folders, with or without clips, and the real CSVs when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync_tva.config import load_config
from sync_tva.data.csv_reader import read_table, rows_to_records
from sync_tva.data.labels import MELD_LABELS
from sync_tva.data.meld import MELD_FILES, read_meld
from sync_tva.errors import DataError
from sync_tva.testing import make_meld_tree

ROOT = Path(__file__).resolve().parents[1]
REAL_MELD = ROOT.parent / "shared" / "data" / "meld"


def meld_config(root: Path, *extra: str):
    return load_config(ROOT / "configs" / "meld.yaml", [f"data.root={root}", *extra])


def test_meld_layout_with_clips(tmp_path):
    root = make_meld_tree(tmp_path / "meld", per_split=5, clips=False)
    for _, folder in MELD_FILES.values():
        (root / folder).mkdir()
    raw = read_meld(meld_config(root))
    assert raw.name == "meld" and raw.labels == MELD_LABELS
    assert [len(raw.train), len(raw.dev), len(raw.test)] == [5, 5, 5]
    utt = raw.dev[1]
    assert utt.uid == "dia0_utt1"
    assert utt.video.path == root / "dev_splits_complete" / "dia0_utt1.mp4"
    assert utt.audio == utt.video  # the clip's sound track
    assert raw.test[4].video.path == root / "output_repeated_splits_test" / "dia1_utt0.mp4"
    assert MELD_LABELS[raw.train[0].label] == "neutral"
    assert raw.notes == []


def test_meld_without_clips_is_text_only(tmp_path):
    raw = read_meld(meld_config(make_meld_tree(tmp_path / "meld", per_split=3, clips=False)))
    assert raw.media_modalities() == ["text"]


def test_meld_notes_a_missing_clip_folder(tmp_path):
    root = make_meld_tree(tmp_path / "meld", per_split=3, clips=False)
    (root / "train_splits").mkdir()
    raw = read_meld(meld_config(root))
    assert len(raw.notes) == 2 and "dev_splits_complete is missing" in raw.notes[0]


def test_meld_errors_name_what_is_missing(tmp_path):
    with pytest.raises(DataError, match="needs data.root"):
        read_meld(load_config(ROOT / "configs" / "meld.yaml"))
    with pytest.raises(DataError, match="folder not found"):
        read_meld(meld_config(tmp_path / "nowhere"))
    root = make_meld_tree(tmp_path / "meld", per_split=2, clips=False)
    (root / "test_sent_emo.csv").unlink()
    with pytest.raises(DataError, match="CSV file not found: .*test_sent_emo.csv"):
        read_meld(meld_config(root))


@pytest.mark.parametrize("split", ["train", "dev"])
def test_real_meld_csvs(split):
    csv_name = MELD_FILES[split][0]
    if not (REAL_MELD / csv_name).is_file():
        pytest.skip(f"real MELD CSVs not found in {REAL_MELD} (only in the project's shared folder)")
    cfg = load_config(ROOT / "configs" / "meld.yaml")
    table = read_table(REAL_MELD / csv_name)
    records = rows_to_records(table, REAL_MELD / csv_name, cfg.data.columns, MELD_LABELS, None, REAL_MELD)
    assert len(records) == len(table) > 1000
    assert records[0].uid == "dia0_utt0" and records[0].text
    counts = [sum(r.label == i for r in records) for i in range(len(MELD_LABELS))]
    assert all(counts) and counts.index(max(counts)) == MELD_LABELS.index("neutral")
