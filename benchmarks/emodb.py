"""Real-speech benchmark: audio-only Sync-TVA vs. a standardised logistic regression on EmoDB, speaker-independent.

EmoDB (Berlin Database of Emotional Speech): 535 acted German utterances, 10 speakers (5 female,
5 male), 7 emotions. Five folds; fold k tests on one male and one female speaker, early-stops
on the next fold's two speakers and trains on the other six, so no speaker is ever in two of
train, dev and test. Every figure is a test figure of a fold, then mean ± std over the folds.

Features come through the package's raw-media path: a CSV of every clip for the ``csv`` reader
(``data.media={file}`` below ``data.root``), openSMILE low-level descriptors pooled into frame
windows (``features.audio.*``), cached in one feature store. The store keys features by the
data set's name, which the reader derives from the training CSV's path, so the clips are read
through one catalogue CSV (extracted once per feature set) and the folds are cut from it by
speaker in memory rather than through five sets of CSVs (which would extract every clip five
times). Compared on the same stored node features of each fold:

* majority: the most frequent training emotion;
* logistic regression: mean and std over each utterance's nodes, standardised, scikit-learn
  ``LogisticRegression`` with C chosen on the fold's dev speakers;
* Sync-TVA, ``model.modalities=[audio]``, with each ``model.normalize`` mode (``none`` is the
  behaviour before input normalisation existed).

    .venv/bin/python benchmarks/emodb.py [--data /work/shared/data/audio/emodb_2s] [--store benchmarks/.cache/features]
        [--out benchmarks/.cache/emodb] [--feature-sets ComParE_2016,eGeMAPSv02] [--modes standard,robust,none] [key=value ...]

The overrides go to the Sync-TVA config (``BENCH_OVERRIDES`` below them). Figures are printed
and written to ``OUT/results.json``, never asserted against a clock: about 12 minutes on a
shared two-core machine with the features cached; openSMILE extraction adds about 2.5 minutes
the first time.
"""

from __future__ import annotations

import argparse
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

from sync_tva.config import Config, load_config
from sync_tva.errors import SyncTVAError
from sync_tva.features import load_dataset
from sync_tva.io import atomic_open, write_json
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
class Fold:
    """Speakers of one speaker-independent fold."""

    test: list[str]
    dev: list[str]
    train: list[str]


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


def speaker_folds(table: pd.DataFrame) -> list[Fold]:
    """Fold k tests on the k-th male and k-th female speaker and early-stops on fold k+1's (cyclically)."""
    genders = table.groupby("speaker")["gender"].first()
    males = sorted(genders[genders == "male"].index)
    females = sorted(genders[genders == "female"].index)
    if len(males) != len(females) or len(males) < 3:
        sys.exit(
            f"error: speaker folds need equal numbers (>= 3) of male and female speakers, got {males} and {females}"
        )
    pairs = [[m, f] for m, f in zip(males, females)]
    folds = []
    for k, test in enumerate(pairs):
        dev = pairs[(k + 1) % len(pairs)]
        train = sorted(s for s in genders.index if s not in test + dev)
        folds.append(Fold(test=test, dev=dev, train=train))
    return folds


def write_catalogue(table: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """The csv reader's inputs: every clip as ``train.csv``, and header-only ``dev.csv``/``test.csv``."""
    paths = {split: folder / f"{split}.csv" for split in ("train", "dev", "test")}
    for split, path in paths.items():
        rows = table[COLUMNS] if split == "train" else table[COLUMNS].iloc[:0]
        with atomic_open(path, "w") as fh:
            rows.to_csv(fh, index=False)
    return paths


def bench_config(
    data: Path, csvs: dict[str, Path], store: Path, feature_set: str, overrides: list[str]
) -> Config:
    """The Sync-TVA config of one feature set: the EmoDB catalogue through the csv reader, audio only."""
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
        f"features.store={store}",
        f"features.audio.feature_set={feature_set}",
        "features.progress=false",
    ]
    return load_config(None, data_keys + BENCH_OVERRIDES + overrides)


def fold_splits(catalogue: DatasetSplits, fold: Fold, k: int) -> DatasetSplits:
    """The catalogue's utterances split by the fold's speakers."""
    by_speaker = {
        split: [u for u in catalogue.train if u.speaker in getattr(fold, split)]
        for split in ("train", "dev", "test")
    }
    return DatasetSplits(name=f"{catalogue.name}-fold{k}", labels=catalogue.labels, **by_speaker)


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
    """Mean and population std over folds of the test figures and the dev weighted F1."""
    out = {}
    for key in ("accuracy", "weighted_f1", "dev_weighted_f1"):
        values = [getattr(s, key) for s in per_fold]
        out[key], out[f"{key}_std"] = float(np.mean(values)), float(np.std(values))
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
    folds = speaker_folds(table)
    csvs = write_catalogue(table, args.out / "csv")
    for k, fold in enumerate(folds):
        print(f"fold {k}: test speakers {fold.test}, dev {fold.dev}, train {fold.train}")
    results: dict = {
        "overrides": BENCH_OVERRIDES + args.overrides,
        "folds": [asdict(f) for f in folds],
        "feature_sets": {},
    }
    for feature_set in args.feature_sets:
        cfg = bench_config(args.data, csvs, args.store, feature_set, args.overrides)
        started = time.time()
        catalogue = load_dataset(cfg)
        dims = catalogue.feature_dims()["audio"]
        print(
            f"\n{feature_set}: {len(catalogue.train)} clips, audio nodes {dims} wide ({time.time() - started:.0f} s to read/extract)"
        )
        methods: dict[str, list[Scores]] = {"majority": [], "logistic_regression": []}
        methods.update({f"sync_tva_{mode}": [] for mode in args.modes})
        for k, fold in enumerate(folds):
            data = fold_splits(catalogue, fold, k)
            methods["majority"].append(majority(data))
            methods["logistic_regression"].append(logistic_regression(data, cfg.seed))
            for mode in args.modes:
                started = time.time()
                mode_cfg = bench_config(
                    args.data, csvs, args.store, feature_set, args.overrides + [f"model.normalize={mode}"]
                )
                scores = sync_tva(mode_cfg, data)
                scores.note += f", {time.time() - started:.0f} s"
                methods[f"sync_tva_{mode}"].append(scores)
            line = ", ".join(f"{name} {m[-1].weighted_f1:.3f}" for name, m in methods.items())
            print(
                f"  fold {k} ({len(data.train)}/{len(data.dev)}/{len(data.test)} utts) test weighted F1: {line}",
                flush=True,
            )
        summary = {name: summarise(scores) for name, scores in methods.items()}
        print(f"{feature_set}, {len(folds)} speaker-independent folds (test mean ± std):")
        for name, s in summary.items():
            print(
                f"  {name:22s} weighted F1 {s['weighted_f1']:.3f} ± {s['weighted_f1_std']:.3f}   accuracy {s['accuracy']:.3f} ± "
                f"{s['accuracy_std']:.3f}   (dev weighted F1 {s['dev_weighted_f1']:.3f})"
            )
        tva = {name: s for name, s in summary.items() if name.startswith("sync_tva_")}
        chosen = max(tva, key=lambda name: tva[name]["dev_weighted_f1"])  # never selected on test
        print(f"  best Sync-TVA on dev: {chosen}")
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
