"""``sync_tva.predictor.adapters``: sentences, media files and CSVs to raw records, with nothing extracted."""

from __future__ import annotations

import pytest

from sync_tva.config import load_config
from sync_tva.errors import DataError
from sync_tva.predictor.adapters import csv_inputs, file_inputs, text_inputs
from sync_tva.testing import write_wav

TRIMODAL = ["text", "audio", "visual"]


def test_sentences_get_distinct_ids_and_lack_every_other_modality():
    inputs = text_inputs(["Hi.", "Hi."], TRIMODAL)
    assert [r.uid for r in inputs.records] == ["text", "text-2"] and [r.text for r in inputs.records] == ["Hi.", "Hi."]
    assert inputs.absent == {"text": ["audio", "visual"], "text-2": ["audio", "visual"]} and not inputs.labelled
    assert inputs.name.startswith("predict-text-") and text_inputs(["Hi!"], TRIMODAL).name != inputs.name


def test_media_files_of_one_name_stay_apart_and_a_wav_has_no_frames(tmp_path):
    first, second = write_wav(tmp_path / "a" / "clip.wav"), write_wav(tmp_path / "b" / "clip.wav", seed=1)
    inputs = file_inputs([first, second], ["one", "two"], TRIMODAL)
    assert [r.uid for r in inputs.records] == ["clip", "clip-2"] and [r.source for r in inputs.records] == [str(first), str(second)]
    assert inputs.absent == {"clip": ["visual"], "clip-2": ["visual"]}
    assert file_inputs([first], None, TRIMODAL).absent == {"clip": ["text", "visual"]}  # no transcript given
    with pytest.raises(DataError, match="2 transcripts for 1 media files"):
        file_inputs([first], ["one", "two"], TRIMODAL)
    with pytest.raises(DataError, match=r"notes.txt: unknown file type '.txt'"):
        file_inputs([tmp_path / "notes.txt"], None, TRIMODAL)


def test_a_csv_without_labels_is_unlabelled(tmp_path):
    data = load_config(None, ["data.name=csv", "data.train=t.csv", "data.test=t.csv", "data.labels=[joy,anger]"]).data
    rows = "Utterance,Speaker,Dialogue_ID,Utterance_ID,Emotion\nHello,Ann,0,0,\nBye,Bob,0,1,\n"
    (tmp_path / "new.csv").write_text(rows)
    inputs = csv_inputs(tmp_path / "new.csv", data, ("joy", "anger"), ["text"], media=None, media_root=None)
    assert not inputs.labelled and [r.text for r in inputs.records] == ["Hello", "Bye"] and inputs.absent == {r.uid: [] for r in inputs.records}
    (tmp_path / "scored.csv").write_text(rows.replace(",0,0,", ",0,0,joy").replace(",0,1,", ",0,1,anger"))
    scored = csv_inputs(tmp_path / "scored.csv", data, ("joy", "anger"), ["text"], media=None, media_root=None)
    assert scored.labelled and [r.label for r in scored.records] == [0, 1]
