"""Fine-tuning the text encoder (sync_tva.features.finetune): store folder, skip, resume, no leakage, fingerprint, run."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from sync_tva import finetune, run
from sync_tva.config import load_config
from sync_tva.data import read_raw
from sync_tva.errors import ConfigError, DataError
from sync_tva.features import finetune as finetune_module
from sync_tva.features import load_dataset
from sync_tva.features.base import weights_digest
from sync_tva.features.finetune import SUMMARY, finetune_text_encoder
from sync_tva.features.text import TextExtractor, dialogue_contexts
from sync_tva.inference import load_model, predict
from sync_tva.records import RawUtterance
from sync_tva.testing import SENTENCES

CPU = torch.device("cpu")
LABELS = ["neutral", "joy", "anger"]
HEADER = ["Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"]
TINY_MODEL = ["model.hidden=16", "model.heads=2", "train.epochs=1", "train.batch_size=16"]


class Interrupted(Exception):
    """Stands for a kill between two epochs."""


def write_split(path: Path, dialogues: int, offset: int, scramble: bool = False) -> None:
    """Four turns per dialogue; the label follows the sentence, so the classifier has something to learn."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for d in range(dialogues):
            for t in range(4):
                k = (d + t + offset) % len(SENTENCES)
                text, label = SENTENCES[k], LABELS[k % len(LABELS)]
                if scramble:  # other words, other labels: must not change anything fine-tuning does
                    text, label = f"scrambled {d} {t} {SENTENCES[-1 - k]}", LABELS[(k + 1 + t) % len(LABELS)]
                writer.writerow([text, ["Ross", "Rachel"][t % 2], label, d, t])


def make_data(folder: Path, scramble_test: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_split(folder / "train.csv", 6, 0)
    write_split(folder / "dev.csv", 2, 3)
    write_split(folder / "test.csv", 2, 5, scramble=scramble_test)
    return folder


def overrides(data: Path, model: Path, store: Path, *extra: str) -> list[str]:
    return ["data.name=csv", f"data.root={data}", "data.train=train.csv", "data.dev=dev.csv", "data.test=test.csv",
            f"data.labels=[{','.join(LABELS)}]", "model.modalities=[text]", f"features.text.model={model}",
            f"features.store={store}", "features.progress=false", "features.text.finetune.epochs=2",
            "features.text.finetune.batch_size=8", "features.text.finetune.lr=1e-3", "train.num_threads=1", *extra]


def folder_digest(folder: Path) -> str:
    return weights_digest(AutoModel.from_pretrained(folder))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, text_model):
    """One uninterrupted fine-tuning, two epochs: (result, weights digest)."""
    base = tmp_path_factory.mktemp("reference")
    cfg = load_config(None, overrides(make_data(base / "data"), text_model, base / "store"))
    tuned = finetune_text_encoder(cfg, read_raw(cfg, ("train", "dev")), log=lambda line: None)
    return tuned, folder_digest(tuned.path)


def test_command_writes_folder_and_summary_then_skips(text_model, tmp_path, capsys):
    args = overrides(make_data(tmp_path / "data"), text_model, tmp_path / "store")
    assert finetune.main(args) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out.strip().splitlines()[-1])
    assert summary["trained_now"] and "fine-tune epoch 2/2: train loss" in out.err
    folder = Path(summary["folder"])
    assert folder.parent == tmp_path / "store" / folder.parts[-3] / "finetune" and folder.name == f"text-{summary['key']}"
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", SUMMARY):
        assert (folder / name).is_file(), name
    assert [h["epoch"] for h in summary["history"]] == [1, 2] and summary["best_epoch"] in (1, 2)
    assert summary["train_utterances"] == 24 and summary["dev_utterances"] == 8 and summary["labels"] == LABELS
    assert summary["dev_weighted_f1"] == max(h["dev_weighted_f1"] for h in summary["history"])
    assert not list((tmp_path / "store" / ".finetune-work").iterdir())  # the resume point is gone once published
    mtime = (folder / SUMMARY).stat().st_mtime_ns
    assert finetune.main(args) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not again["trained_now"] and again["key"] == summary["key"]
    assert (folder / SUMMARY).stat().st_mtime_ns == mtime


def test_command_refuses_bad_requests(text_model, tmp_path, capsys):
    data = make_data(tmp_path / "data")
    assert finetune.main(overrides(data, text_model, tmp_path / "store", "features.text.finetune.epochs=0")) == 2
    assert "error: features.text.finetune.epochs=0" in capsys.readouterr().err
    assert finetune.main(["features.text.finetune.epochs=1"]) == 2  # the demo has no raw text
    assert "error: data.name='demo'" in capsys.readouterr().err
    assert finetune.main(overrides(data, text_model, tmp_path / "store", "features.text.finetune.lr=0")) == 2
    assert "features.text.finetune.lr: 0" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_killed_finetuning_resumes_to_the_same_weights(text_model, tmp_path, reference):
    cfg = load_config(None, overrides(make_data(tmp_path / "data"), text_model, tmp_path / "store"))
    raw = read_raw(cfg, ("train", "dev"))

    def killed_after_epoch_1(line: str) -> None:
        if "epoch 1/2" in line:
            raise Interrupted

    with pytest.raises(Interrupted):
        finetune_text_encoder(cfg, raw, log=killed_after_epoch_1)
    assert list((tmp_path / "store" / ".finetune-work").glob("*/last.pt"))
    lines: list[str] = []
    tuned = finetune_text_encoder(cfg, raw, log=lines.append)
    assert tuned.trained and lines[0].startswith("fine-tune: resuming from epoch 2 of 2")
    assert [line.split(":")[0] for line in lines[1:]] == ["fine-tune epoch 2/2"]  # epoch 1 was not trained again
    ref, ref_digest = reference
    assert tuned.key == ref.key and folder_digest(tuned.path) == ref_digest
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in tuned.summary["history"]]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in ref.summary["history"]]


def test_test_split_never_reaches_finetuning(text_model, tmp_path, reference):
    ref, ref_digest = reference
    cfg = load_config(None, overrides(make_data(tmp_path / "data", scramble_test=True), text_model, tmp_path / "store"))
    everything = read_raw(cfg)  # test included: fine-tuning must ignore it
    assert {u.text for u in everything.test}.isdisjoint(SENTENCES)
    tuned = finetune_text_encoder(cfg, everything, log=lambda line: None)
    assert tuned.key == ref.key and folder_digest(tuned.path) == ref_digest
    other = load_config(None, overrides(tmp_path / "data", text_model, tmp_path / "store", "features.text.finetune.seed=1"))
    assert finetune_text_encoder(other, everything, log=lambda line: None).key != ref.key  # every setting is in the key


def test_empty_train_split_is_named(text_model, tmp_path):
    cfg = load_config(None, overrides(make_data(tmp_path / "data"), text_model, tmp_path / "store"))
    raw = read_raw(cfg, ("train", "dev"))
    raw.dev = []
    with pytest.raises(DataError, match="needs dev utterances"):
        finetune_text_encoder(cfg, raw)


def test_contexts_and_fingerprints(text_model, tmp_path, reference):
    utts = [RawUtterance(f"u{i}", d, s, 0, t) for i, (d, s, t) in enumerate([("a", "Ross", "Hi."), ("b", "Joey", "Yo."),
                                                                           ("a", "Rachel", "Hello."), ("a", "Ross", "Bye.")])]
    assert dialogue_contexts(utts, 1) == ["", "", "Ross: Hi.", "Rachel: Hello."]
    assert dialogue_contexts(utts, 2)[3] == "Ross: Hi. Rachel: Hello."
    ref, _ = reference
    cfg = load_config(None, overrides(tmp_path, text_model, tmp_path / "store"))
    frozen = TextExtractor(cfg.features.text, CPU)
    tuned = TextExtractor(cfg.features.text, CPU, finetuned=ref.path)
    assert frozen.fingerprint != tuned.fingerprint and tuned.describe()["finetuned"] == f"text-{ref.key}"
    context_cfg = load_config(None, overrides(tmp_path, text_model, tmp_path / "store", "features.text.context_turns=2"))
    with_context = TextExtractor(context_cfg.features.text, CPU, finetuned=ref.path)
    assert with_context.fingerprint != tuned.fingerprint
    with pytest.raises(DataError, match="no dialogue context"):
        with_context.extract(utts)
    with_context.prepare("train", utts)
    plain, contextual = tuned.extract(utts), with_context.extract(utts)
    assert [p.feat.shape for p in plain] == [c.feat.shape for c in contextual]  # nodes stay the utterance's tokens
    assert [p.tokens for p in plain] == [c.tokens for c in contextual]
    assert not torch.allclose(torch.from_numpy(plain[3].feat), torch.from_numpy(contextual[3].feat))


def test_context_finetuning_through_the_pipeline(text_model, tmp_path):
    extra = ("features.text.finetune.epochs=1", "features.text.context_turns=2")  # one setting: fine-tuning and extraction
    cfg = load_config(None, overrides(make_data(tmp_path / "data"), text_model, tmp_path / "store", *extra))
    data = load_dataset(cfg)
    assert len(data.train) == 24 and data.feature_dims() == {"text": 32}
    [tuned] = list((tmp_path / "store").glob("*/finetune/text-*"))
    described = [json.loads(p.read_text()) for p in (tmp_path / "store").glob("*/*/text-*/extractor.json")]
    assert len(described) == 3 and all(d["finetuned"] == tuned.name and d["context_turns"] == 2 for d in described)
    assert json.loads((tuned / SUMMARY).read_text())["settings"]["context_turns"] == 2


def test_under_torchrun_only_rank_zero_finetunes(text_model, tmp_path, reference, monkeypatch):
    """Rank 1 trains nothing: it waits until rank 0's folder is published, then extracts with it."""
    data = make_data(tmp_path / "data")
    cfg = load_config(None, overrides(data, text_model, tmp_path / "store"))
    monkeypatch.setattr(finetune_module, "group_shard", lambda: (1, 2))  # this process is rank 1 of 2
    monkeypatch.setattr(finetune_module, "_train", lambda *a, **k: pytest.fail("rank 1 must not fine-tune"))
    said: list[str] = []
    waiting = threading.Event()

    def log(line: str) -> None:
        said.append(line)
        waiting.set()

    def rank_zero() -> None:  # publishes the same request's folder once rank 1 waits, as rank 0 would
        assert waiting.wait(60)
        folder = Path(said[0].rsplit(" into ", 1)[1])
        finetune_module._publish(*_published_parts(reference[0].path), tmp_path / "store" / "work", folder)

    thread = threading.Thread(target=rank_zero)
    thread.start()
    tuned = finetune_module.wait_for_finetuned(cfg, read_raw(cfg, ("train", "dev")), log=log, poll_seconds=0.05)
    thread.join()
    assert len(said) == 1 and said[0].startswith("waiting for rank 0") and not tuned.trained
    assert folder_digest(tuned.path) == reference[1]
    extractor = finetune_module.text_extractor(cfg, CPU)  # the text extractor's rank-1 preparation: published, so no wait and no training
    assert extractor.finetuned == tuned.path


def _published_parts(folder: Path):
    """Encoder, tokenizer and summary of a published folder, to publish them again elsewhere."""
    from transformers import AutoTokenizer

    return AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder), json.loads((folder / SUMMARY).read_text())


def test_run_trains_end_to_end_on_finetuned_features(text_model, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--out", str(out), *overrides(make_data(tmp_path / "data"), text_model, tmp_path / "store"),
            "features.text.finetune.epochs=1", *TINY_MODEL]
    assert run.main(args) == 0
    assert "fine-tune epoch 1/1" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["test"]["per_class_f1"]) == len(LABELS)
    assert len(list((tmp_path / "store").glob("*/finetune/text-*/model.safetensors"))) == 1
    # The checkpoint names the fine-tuned encoder: the run's test split (and new inputs) need no training data.
    (tmp_path / "data" / "train.csv").rename(tmp_path / "train_moved.csv")
    (tmp_path / "data" / "dev.csv").rename(tmp_path / "dev_moved.csv")
    trained = load_model(out)
    assert trained.text_encoder is not None and Path(trained.text_encoder).is_dir()
    capsys.readouterr()
    test = trained.load_split("test")
    assert "fine-tune epoch" not in capsys.readouterr().err  # found, not trained again
    again = predict(trained, test)
    accuracy = sum(p == t for p, t in zip(again.y_pred, again.y_true)) / len(test)
    assert accuracy == pytest.approx(metrics["test"]["accuracy"])


def test_config_ranges():
    with pytest.raises(ConfigError, match=r"features.text.finetune.warmup: 1.5 must satisfy 0 <= warmup <= 1"):
        load_config(None, ["features.text.finetune.warmup=1.5"])
    assert load_config(None, []).features.text.finetune.epochs == 0
