"""Real-speech benchmark: audio-only Sync-TVA vs. a standardised logistic regression on EmoDB, speaker-independent.

EmoDB (Berlin Database of Emotional Speech): 535 acted German utterances, 10 speakers (5 female,
5 male), 7 emotions. The folds are the package's (``sync_tva.data.folds``, what ``python -m
sync_tva.run --folds speaker:5`` cuts): five folds of two speakers each, balanced by clip count
and chosen by ``seed``; each fold early-stops on two of the eight other speakers (the catalogue's
dialogue is the speaker, so ``data.dev_fraction=0.25`` carves two whole speakers) and trains on the
remaining six, so no speaker is ever in two of train, dev and test. ``--folds`` takes any other
``GROUP:K`` or explicit folds, e.g. one male and one female speaker per fold:
``--folds speaker:03+08,10+09,11+13,12+14,15+16``. Every figure is a test figure of a fold, then
mean ± sample std over the folds (as ``summary.json`` of a ``--folds`` run gives them).

Features come through the package's raw-media path: a CSV of every clip for the ``csv`` reader
(``data.media={file}`` below ``data.root``), openSMILE low-level descriptors pooled into frame
windows (``features.audio.*``), cached in one feature store. The store keys features by the
data set's name, which the reader derives from the training CSV's path, so the clips are read
through one catalogue CSV (extracted once per feature set) and the folds are cut from it in memory
rather than through five sets of CSVs (which would extract every clip five times). Compared on the
same stored node features of each fold:

* majority: the most frequent training emotion;
* logistic regression: mean and std over each utterance's nodes, standardised, scikit-learn
  ``LogisticRegression`` with C chosen on the fold's dev speakers;
* Sync-TVA, ``model.modalities=[audio]``, with each ``model.normalize`` mode (``none`` is the
  behaviour before input normalisation existed).

    .venv/bin/python benchmarks/emodb.py [--data /work/shared/data/audio/emodb_2s] [--store benchmarks/.cache/features]
        [--out benchmarks/.cache/emodb] [--feature-sets ComParE_2016,eGeMAPSv02] [--modes standard,robust,none]
        [--folds speaker:5] [key=value ...]

Each feature set's Sync-TVA setting is also written as ``OUT/<feature set>.yaml``, so one row is
``python -m sync_tva.run --config OUT/ComParE_2016.yaml --folds speaker:5 model.normalize=standard``
(with run directories, checkpoints and ``summary.md``; the same folds, so the same figures).

The overrides go to the Sync-TVA config (``BENCH_OVERRIDES`` below them). Figures are printed
and written to ``OUT/results.json``, never asserted against a clock: about 6.5 minutes on a
shared two-core machine with the features cached; openSMILE extraction adds about 80 s the
first time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sync_tva.config import Config, apply_overrides, load_config
from sync_tva.data.folds import FoldSpec, cut_folds, parse_folds
from sync_tva.errors import ConfigError, SyncTVAError
from sync_tva.features import load_dataset
from sync_tva.io import atomic_open, write_json, write_yaml
from sync_tva.records import DatasetSplits, Utterance
from sync_tva.train.experiment import build_experiment
from sync_tva.train.logging import RunLogger
from sync_tva.train.loop import evaluate, fit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "audio" / "emodb_2s"
DEFAULT_CACHE = REPO / "benchmarks" / ".cache"
COLUMNS = ["file", "speaker", "gender", "text_code", "emotion"]  # the labels.csv columns the benchmark reads
# A small audio-only model; 2-s clips give 4 frame windows of 0.5 s each.
BENCH_OVERRIDES = [
    "model.modalities=[audio]",
    "model.hidden=64",
    "model.dropout=0.3",  # chosen on dev (mean dev weighted F1 over both feature sets; 0.1 and 0.3 tried)
    "train.epochs=40",
    "train.patience=8",
    "train.num_threads=1",
    "train.resume=false",
]
FEATURE_SETS = ("ComParE_2016", "eGeMAPSv02")  # openSMILE sets compared (both frame-level LLDs)
MODES = ("standard", "robust", "none")  # model.normalize values; none = before input normalisation existed
LR_C = (0.01, 0.1, 1.0, 10.0)  # logistic-regression inverse regularisation strengths tried on dev


@dataclass
class Scores:
    """Test figures of one model on one fold, and what was selected on dev."""

    accuracy: float
    weighted_f1: float
    dev_weighted_f1: float
    note: str = ""  # e.g. the chosen C or the best epoch


def read_labels(data: Path) -> pd.DataFrame:
    """EmoDB's ``labels.csv`` (speaker ids kept as strings, e.g. ``"03"``)."""
    table = pd.read_csv(data / "labels.csv", dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        sys.exit(f"error: {data / 'labels.csv'} lacks columns {missing}; expected at least {COLUMNS}")
    return table


def write_catalogue(table: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """The csv reader's inputs: every clip as ``train.csv``, and header-only ``dev.csv``/``test.csv``."""
    paths = {split: folder / f"{split}.csv" for split in ("train", "dev", "test")}
    for split, path in paths.items():
        rows = table[COLUMNS] if split == "train" else table[COLUMNS].iloc[:0]
        with atomic_open(path, "w") as fh:
            rows.to_csv(fh, index=False)
    return paths


def bench_keys(data: Path, csvs: dict[str, Path], store: Path, feature_set: str, overrides: list[str]) -> list[str]:
    """The overrides of one feature set's Sync-TVA config: the EmoDB catalogue through the csv reader, audio only."""
    data_keys = [
        "data.name=csv",
        f"data.root={data}",
        *(f"data.{split}={path}" for split, path in csvs.items()),
        "data.columns.text=text_code",
        "data.columns.label=emotion",
        "data.columns.speaker=speaker",
        "data.columns.dialogue=speaker",
        "data.columns.utterance=file",
        "data.media='{file}'",  # quoted: unquoted, YAML would read {file} as a mapping
        "data.dev_fraction=0.25",  # dialogue = speaker: each fold early-stops on 2 of its 8 other speakers
        f"features.store={store}",
        f"features.audio.feature_set={feature_set}",
        "features.progress=false",
    ]
    return data_keys + BENCH_OVERRIDES + overrides


def write_run_config(keys: list[str], path: Path) -> None:
    """``keys`` as a config file for ``python -m sync_tva.run --config PATH --folds ...``."""
    write_yaml(path, apply_overrides({}, keys))


def mean_std(utts: list[Utterance]) -> np.ndarray:
    """``[n_utterances, 2 * dim]``: mean and std of each utterance's audio nodes."""
    return np.stack(
        [np.concatenate([u.features["audio"].mean(axis=0), u.features["audio"].std(axis=0)]) for u in utts]
    )


def labels_of(utts: list[Utterance]) -> np.ndarray:
    return np.array([u.label for u in utts])


def weighted_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(f1_score(truth, pred, average="weighted", zero_division=0))


def majority(data: DatasetSplits) -> Scores:
    """Predict the most frequent training emotion everywhere."""
    label = int(np.bincount(labels_of(data.train)).argmax())
    dev, test = labels_of(data.dev), labels_of(data.test)
    pred = np.full_like(test, label)
    return Scores(
        accuracy_score(test, pred),
        weighted_f1(test, pred),
        weighted_f1(dev, np.full_like(dev, label)),
        data.labels[label],
    )


def logistic_regression(data: DatasetSplits, seed: int) -> Scores:
    """Standardised mean+std features, C chosen on dev weighted F1, fitted on train only."""
    x = {split: mean_std(data.split(split)) for split in ("train", "dev", "test")}
    y = {split: labels_of(data.split(split)) for split in ("train", "dev", "test")}
    best = None
    for c in LR_C:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, random_state=seed))
        clf.fit(x["train"], y["train"])
        dev_f1 = weighted_f1(y["dev"], clf.predict(x["dev"]))
        if best is None or dev_f1 > best[0]:
            best = (dev_f1, c, clf)
    dev_f1, c, clf = best
    pred = clf.predict(x["test"])
    return Scores(accuracy_score(y["test"], pred), weighted_f1(y["test"], pred), dev_f1, f"C={c}")


def sync_tva(cfg: Config, data: DatasetSplits) -> Scores:
    """Train on the fold (early stopping on dev) in a throw-away run directory; score the best epoch."""
    exp = build_experiment(cfg, data=data)
    with tempfile.TemporaryDirectory(prefix="emodb-run-") as out:
        logger = RunLogger(Path(out))
        try:
            state = fit(exp, Path(out), logger)
        finally:
            logger.close()
    test = evaluate(exp, exp.data.test)  # the splits as the model reads them (speaker-normalised when the config asks)
    return Scores(test.accuracy, test.weighted_f1, state.best_metric, f"epoch {state.best_epoch}")


def summarise(per_fold: list[Scores]) -> dict[str, float]:
    """Mean and sample std (ddof=1, as a ``--folds`` summary) over folds of the test figures and the dev weighted F1."""
    out = {}
    for key in ("accuracy", "weighted_f1", "dev_weighted_f1"):
        values = [getattr(s, key) for s in per_fold]
        out[key] = statistics.fmean(values)
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def comma_list(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    """An argparse type: ``"a,b"`` to ``["a", "b"]``, each one of ``allowed`` (no nargs, so overrides may follow)."""

    def parse(text: str) -> list[str]:
        items = [t for t in text.split(",") if t]
        unknown = [t for t in items if t not in allowed]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"{text!r}: choose a comma-separated subset of {','.join(allowed)}"
            )
        return items

    return parse


def folds_arg(text: str) -> FoldSpec:
    """An argparse type: ``--folds`` as ``python -m sync_tva.run`` parses it, its error as argparse's message."""
    try:
        return parse_folds(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="EmoDB folder with labels.csv and the wav files"
    )
    parser.add_argument(
        "--store", type=Path, default=DEFAULT_CACHE / "features", help="feature store (cached openSMILE)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_CACHE / "emodb", help="catalogue CSVs and results.json"
    )
    parser.add_argument(
        "--feature-sets",
        type=comma_list(FEATURE_SETS),
        default=list(FEATURE_SETS),
        help="comma-separated openSMILE sets",
    )
    parser.add_argument(
        "--modes",
        type=comma_list(MODES),
        default=list(MODES),
        help="comma-separated model.normalize modes to train",
    )
    parser.add_argument(
        "--folds", type=folds_arg, default=parse_folds("speaker:5"),
        help="the package's folds, as python -m sync_tva.run --folds takes them (default speaker:5)",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="Sync-TVA config overrides, e.g. train.lr=1e-3"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "labels.csv").is_file():
        print(f"skipped: no EmoDB at {args.data} (labels.csv and the wav files); pass --data FOLDER")
        return 0
    try:
        return run(args)
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Extract (cached), then per feature set and fold: majority, logistic regression, Sync-TVA per mode."""
    table = read_labels(args.data)
    csvs = write_catalogue(table, args.out / "csv")
    results: dict = {"overrides": BENCH_OVERRIDES + args.overrides, "protocol": str(args.folds), "feature_sets": {}}
    for feature_set in args.feature_sets:
        keys = bench_keys(args.data, csvs, args.store, feature_set, args.overrides)
        write_run_config(keys, args.out / f"{feature_set}.yaml")
        cfg = load_config(None, keys)
        started = time.time()
        catalogue = load_dataset(cfg)
        dims = catalogue.feature_dims()["audio"]
        print(
            f"\n{feature_set}: {len(catalogue.train)} clips, audio nodes {dims} wide ({time.time() - started:.0f} s to read/extract)"
        )
        folds = cut_folds(catalogue, args.folds, cfg.seed, cfg.data.dev_fraction)
        for record, _ in folds:
            groups = record.split_groups
            print(f"fold {record.fold.index}: test speakers {groups['test']}, dev {groups['dev']}, train {groups['train']}")
        results["folds"] = [record.to_dict() for record, _ in folds]
        methods: dict[str, list[Scores]] = {"majority": [], "logistic_regression": []}
        methods.update({f"sync_tva_{mode}": [] for mode in args.modes})
        for record, data in folds:
            methods["majority"].append(majority(data))
            methods["logistic_regression"].append(logistic_regression(data, cfg.seed))
            for mode in args.modes:
                started = time.time()
                scores = sync_tva(load_config(None, keys + [f"model.normalize={mode}"]), data)
                scores.note += f", {time.time() - started:.0f} s"
                methods[f"sync_tva_{mode}"].append(scores)
            line = ", ".join(f"{name} {m[-1].weighted_f1:.3f}" for name, m in methods.items())
            print(
                f"  fold {record.fold.index} ({len(data.train)}/{len(data.dev)}/{len(data.test)} utts) test weighted F1: {line}",
                flush=True,
            )
        summary = {name: summarise(scores) for name, scores in methods.items()}
        print(f"{feature_set}, {len(folds)} folds ({args.folds}), test mean ± std:")
        for name, s in summary.items():
            print(
                f"  {name:22s} weighted F1 {s['weighted_f1']:.3f} ± {s['weighted_f1_std']:.3f}   accuracy {s['accuracy']:.3f} ± "
                f"{s['accuracy_std']:.3f}   (dev weighted F1 {s['dev_weighted_f1']:.3f})"
            )
        tva = {name: s for name, s in summary.items() if name.startswith("sync_tva_")}
        chosen = max(tva, key=lambda name: tva[name]["dev_weighted_f1"])  # never selected on test
        print(f"  best Sync-TVA on dev: {chosen}")
        print(f"  one row as fold runs: python -m sync_tva.run --config {args.out / f'{feature_set}.yaml'} --folds {args.folds} model.normalize=standard")
        results["feature_sets"][feature_set] = {
            "node_dim": dims,
            "selected_on_dev": chosen,
            "summary": summary,
            "per_fold": {name: [asdict(s) for s in scores] for name, scores in methods.items()},
        }
    write_json(args.out / "results.json", results)
    print(f"\nresults in {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
