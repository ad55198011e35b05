"""``sync_tva.predictor`` and ``python -m sync_tva.predict``: new clips, sentences and CSVs through a trained run.

One module-scoped run per kind: a text-only run on a MELD-shaped CSV data set (fast), and a
tri-modal run on generated clips whose training data is moved away before predicting (slow).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY

from sync_tva import __main__ as entry
from sync_tva.cli import predict, run
from sync_tva.errors import DataError
from sync_tva.inference import load_model
from sync_tva.inference import predict as predict_records
from sync_tva.predictor import Predictor
from sync_tva.testing import FAST, MELD_EMOTIONS, built_once, make_meld_tree, make_text_model, write_wav

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = ["model.hidden=16", "model.heads=2",
              "train.epochs=2", "train.batch_size=8", "train.num_threads=1"]
SENTENCE = "I can't believe you did that!"


@pytest.fixture(scope="module")
def text_model(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory.getbasetemp(), "text_model", make_text_model)


def csv_run(base: Path, text_model: Path, *extra: str) -> Path:
    """A text-only run on three MELD-shaped CSVs (data.name=csv, 12 utterances per split) under ``base``."""
    meld = built_once(base, "meld", lambda d: make_meld_tree(d, per_split=12, clips=False))
    out = base / ("run" + "".join(f"-{x.split('=')[1]}" for x in extra))
    args = ["--out", str(out), "data.name=csv", f"data.root={meld}", "data.train=train_sent_emo.csv",
            "data.dev=dev_sent_emo.csv", "data.test=test_sent_emo.csv", f"data.labels=[{','.join(MELD_EMOTIONS)}]",
            "model.modalities=[text]", f"features.text.model={text_model}", f"features.store={base / 'store'}",
            *FAST, *TINY_MODEL, *extra]
    assert run.main(args) == 0
    return out


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, text_model) -> Path:
    return csv_run(tmp_path_factory.mktemp("predict_text"), text_model)


def test_the_runs_test_csv_reproduces_its_metrics_and_probabilities(text_run, tmp_path, capsys):
    csv = text_run.parent / "meld" / "test_sent_emo.csv"
    assert predict.main(["--run", str(text_run), str(csv), "--out", str(tmp_path / "p")]) == 0
    expected = json.loads((text_run / "metrics.json").read_text())["test"]
    assert json.loads((tmp_path / "p" / "metrics.json").read_text()) == expected
    table = pd.read_csv(tmp_path / "p" / "predictions.csv")
    trained = load_model(text_run)
    reference = predict_records(trained, trained.load_split("test"))  # the run's own stored test features
    assert table["uid"].tolist() == reference.uids
    probs = torch.tensor(table[[f"p_{name}" for name in trained.labels]].to_numpy(), dtype=torch.float32)
    assert torch.equal(probs, reference.probs)  # re-extracted features give bit-identical probabilities
    lines = (tmp_path / "p" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["uid"] for line in lines] == reference.uids
    assert "weighted F1" in capsys.readouterr().out


def test_the_same_input_twice_gives_the_same_probabilities(text_run):
    predictor = Predictor.from_run(text_run)
    first = predictor.predict_text([SENTENCE, "What?"])
    store = Path(predictor.trained.cfg.features.store)
    folders = list(store.glob("predict-text-*"))
    assert len(folders) == 1
    shutil.rmtree(folders[0])  # the second call extracts afresh instead of reading the cache
    again = predictor.predict_text([SENTENCE, "What?"])
    assert np.array_equal(first.probs(), again.probs())
    assert [p.uid for p in first] == ["text", "text-2"] and first[0].probs != first[1].probs
    assert first.probs().sum(axis=1) == pytest.approx([1.0, 1.0])


def test_text_alone_prints_a_ranked_emotion_list(text_run, tmp_path, capsys):
    assert entry.main(["predict", "--run", str(text_run), "--text", SENTENCE, "--out", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    ranked = out.split("ranked:\n")[1].split("\n\n")[0].splitlines()
    names = [line.split()[0] for line in ranked]
    values = [float(line.split()[1]) for line in ranked]
    assert sorted(names) == sorted(MELD_EMOTIONS) and values == sorted(values, reverse=True)
    row = pd.read_csv(tmp_path / "p" / "predictions.csv").iloc[0]
    assert row["predicted"] == names[0] and row["text"] == SENTENCE
    assert not (tmp_path / "p" / "metrics.json").exists()  # a sentence carries no label


def test_an_out_under_a_file_is_one_error_line(text_run, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert predict.main(["--run", str(text_run), "--text", SENTENCE, "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --out ") and str(blocker) in err[0]
    assert blocker.read_text() == "not a folder"


def test_an_unlabelled_csv_is_predicted_without_metrics(text_run, tmp_path):
    table = pd.read_csv(text_run.parent / "meld" / "test_sent_emo.csv", dtype=str).drop(columns=["Emotion"])
    table.to_csv(tmp_path / "new.csv", index=False)
    result = Predictor.from_run(text_run).predict_csv(tmp_path / "new.csv", attention=True)
    assert not result.labelled and len(result) == 12 and all(p.true is None for p in result)
    with pytest.raises(DataError, match="no labels"):
        result.metrics()
    assert [u for b in result.attention for u in b.uids] == [p.uid for p in result]
    assert result.attention[0].maps.pooling["text"].shape[0] == result.attention[0].graph.num_nodes("text")


def test_bad_inputs_are_one_error_line_and_exit_2(text_run, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    cases = [
        (["--run", str(text_run), str(tmp_path / "notes.txt")], "unknown file type '.txt'"),
        (["--run", str(tmp_path / "empty"), "--text", "hi"], "no checkpoints/best.pt"),
        (["--run", str(text_run)], "nothing to predict"),
        (["--run", str(text_run), str(tmp_path / "gone.wav")], "gone.wav: file not found"),
    ]
    for args, message in cases:
        assert predict.main([*args, "--out", str(tmp_path / "p")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], err


def test_a_text_run_refuses_media_without_transcript_unless_allowed(text_run, tmp_path):
    wav = write_wav(tmp_path / "hello.wav")
    with pytest.raises(DataError, match=r"hello.wav has no text.*--allow-missing"):
        Predictor.from_run(text_run).predict_clip(wav)
    result = Predictor.from_run(text_run, allow_missing=True).predict_clip(wav)
    assert result.utterances[0].features["text"].shape[0] == 0 and result[0].source == str(wav)


@pytest.mark.slow
def test_a_dialogue_model_predicts_each_conversation_whole(text_run, tmp_path, text_model):
    run_dir = csv_run(text_run.parent, text_model, "model.name=sync_tva_dialogue")
    csv = text_run.parent / "meld" / "test_sent_emo.csv"
    assert predict.main(["--run", str(run_dir), str(csv), "--out", str(tmp_path / "p"), "--draw"]) == 0
    expected = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert json.loads((tmp_path / "p" / "metrics.json").read_text()) == expected
    assert len(list((tmp_path / "p" / "attention").glob("*.png"))) == 12
    assert sorted(p.name for p in (tmp_path / "p" / "conversations").glob("*.png")) == [f"dialogue_{d}.png" for d in range(3)]
    whole = Predictor.from_run(run_dir).predict_csv(csv, attention=True)
    assert all(b.dialogue is not None and "dialogue" in vars(b.maps) for b in whole.attention)
    pd.read_csv(csv, dtype=str).head(1).to_csv(tmp_path / "alone.csv", index=False)  # dia0_utt0 without its dialogue
    alone = Predictor.from_run(run_dir).predict_csv(tmp_path / "alone.csv")
    assert alone[0].uid == whole[0].uid and alone[0].probs != pytest.approx(whole[0].probs, abs=1e-6)


def test_a_featured_run_refuses_raw_inputs_but_predicts_its_records(tmp_path):
    out = tmp_path / "demo"
    assert run.main(["--out", str(out), *TINY, "train.epochs=1", "train.num_threads=1"]) == 0
    predictor = Predictor.from_run(out)
    with pytest.raises(DataError, match="data.name='demo'.*predict_utterances"):
        predictor.predict_text(SENTENCE)
    test = predictor.trained.load_split("test")
    result = predictor.predict_utterances(test)
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    assert result.metrics().to_dict() == metrics


# --- a tri-modal run on generated clips -------------------------------------------------------------


@pytest.fixture(scope="module")
def trimodal(tmp_path_factory, text_model) -> tuple[Path, Path, Path]:
    """A tri-modal MELD run on 24 generated clips; then its data folder is moved away.

    Returns ``(run, clip, test_csv)``: a copy of one test clip and of the test CSV kept aside.
    """
    base = tmp_path_factory.mktemp("predict_clips")
    meld = make_meld_tree(base / "meld", per_split=8)
    out = base / "run"
    args = ["--config", str(ROOT / "configs" / "meld.yaml"), "--out", str(out), f"data.root={meld}",
            f"features.text.model={text_model}", f"features.store={base / 'store'}", *FAST, *TINY_MODEL]
    assert run.main(args) == 0
    kept = base / "kept"
    kept.mkdir()
    clip = shutil.copy(meld / "output_repeated_splits_test" / "dia0_utt1.mp4", kept / "clip.mp4")
    shutil.copytree(meld / "output_repeated_splits_test", kept / "clips")
    table = shutil.copy(meld / "test_sent_emo.csv", kept / "test.csv")
    meld.rename(base / "moved_away")
    return out, Path(clip), Path(table)


@pytest.mark.slow
def test_a_clip_with_its_transcript_after_the_training_data_moved_away(trimodal, tmp_path, capsys):
    run_dir, clip, _ = trimodal
    out = tmp_path / "p"
    assert predict.main(["--run", str(run_dir), str(clip), "--text", "What?", "--out", str(out), "--draw"]) == 0
    row = pd.read_csv(out / "predictions.csv").iloc[0]
    assert row["uid"] == "clip" and row["source"] == str(clip)
    assert sum(row[f"p_{name}"] for name in MELD_EMOTIONS) == pytest.approx(1.0, abs=1e-5)
    assert (out / "attention" / "clip.png").stat().st_size > 0
    assert "clip: What?" in capsys.readouterr().out
    result = Predictor.from_run(run_dir).predict_clip(clip, text="What?")
    feats = result.utterances[0].features
    assert all(feats[m].shape[0] > 0 for m in ("text", "audio", "visual"))
    assert result[0].probs == pytest.approx(dict(zip(row.index[-7:].str[2:], row.iloc[-7:].astype(float))))


@pytest.mark.slow
def test_a_corrupt_clip_or_a_missing_modality_is_exit_2_unless_allowed(trimodal, tmp_path, capfd):
    run_dir, clip, _ = trimodal
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    assert predict.main(["--run", str(run_dir), str(bad), "--text", "What?", "--out", str(tmp_path / "p")]) == 2
    err = capfd.readouterr().err.strip().splitlines()  # file descriptor 2: FFmpeg's own log would show here
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: cannot extract") and "cannot open media" in err[0], err
    wav = write_wav(tmp_path / "voice.wav")
    assert predict.main(["--run", str(run_dir), str(wav), "--text", "What?", "--out", str(tmp_path / "p")]) == 2
    assert "voice.wav has no visual" in capfd.readouterr().err
    assert predict.main(["--run", str(run_dir), str(wav), "--text", "What?", "--allow-missing", "--out", str(tmp_path / "p")]) == 0
    assert pd.read_csv(tmp_path / "p" / "predictions.csv")["uid"].tolist() == ["voice"]


@pytest.mark.slow
def test_a_conversation_csv_with_its_clips_is_scored(trimodal, tmp_path):
    run_dir, _, table = trimodal
    media = "clips/dia{Dialogue_ID}_utt{Utterance_ID}.mp4"
    result = Predictor.from_run(run_dir).predict_csv(table, media=media)
    assert result.labelled and len(result) == 8 and {p.dialogue for p in result} == {"0", "1"}
    assert all(u.features["visual"].shape[0] > 0 for u in result.utterances)
    assert sum(map(sum, result.metrics().confusion_matrix)) == 8
