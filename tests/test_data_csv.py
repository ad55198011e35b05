"""The generic conversation CSV reader: column mapping, media templates, dev carving and errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sync_tva.config import load_config
from sync_tva.data import read_raw
from sync_tva.data.csv_reader import read_csv_dataset
from sync_tva.errors import DataError

ROWS = [
    # conv, part, turn, who, said, feeling
    ("A", "1", "0", "Ann", "hello there", "calm"),
    ("A", "1", "1", "Bob", "go away", "angry"),
    ("A", "2", "0", "Ann", "fine", "calm"),
    ("B", "1", "0", "Cy", "wow", "happy"),
    ("B", "1", "1", "Di", "yes!", "happy"),
    ("C", "1", "0", "Ed", "no", "angry"),
]
HEADER = ["conv", "part", "turn", "who", "said", "feeling"]
COLUMNS = [
    "data.columns.text=said",
    "data.columns.label=feeling",
    "data.columns.speaker=who",
    "data.columns.dialogue=[conv,part]",
    "data.columns.utterance=turn",
]


def write_csv(path: Path, rows=ROWS, header=HEADER) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    write_csv(tmp_path / "train.csv")
    write_csv(tmp_path / "test.csv", ROWS[:3])
    return tmp_path


def config(csv_dir: Path, *extra: str):
    return load_config(None, ["data.name=csv", f"data.root={csv_dir}", "data.train=train.csv", "data.test=test.csv",
                              *COLUMNS, *extra])


def test_columns_map_to_records(csv_dir):
    raw = read_csv_dataset(config(csv_dir, "data.dev=test.csv"))
    assert raw.labels == ("angry", "calm", "happy")  # sorted training labels when data.labels is absent
    first = raw.train[0]
    assert (first.dialogue, first.speaker, first.text, first.label) == ("A-1", "Ann", "hello there", 1)
    assert first.uid == "diaA-1_utt0"
    assert first.source.endswith("train.csv:2")
    assert first.audio is None and first.video is None  # no data.media: text only
    assert raw.media_modalities() == ["text"]
    assert len({u.dialogue for u in raw.train}) == 4  # (A,1), (A,2), (B,1), (C,1)


def test_explicit_label_order_and_media_template(csv_dir):
    raw = read_csv_dataset(config(csv_dir, "data.dev=test.csv", "data.labels=[happy,calm,angry]",
                                  "data.media=clips/{conv}_{turn}.mp4"))
    assert raw.labels == ("happy", "calm", "angry")
    assert raw.train[1].label == 2
    assert raw.train[1].video.path == csv_dir / "clips" / "A_1.mp4"
    assert raw.media_modalities() == ["text", "audio", "visual"]


def test_dev_is_carved_from_train_dialogues_when_absent(csv_dir):
    raw = read_csv_dataset(config(csv_dir))
    train_dialogues = {u.dialogue for u in raw.train}
    dev_dialogues = {u.dialogue for u in raw.dev}
    assert dev_dialogues and not train_dialogues & dev_dialogues
    assert len(raw.train) + len(raw.dev) == len(ROWS)


def test_missing_column_names_file_and_suggests(csv_dir):
    with pytest.raises(DataError, match=r"train.csv: no column 'feelings' \(data.columns.label\); did you mean 'feeling'"):
        read_csv_dataset(config(csv_dir, "data.columns.label=feelings"))


def test_label_outside_the_set_names_the_row(csv_dir):
    with pytest.raises(DataError, match=r"train.csv:3: label 'angry' is not in the label set .*data.other_labels=drop"):
        read_csv_dataset(config(csv_dir, "data.labels=[calm,happy]"))


def test_other_labels_drop_leaves_rows_out_and_says_so(csv_dir):
    raw = read_csv_dataset(config(csv_dir, "data.labels=[calm,happy]", "data.other_labels=drop", "data.dev=test.csv"))
    assert raw.labels == ("calm", "happy")
    assert [u.text for u in raw.train] == ["hello there", "fine", "wow", "yes!"]  # the two 'angry' rows are gone
    assert raw.notes == ["left out 4 rows labelled outside ['calm', 'happy'] (data.other_labels=drop): {'angry': 4}"]  # 2 train, 1 dev, 1 test


def test_duplicate_utterance_ids_are_an_error(csv_dir):
    with pytest.raises(DataError, match=r"utterance id 'diaA_utt0' appears twice \(.*train.csv:2 and .*train.csv:4\)"):
        read_raw(config(csv_dir, "data.columns.dialogue=conv"))  # (A,1,0) and (A,2,0) collide


def test_the_same_id_in_two_splits_is_allowed(csv_dir):
    raw = read_raw(config(csv_dir, "data.dev=test.csv"))  # MELD-style: dia0_utt0 exists in every split
    assert {u.uid for u in raw.dev} <= {u.uid for u in raw.train}


def test_missing_file_and_missing_test_split(csv_dir):
    with pytest.raises(DataError, match="CSV file not found: .*nope.csv"):
        read_csv_dataset(config(csv_dir, "data.train=nope.csv"))
    with pytest.raises(DataError, match="needs data.train and data.test"):
        read_csv_dataset(config(csv_dir, "data.test=null"))


def test_media_template_with_unknown_column(csv_dir):
    with pytest.raises(DataError, match=r"train.csv:2: data.media template .* names a missing column"):
        read_csv_dataset(config(csv_dir, "data.media=clips/{nope}.mp4"))


def test_labels_with_stray_spaces_are_one_class(tmp_path):
    rows = [(*r[:5], r[5] + " ") if i % 2 else r for i, r in enumerate(ROWS)]
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "test.csv", ROWS[:3])
    raw = read_csv_dataset(config(tmp_path, "data.dev=test.csv"))
    assert raw.labels == ("angry", "calm", "happy")


def test_session_column_fills_the_record_field(tmp_path):
    header = [*HEADER, "sitting"]
    write_csv(tmp_path / "train.csv", [(*r, f"S{i % 2}") for i, r in enumerate(ROWS)], header)
    write_csv(tmp_path / "test.csv", [(*r, "S9") for r in ROWS[:3]], header)
    raw = read_csv_dataset(config(tmp_path, "data.dev=test.csv", "data.columns.session=sitting"))
    assert [u.session for u in raw.train] == [f"S{i % 2}" for i in range(len(ROWS))]
    assert {u.session for u in raw.test} == {"S9"}
    assert {u.session for u in read_csv_dataset(config(tmp_path, "data.dev=test.csv")).train} == {""}  # no column mapped: none
    with pytest.raises(DataError, match=r"train.csv: no column 'sittings' \(data.columns.session\); did you mean 'sitting'"):
        read_csv_dataset(config(tmp_path, "data.columns.session=sittings"))


def test_test_csv_is_needed_only_when_the_test_split_is_read(csv_dir):
    cfg = config(csv_dir, "data.test=null")
    raw = read_csv_dataset(cfg, ("train", "dev"))  # what run --folds asks for
    assert len(raw.train) + len(raw.dev) == len(ROWS) and raw.test == []
    with pytest.raises(DataError, match="needs data.train and data.test .*and so is data.test under run --folds"):
        read_csv_dataset(cfg)  # every split, as a run without --folds reads them
