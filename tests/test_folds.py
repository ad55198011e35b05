"""Group cross-validation: ``sync_tva.data.folds`` and ``python -m sync_tva.run --folds GROUP:K``."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

from sync_tva import report, run
from sync_tva.config import load_config
from sync_tva.data.folds import (
    FOLD_JSON,
    FoldRun,
    FoldSpec,
    fold_splits,
    group_of,
    make_folds,
    parse_folds,
    read_fold_run,
    warn_label_gaps,
)
from sync_tva.errors import ConfigError, DataError
from sync_tva.features import load_dataset
from sync_tva.records import DatasetSplits, Utterance
from sync_tva.train.summary import read_summary

FAST = [*TINY, "train.epochs=1", "train.num_threads=1"]


def utterances(sizes: dict[str, int], label_of=lambda speaker, i: i % 3) -> list[Utterance]:
    """``sizes[speaker]`` utterances per speaker, each a one-turn dialogue ``<speaker>-<i>``."""
    return [
        Utterance(uid=f"{s}-{i}", dialogue=f"{s}-{i}", speaker=s, label=label_of(s, i), features={"text": np.zeros((1, 2), np.float32)})
        for s, n in sizes.items()
        for i in range(n)
    ]


SIZES = {f"spk{j:02d}": n for j, n in enumerate([30, 25, 22, 20, 18, 15, 12, 10, 8, 5, 4])}


def test_make_folds_partitions_whole_groups_balanced_and_seeded():
    utts = utterances(SIZES)
    folds = make_folds(utts, FoldSpec("speaker", 4), seed=0)
    assert [f.index for f in folds] == [0, 1, 2, 3]
    tested = [g for f in folds for g in f.groups]
    assert sorted(tested) == sorted(SIZES) and len(set(tested)) == len(tested)  # every group in exactly one fold
    assert [f.size for f in folds] == [sum(SIZES[g] for g in f.groups) for f in folds]
    assert max(f.size for f in folds) - min(f.size for f in folds) <= max(SIZES.values())
    assert max(f.size for f in folds) - min(f.size for f in folds) <= 5  # greedy balance on these sizes
    assert make_folds(list(reversed(utts)), FoldSpec("speaker", 4), seed=0) == folds  # order of records is irrelevant
    equal = utterances({f"s{j}": 10 for j in range(8)})
    runs = {tuple(f.groups for f in make_folds(equal, FoldSpec("speaker", 4), seed)) for seed in range(6)}
    assert len(runs) > 1, "the seed picks which equal-sized groups share a fold"


def test_leave_one_group_out_and_other_groups():
    folds = make_folds(utterances(SIZES), parse_folds("speaker:loo"), seed=3)
    assert [f.groups for f in folds] == [(g,) for g in sorted(SIZES)]
    utts = [Utterance(uid=f"u{i}", dialogue=f"d{i // 2}", speaker=f"Ses0{i % 3 + 1}{'FM'[i % 2]}", label=0, features={}) for i in range(12)]
    assert {group_of(u, "session") for u in utts} == {"Ses01", "Ses02", "Ses03"}
    by_dialogue = make_folds(utts, FoldSpec("dialogue", 2), seed=0)
    assert sorted(g for f in by_dialogue for g in f.groups) == [f"d{i}" for i in range(6)]
    with pytest.raises(DataError, match="speaker 'spk00', which names no session"):
        make_folds(utterances(SIZES), FoldSpec("session", 2), seed=0)


def test_fold_splits_keep_test_groups_out_of_train_and_dev(capsys):
    labels = lambda s, i: 6 if s == "spk10" else i % 3  # noqa: E731  (only spk10 has label 6)
    utts = utterances(SIZES, labels)
    data = DatasetSplits("toy", tuple("abcdefg"), train=utts[:100], dev=utts[100:], test=utts[:3])
    folds = make_folds(utts, FoldSpec("speaker", 3), seed=1)
    for fold in folds:
        split = fold_splits(data, fold, dev_fraction=0.2, seed=1)
        speakers = {name: {u.speaker for u in split.split(name)} for name in ("train", "dev", "test")}
        assert speakers["test"] == set(fold.groups)
        assert not speakers["test"] & (speakers["train"] | speakers["dev"])
        assert len(split.train) + len(split.dev) + len(split.test) == len(utts)
        assert not {u.dialogue for u in split.train} & {u.dialogue for u in split.dev}
        warn_label_gaps(data, fold, split.test)
    warned = capsys.readouterr().err
    assert sum("warning: --folds speaker" in line and "labelled g" in line for line in warned.splitlines()) == 2


def test_explicit_folds_test_the_groups_given_in_order():
    spec = parse_folds("speaker:spk03+spk00,spk01+spk02+spk10,spk04+spk05+spk06+spk07+spk08+spk09")
    assert spec.held == (("spk03", "spk00"), ("spk01", "spk02", "spk10"), ("spk04", "spk05", "spk06", "spk07", "spk08", "spk09"))
    assert str(spec) == "speaker:spk03+spk00,spk01+spk02+spk10,spk04+spk05+spk06+spk07+spk08+spk09"
    folds = make_folds(utterances(SIZES), spec, seed=0)
    assert [f.groups for f in folds] == [("spk00", "spk03"), ("spk01", "spk02", "spk10"), spec.held[2]]
    assert [f.size for f in folds] == [50, 51, 68]
    assert make_folds(utterances(SIZES), spec, seed=5) == folds  # the seed cuts no explicit fold


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("speaker:spk00+spk01,spk02+spk01", ConfigError, "spk01 in more than one fold"),
        ("speaker:spk00,,spk01", ConfigError, "an empty fold or group id"),
        ("speaker:spk00++spk01,spk02", ConfigError, "an empty fold or group id"),
        ("speaker:spk00+spk99,spk01", DataError, "has speaker 'spk99'"),
        ("speaker:spk00+spk01+spk02+spk03+spk04,spk05+spk06+spk07+spk08", DataError, "speaker 'spk09', 'spk10' in no fold"),
    ],
)
def test_bad_explicit_folds_name_the_group(text, error, message):
    with pytest.raises(error, match=message):
        make_folds(utterances(SIZES), parse_folds(text), seed=0)


def test_explicit_folds_on_the_demo_are_one_error_line(tmp_path, capsys):
    assert run.main(["--folds", "speaker:Ana+Ben,Cleo", "--out", str(tmp_path / "r"), *FAST]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "speaker 'Dev' in no fold" in err[0] and "every utterance is tested once" in err[0]


def test_a_fold_record_cuts_the_same_splits_again(tmp_path):
    utts = utterances(SIZES)
    data = DatasetSplits("toy", tuple("abc"), train=utts[:120], dev=utts[120:], test=[])
    spec = FoldSpec("speaker", 3)
    fold = make_folds(utts, spec, seed=2)[1]
    split = fold_splits(data, fold, dev_fraction=0.2, seed=2)
    (tmp_path / FOLD_JSON).write_text(json.dumps(FoldRun.of(spec, fold, split, 2, 0.2).to_dict()))
    record = read_fold_run(tmp_path)
    assert record is not None and record.fold == fold and record.protocol == "speaker:3"
    again = record.splits(replace(data, train=list(reversed(utts)), dev=[]))  # the same pool, stored otherwise
    for name in ("train", "dev", "test"):
        assert sorted(u.uid for u in again.split(name)) == sorted(u.uid for u in split.split(name)), name
    assert read_fold_run(tmp_path / "elsewhere") is None
    with pytest.raises(DataError, match="the source's train or dev changed since"):
        record.splits(replace(data, dev=[]))


@pytest.mark.parametrize(
    ("text", "message"),
    [("speaker", "expected GROUP:K"), ("speaker:", "expected GROUP:K"), ("age:5", "unknown group 'age'"), ("speaker:1", "at least 2"), ("speaker:x", "integer >= 2")],
)
def test_bad_folds_are_one_error_line(text, message, tmp_path, capsys):
    with pytest.raises(ConfigError, match=message):
        parse_folds(text)
    assert run.main(["--folds", text, "--out", str(tmp_path / "r"), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --folds") and message in err[0]
    assert not (tmp_path / "r").exists()


def test_too_many_folds_and_missing_sessions_are_errors(tmp_path, capsys):
    assert run.main(["--folds", "speaker:5", "--out", str(tmp_path / "r"), *FAST]) == 2  # the demo has 4 speakers
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "4 speaker group(s), fewer than the 5 folds" in err[0]
    assert run.main(["--folds", "session:2", "--out", str(tmp_path / "r"), *FAST]) == 2
    assert "names no session" in capsys.readouterr().err


@pytest.fixture(scope="module")
def folds_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("folds")
    assert run.main(["--folds", "speaker:3", "--out", str(out), *FAST]) == 0
    return out


def test_folds_write_one_run_each_and_a_summary(folds_out):
    infos = [json.loads((folds_out / f"fold-{i}" / "fold.json").read_text()) for i in range(3)]
    for i, info in enumerate(infos):
        run_dir = folds_out / f"fold-{i}"
        for name in ("config.yaml", "metrics.json", "history.json", "checkpoints/best.pt"):
            assert (run_dir / name).is_file(), name
        groups = info["split_groups"]
        assert groups["test"] == info["groups"] and not set(groups["test"]) & (set(groups["train"]) | set(groups["dev"]))
        record = read_fold_run(run_dir)  # what the run's own splits were, cut again from the source
        cfg = load_config(None, [*FAST])
        split = record.splits(load_dataset(cfg, ("train", "dev")))
        assert {u.speaker for u in split.test} == set(info["groups"]) and len(split.test) == info["sizes"]["test"]
        assert sorted({u.speaker for u in split.train}) == groups["train"]
    assert sorted(g for info in infos for g in info["groups"]) == ["Ana", "Ben", "Cleo", "Dev"]
    summary = read_summary(folds_out)
    assert summary.protocol == "speaker:3" and [f.groups for f in summary.folds] == [info["groups"] for info in infos]
    assert summary.test["weighted_f1"].n == 3 and [f.sizes for f in summary.folds] == [info["sizes"] for info in infos]
    md = (folds_out / "summary.md").read_text()
    assert md.startswith("# 3 folds (speaker:3)") and all(f"| {i} | {', '.join(info['groups'])} |" in md for i, info in enumerate(infos))
    table = report.render({"cv": summary}, [])
    assert "| cv | 1 x speaker:3 |" in table


def test_explicit_folds_train_the_named_groups(tmp_path):
    out = tmp_path / "named"
    assert run.main(["--folds", "speaker:Dev+Ana,Cleo+Ben", "--out", str(out), *FAST]) == 0
    infos = [json.loads((out / f"fold-{i}" / FOLD_JSON).read_text()) for i in range(2)]
    assert [info["groups"] for info in infos] == [["Ana", "Dev"], ["Ben", "Cleo"]]
    assert all(not set(info["split_groups"]["test"]) & set(info["split_groups"]["train"]) for info in infos)
    assert read_summary(out).protocol == "speaker:Dev+Ana,Cleo+Ben"


def test_a_killed_folds_run_resumes_at_its_fold(folds_out, capsys):
    kept = {i: (folds_out / f"fold-{i}" / "metrics.json").stat().st_mtime_ns for i in (0, 2)}
    (folds_out / "fold-1" / "metrics.json").unlink()  # as if killed while fold 1 evaluated
    assert run.main(["--folds", "speaker:3", "--out", str(folds_out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "fold 0:" in printed and "skipped" in printed and "fold 1 of 3" in printed and "fold 0 of 3" not in printed
    assert (folds_out / "fold-1" / "metrics.json").is_file()
    assert kept == {i: (folds_out / f"fold-{i}" / "metrics.json").stat().st_mtime_ns for i in (0, 2)}
    assert read_summary(folds_out).test["accuracy"].n == 3


@pytest.mark.slow
def test_folds_compose_with_seeds(tmp_path):
    out = tmp_path / "cv"
    assert run.main(["--folds", "speaker:3", "--seeds", "0,1", "--out", str(out), *FAST]) == 0
    runs = sorted(out.glob("fold-*/seed-*/metrics.json"))
    assert len(runs) == 6
    summary = read_summary(out)
    assert summary.test["weighted_f1"].n == 6 and sorted(Counter(summary.seeds).items()) == [(0, 3), (1, 3)]
    assert [len(f.runs) for f in summary.folds] == [2, 2, 2] and all(f.test["accuracy"].n == 2 for f in summary.folds)
    assert all(read_fold_run(d).seed == 0 for d in out.glob("fold-*/seed-*"))  # every run knows its fold; seed 1 keeps seed 0's folds
    assert "x 2 seed(s): 0, 1" in (out / "summary.md").read_text()
