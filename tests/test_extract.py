"""``python -m sync_tva.extract`` and ``python -m sync_tva.run`` on raw MELD- and IEMOCAP-shaped data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync_tva import extract, run
from sync_tva.config import load_config
from sync_tva.errors import ConfigError
from sync_tva.features import load_dataset
from sync_tva.testing import FAST, built_once, make_iemocap_tree, make_meld_tree, make_text_model

ROOT = Path(__file__).resolve().parents[1]
MELD_YAML = ROOT / "configs" / "meld.yaml"
BROKEN = {"dia1_utt2", "dia0_utt1"}  # train's corrupt clip, dev's missing clip
TINY_MODEL = ["model.hidden=16", "model.heads=2",
              "train.epochs=2", "train.batch_size=16"]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory.getbasetemp(), "text_model", make_text_model)


@pytest.fixture(scope="module")
def meld(tmp_path_factory) -> Path:
    """36 clips in MELD's layout; train's dia1_utt2 is corrupt and dev's dia0_utt1 is missing."""
    return built_once(tmp_path_factory.getbasetemp(), "meld36",
                      lambda d: make_meld_tree(d, per_split=12, corrupt=("train", "dia1_utt2"), missing=("dev", "dia0_utt1")))


def overrides(meld: Path, text_model: Path, store: Path, *extra: str) -> list[str]:
    return [f"data.root={meld}", f"features.text.model={text_model}", f"features.store={store}", *FAST, *extra]


def extract_json(capsys, args: list[str]) -> dict:
    assert extract.main(args) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def npz_state(store: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in store.rglob("*.npz")}


def test_extract_meld_lists_failures_and_caches(meld, text_model, tmp_path, capsys):
    store = tmp_path / "store"
    args = ["--config", str(MELD_YAML), *overrides(meld, text_model, store)]
    assert extract_json(capsys, args) == {"extracted": 34, "cached": 0, "failed": 2}
    failures = [json.loads(line) for line in (store / "failures.jsonl").read_text().splitlines()]
    assert {f["uid"] for f in failures} == BROKEN
    by_uid = {f["uid"]: f for f in failures}
    assert by_uid["dia0_utt1"]["reason"] == "file not found"
    assert by_uid["dia0_utt1"]["path"].endswith("dev_splits_complete/dia0_utt1.mp4")
    assert "cannot open media" in by_uid["dia1_utt2"]["reason"] and by_uid["dia1_utt2"]["split"] == "train"
    assert len(list(store.glob("meld/*/visual-*/*.npz"))) == 34 and len(list(store.glob("meld/*/text-*/*.npz"))) == 36
    before = npz_state(store)
    assert extract_json(capsys, args) == {"extracted": 0, "cached": 34, "failed": 2}
    assert npz_state(store) == before  # nothing rewritten


def test_shards_split_the_work_and_merge(meld, text_model, tmp_path, capsys):
    text_only = ["model.modalities=[text]"]
    counts = []
    for i in range(2):
        args = ["--config", str(MELD_YAML), "--shard", f"{i}/2", *overrides(meld, text_model, tmp_path / f"s{i}", *text_only)]
        counts.append(extract_json(capsys, args))
    assert sum(c["extracted"] for c in counts) == 36 and all(c["extracted"] for c in counts)
    names = [{p.relative_to(tmp_path / f"s{i}") for p in (tmp_path / f"s{i}").rglob("*.npz")} for i in range(2)]
    assert not names[0] & names[1]
    merged = tmp_path / "merged"
    assert extract_json(capsys, [f"features.store={merged}", "--merge", str(tmp_path / "s0"), str(tmp_path / "s1")])["merged"] > 0
    args = ["--config", str(MELD_YAML), *overrides(meld, text_model, merged, *text_only)]
    assert extract_json(capsys, args) == {"extracted": 0, "cached": 36, "failed": 0}


def test_bad_shard_and_offline_hub_name_fail_before_any_work(meld, tmp_path, capsys, monkeypatch):
    store = tmp_path / "store"
    assert extract.main(["--config", str(MELD_YAML), "--shard", "2/2", f"data.root={meld}", f"features.store={store}"]) == 2
    assert "need 0 <= i < n" in capsys.readouterr().err
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert extract.main(["--config", str(MELD_YAML), f"data.root={meld}", f"features.store={store}"]) == 2
    err = capsys.readouterr().err
    assert "error: features.text.model='roberta-large'" in err and "HF_HOME" in err
    assert not store.exists()  # nothing was started


def test_text_only_csv_and_iemocap_load_through_the_store(text_model, tmp_path):
    tree = make_iemocap_tree(tmp_path / "iemocap", sessions=(1, 5))
    cfg = load_config(ROOT / "configs" / "iemocap.yaml", [f"data.root={tree}", f"features.text.model={text_model}",
                                                          f"features.store={tmp_path / 'store'}", *FAST])
    data = load_dataset(cfg)
    utt = data.test[0]
    assert set(utt.features) == {"text", "audio", "visual"}
    assert utt.features["visual"].shape[1] == 2048 and 1 <= utt.features["visual"].shape[0] <= 4
    assert utt.features["audio"].shape[1] == 25 and utt.features["text"].shape[1] == 32
    assert utt.tokens and utt.spans["audio"].shape == (utt.features["audio"].shape[0], 2)
    meld = make_meld_tree(tmp_path / "meld", per_split=4, clips=False)
    csv_overrides = ["data.name=csv", f"data.root={meld}", "data.train=train_sent_emo.csv", "data.dev=dev_sent_emo.csv",
                     "data.test=test_sent_emo.csv", "data.labels=[neutral,surprise,fear,sadness,joy,disgust,anger]",
                     f"features.text.model={text_model}", f"features.store={tmp_path / 'store'}", *FAST]
    with pytest.raises(ConfigError, match=r"has media for \['text'\]; set model.modalities=\[text\]"):
        load_dataset(load_config(None, csv_overrides))  # refused before any extraction
    data = load_dataset(load_config(None, [*csv_overrides, "model.modalities=[text]"]))
    assert data.feature_dims() == {"text": 32} and len(data.train) == len(data.dev) == 4
    assert any((tmp_path / "store").glob("csv-train_sent_emo-*/test/text-*/dia0_utt0.npz"))


@pytest.mark.slow
def test_killed_extraction_resumes_without_recomputing(meld, text_model, tmp_path):
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "sync_tva.extract", "--config", str(MELD_YAML),
           *overrides(meld, text_model, store, "features.text.batch_size=4")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(store.glob("meld/*/visual-*/*.npz"))) < 4:
        assert proc.poll() is None and time.monotonic() < deadline, "extraction ended before it could be killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = npz_state(store)
    complete = len(list(store.glob("meld/*/visual-*/*.npz")))
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["failed"] == 2 and sum(counts.values()) == 36
    assert counts["cached"] >= complete and counts["extracted"] > 0
    after = npz_state(store)
    assert {p: after[p] for p in done} == done  # every finished file kept: same inode, same mtime
    assert len(list(store.glob("meld/*/visual-*/*.npz"))) == 34


@pytest.mark.slow
def test_raw_meld_to_metrics_json(meld, text_model, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--config", str(MELD_YAML), "--out", str(out), *overrides(meld, text_model, tmp_path / "store"), *TINY_MODEL]
    assert run.main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"accuracy", "weighted_f1", "macro_f1", "per_class_f1", "confusion_matrix"}
    assert sum(map(sum, metrics["test"]["confusion_matrix"])) == 12
    assert "2 utterances of meld could not be extracted" in capsys.readouterr().err
    assert len((tmp_path / "store" / "failures.jsonl").read_text().splitlines()) == 2
