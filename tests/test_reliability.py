"""Issue 10: the cache keys on exact weights, bad input is one ``error:`` line, nothing is dropped silently."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY

from sync_tva import extract, finetune, run
from sync_tva.config import load_config
from sync_tva.data.splits import carve_dev
from sync_tva.errors import ConfigError, DataError
from sync_tva.features.base import weights_digest
from sync_tva.features.text import TextExtractor
from sync_tva.records import DatasetSplits, RawUtterance, Utterance
from sync_tva.testing import FAST, SENTENCES, built_once, make_text_model, write_clip
from sync_tva.train import build_experiment, compute_metrics

ROOT = Path(__file__).resolve().parents[1]
MELD_YAML = ROOT / "configs" / "meld.yaml"
SMALL = ["model.hidden=16", "model.heads=2", "train.epochs=1",
         "train.batch_size=16", "features.progress=false"]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory.getbasetemp(), "text_model", make_text_model)


# 1. The cache key comes from the weights' exact bytes.

DIGEST_AT = """
import sys, torch
from sync_tva.features.base import weights_digest
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(300, 700), torch.nn.Linear(700, 300))
print(torch.get_num_threads(), weights_digest(net))
"""


def test_weights_digest_is_the_same_at_1_and_2_threads():
    outs = [subprocess.run([sys.executable, "-c", DIGEST_AT, str(n)], cwd=ROOT, capture_output=True, text=True,
                           check=True, timeout=300).stdout.split() for n in (1, 2)]
    assert [o[0] for o in outs] == ["1", "2"]
    assert outs[0][1] == outs[1][1]


def test_weights_digest_sees_one_ulp_and_a_dtype():
    torch.manual_seed(0)
    net = torch.nn.Linear(8, 4)
    before = weights_digest(net)
    with torch.no_grad():
        net.weight[2, 3] = torch.nextafter(net.weight[2, 3], torch.tensor(float("inf")))
    assert weights_digest(net) != before
    assert weights_digest(net.to(torch.bfloat16)) != weights_digest(net.to(torch.float32))


def write_clip_csv(folder: Path, rows: int = 8) -> Path:
    """A CSV of ``rows`` utterances in 4 dialogues whose ``Clip`` column holds each clip's path."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID", "Clip"])
        for k in range(rows):
            clip = write_clip(folder / "clips" / f"c{k}.mp4", seconds=0.6, seed=k)
            writer.writerow([SENTENCES[k % len(SENTENCES)], "A", ["joy", "anger"][k % 2], k // 2, k % 2, clip.relative_to(folder)])
    (folder / "test.csv").write_text((folder / "train.csv").read_text())
    return folder


@pytest.mark.slow
def test_extract_then_run_at_other_thread_counts_recomputes_nothing(text_model, tmp_path):
    data = write_clip_csv(tmp_path / "data")
    common = ["data.name=csv", f"data.root={data}", "data.train=train.csv", "data.test=test.csv", "data.media={Clip}",
              "data.dev_fraction=0.5", f"features.text.model={text_model}", f"features.store={tmp_path / 'store'}", *FAST]
    done = subprocess.run([sys.executable, "-m", "sync_tva.extract", *common, "features.progress=false"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"extracted": 16, "cached": 0, "failed": 0}
    for threads in (1, 2):
        cmd = [sys.executable, "-m", "sync_tva.run", *common[:3], "--out", str(tmp_path / f"run{threads}"),
               *common[3:], *SMALL, f"train.num_threads={threads}"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert "0 extracted, 16 cached, 0 failed" in done.stderr
    assert len({p.name for p in (tmp_path / "store").glob("csv-*/*/visual-*")}) == 1  # one fingerprint, every split


# 2. Every user error is one `error:` line, exit 2, and leaves nothing behind.

def test_overrides_may_stand_before_and_after_the_options():
    args = run.parse_args(["model.hidden=16", "--out", "R", "train.epochs=1", "--config", "c.yaml", "seed=3"])
    assert args.overrides == ["model.hidden=16", "train.epochs=1", "seed=3"] and str(args.out) == "R"
    args = extract.parse_args(["seed=1", "--shard", "0/2", "data.root=D"])
    assert args.overrides == ["seed=1", "data.root=D"] and args.shard == "0/2"
    args = finetune.parse_args(["seed=1", "--config", "c.yaml", "data.root=D"])
    assert args.overrides == ["seed=1", "data.root=D"] and str(args.config) == "c.yaml"


@pytest.mark.parametrize("argv", [["model.hidden=0"], ["train.lr=-1"], ["model.dropout=1.5"], ["model.hiden=8"],
                                  ["data.name=nope"], ["data.name=csv", "data.train=/nonexistent.csv", "data.test=x.csv"]])
def test_bad_input_is_one_error_line_and_creates_nothing(argv, tmp_path, capsys):
    out = tmp_path / "run"
    assert run.main([*TINY, "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error: ")] and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("inside", [False, True])
def test_out_at_or_under_a_file_is_refused_before_any_work(inside, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    out = blocker / "run" if inside else blocker
    assert run.main(["--out", str(out), "data.name=csv"]) == 2  # a data error would come later: the path is checked first
    assert f"error: --out {out}: cannot create the run directory ({blocker} is a file" in capsys.readouterr().err


def test_extract_store_under_a_file_is_an_error_line(text_model, tmp_path, capsys):
    data = write_clip_csv(tmp_path / "data", rows=4)
    (tmp_path / "taken").write_text("x")
    argv = ["data.name=csv", f"data.root={data}", "data.train=train.csv", "data.test=test.csv", "data.dev_fraction=0.5",
            "model.modalities=[text]", f"features.text.model={text_model}", f"features.store={tmp_path / 'taken'}"]
    assert extract.main(argv) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "taken" in err and "Traceback" not in err


# 3. Nothing silently dropped or invented.

def test_empty_transcript_gives_zero_text_nodes(text_model):
    cfg = load_config(None, [f"features.text.model={text_model}"]).features.text
    ex = TextExtractor(cfg, torch.device("cpu"))
    utts = [RawUtterance(f"u{i}", "d", "s", 0, text) for i, text in enumerate(["", "What?", "  "])]
    empty, words, blank = ex.extract(utts)
    assert empty.feat.shape == (0, 32) and blank.feat.shape == (0, 32) and empty.tokens == []
    assert words.feat.shape[0] >= 1
    cfg.nodes = "utterance"
    assert TextExtractor(cfg, torch.device("cpu")).extract(utts[:1])[0].feat.shape == (0, 32)


def featured(n_train: int, empty_visual: int, labels: tuple[str, ...] = ("a", "b", "c")) -> DatasetSplits:
    """Random features for 3 modalities; the first ``empty_visual`` training utterances have no visual node."""
    rng = np.random.default_rng(0)

    def utt(split: str, i: int, empty: bool) -> Utterance:
        feats = {"text": rng.normal(size=(3, 6)).astype(np.float32), "audio": rng.normal(size=(2, 4)).astype(np.float32),
                 "visual": rng.normal(size=(0 if empty else 2, 5)).astype(np.float32)}
        return Utterance(f"{split}{i}", f"d{i // 2}", "s", i % 2, feats)  # labels 0 and 1 only

    splits = {s: [utt(s, i, s == "train" and i < empty_visual) for i in range(n)]
              for s, n in (("train", n_train), ("dev", 4), ("test", 4))}
    return DatasetSplits(name="toy", labels=labels, **splits)


def test_a_modality_missing_from_most_utterances_is_an_error_naming_the_fix(tiny_cfg):
    with pytest.raises(DataError, match=r"visual in 70%.*set model.modalities=\[text,audio\]"):
        build_experiment(tiny_cfg, featured(10, 7))


def test_a_modality_missing_from_a_few_is_a_counted_warning_and_unseen_labels_are_named(tiny_cfg, capsys):
    build_experiment(tiny_cfg, featured(10, 2))
    err = capsys.readouterr().err
    assert "2 of 10 train, 0 of 4 dev, 0 of 4 test utterances have no visual nodes" in err
    assert "labels ['c'] have no training example" in err
    assert "no text nodes" not in err and "no audio nodes" not in err


@pytest.mark.parametrize(("n", "fraction", "warned"), [(40, 0.1, False), (3, 0.1, True), (10, 0.01, True), (10, 0.9, True)])
def test_dev_carve_warns_when_a_side_is_nearly_empty(n, fraction, warned, capsys):
    train, dev = carve_dev(range(n), fraction, seed=0)
    assert train and dev and len(train) + len(dev) == n
    err = capsys.readouterr().err
    assert ("warning: dev carve" in err) == warned
    if warned:
        assert "data.dev_fraction" in err or "data.dev" in err


def test_dev_carve_refuses_a_single_dialogue():
    with pytest.raises(ConfigError, match=r"1 training dialogue.*data.dev"):
        carve_dev(["only"], 0.5, seed=0)


def test_macro_f1_covers_the_classes_in_truth_or_predictions():
    m = compute_metrics([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b", "c", "d"])
    assert m.macro_f1_labels == ["a", "b"]
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert m.per_class_f1["c"] == 0.0 and len(m.confusion_matrix) == 4
    assert compute_metrics([0, 0], [0, 3], ["a", "b", "c", "d"]).macro_f1_labels == ["a", "d"]  # a wrong guess counts


def test_bare_column_template_as_media_override_reaches_the_clips(text_model, tmp_path, capsys):
    data = write_clip_csv(tmp_path / "data", rows=4)
    argv = ["data.name=csv", f"data.root={data}", "data.train=train.csv", "data.test=test.csv", "data.media={Clip}",
            "data.dev_fraction=0.5", "model.modalities=[text,visual]", f"features.text.model={text_model}",
            f"features.store={tmp_path / 'store'}", *FAST, "features.progress=false"]
    assert load_config(None, argv).data.media == "{Clip}"
    assert extract.main(argv) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"extracted": 8, "cached": 0, "failed": 0}
    assert len(list((tmp_path / "store").glob("csv-*/*/visual-*/*.npz"))) == 8


# 4. Threads: the default holds up when other jobs share the cores.

def test_training_runs_on_one_cpu_thread_by_default(tiny_cfg):
    assert tiny_cfg.train.num_threads == 1
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        build_experiment(tiny_cfg)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
