"""How much the conversation is worth on MELD text, measured without the package: an MLP vs a BiGRU on MiniLM vectors.

A reference for ``sync_tva_dialogue``: both models read the same mean-pooled MiniLM vector of
each utterance (``real_text.py``'s cache); the MLP classifies each utterance alone, the BiGRU
also reads its dialogue in turn order (bcLSTM-style: the classifier sees the utterance and the
GRU state). Same held-out carve of MELD train as ``real_text.py`` for each seed (early stopping
on its weighted F1), MELD dev scored once per seed. Plain PyTorch, one thread.

    .venv/bin/python benchmarks/dialogue_reference.py [--data ../shared/data/meld] [--out runs/real_text] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from real_text import DEFAULT_DATA, REPO, EncodedSplit, encoded_split, held_out_train, minilm_directory
from sklearn.metrics import f1_score
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

from sync_tva.config import load_config
from sync_tva.data import MELD_LABELS

HIDDEN, DROPOUT, LR, EPOCHS, DIALOGUES_PER_BATCH = 128, 0.3, 1e-3, 25, 16


class Reference(nn.Module):
    """Per-utterance MLP; with ``sequence`` also a BiGRU over the dialogue, read beside the utterance."""

    def __init__(self, in_dim: int, n_classes: int, sequence: bool):
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(in_dim, HIDDEN), nn.ReLU(), nn.Dropout(DROPOUT))
        self.gru = nn.GRU(HIDDEN, HIDDEN // 2, batch_first=True, bidirectional=True) if sequence else None
        self.drop = nn.Dropout(DROPOUT)
        self.out = nn.Linear(2 * HIDDEN if sequence else HIDDEN, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        u = self.inp(x)  # [D, L, hidden]
        if self.gru is not None:
            packed = pack_padded_sequence(u, lengths, batch_first=True, enforce_sorted=False)
            states, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=u.shape[1])
            u = torch.cat([u, self.drop(states)], dim=-1)
        return self.out(u)  # [D, L, classes]


def dialogues(x: np.ndarray, split: EncodedSplit, rows: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(vectors, labels) of each dialogue among ``rows``, turns in file order."""
    frame = split.frame[rows]
    ids = frame["Dialogue_ID"].to_numpy()
    x, y = x[rows], frame["label"].to_numpy()
    return [(torch.from_numpy(x[ids == d]), torch.from_numpy(y[ids == d])) for d in dict.fromkeys(ids)]


def padded(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(y) for _, y in batch])
    return pad_sequence([x for x, _ in batch], batch_first=True), pad_sequence([y for _, y in batch], batch_first=True, padding_value=-100), lengths


@torch.no_grad()
def weighted_f1(model: Reference, data: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    model.eval()
    x, y, lengths = padded(data)
    pred = model(x, lengths).argmax(-1)
    keep = y != -100
    return float(f1_score(y[keep].numpy(), pred[keep].numpy(), average="weighted"))


def train_reference(sequence: bool, train, held, dev, seed: int) -> tuple[float, float]:
    """(held-out, dev) weighted F1 at the epoch with the best held-out score."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Reference(train[0][0].shape[1], len(MELD_LABELS), sequence)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-2)
    best = (-1.0, 0.0)
    for _ in range(EPOCHS):
        model.train()
        order = rng.permutation(len(train))
        for start in range(0, len(order), DIALOGUES_PER_BATCH):
            x, y, lengths = padded([train[i] for i in order[start : start + DIALOGUES_PER_BATCH]])
            loss = nn.functional.cross_entropy(model(x, lengths).flatten(0, 1), y.flatten(), ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        score = weighted_f1(model, held)
        if score > best[0]:
            best = (score, weighted_f1(model, dev))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train_sent_emo.csv and dev_sent_emo.csv")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "real_text", help="real_text.py's run directory (its cache is reused)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model_dir = minilm_directory()
    train = encoded_split(args.data / "train_sent_emo.csv", model_dir, args.out / "cache" / "train_minilm_tokens.npz")
    dev = encoded_split(args.data / "dev_sent_emo.csv", model_dir, args.out / "cache" / "dev_minilm_tokens.npz")
    x_train, x_dev = train.mean_pooled(), dev.mean_pooled()
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6  # standardised on train, as the package's normaliser does
    x_train, x_dev = ((x_train - mean) / std).astype(np.float32), ((x_dev - mean) / std).astype(np.float32)
    scores: dict[str, list[tuple[float, float]]] = {"MLP": [], "BiGRU": []}
    for seed in args.seeds:
        fit_rows, held_rows = held_out_train(train, load_config(None, [f"seed={seed}"]))
        splits = dialogues(x_train, train, fit_rows), dialogues(x_train, train, held_rows), dialogues(x_dev, dev, np.ones(len(x_dev), bool))
        for name in scores:
            scores[name].append(train_reference(name == "BiGRU", *splits, seed))
            held, dev_f1 = scores[name][-1]
            print(f"{name}, seed {seed}: held-out weighted F1 {held:.4f}, MELD dev weighted F1 {dev_f1:.4f}", flush=True)
    for name, runs in scores.items():
        dev_f1 = [d for _, d in runs]
        print(f"{name}, {len(runs)} seeds: MELD dev weighted F1 {np.mean(dev_f1):.4f} ± {np.std(dev_f1):.4f}")
    gain = np.array([d for _, d in scores["BiGRU"]]) - np.array([d for _, d in scores["MLP"]])
    print(f"BiGRU - MLP: {gain.mean():+.4f} ± {gain.std():.4f} weighted F1 on MELD dev")
    return 0


if __name__ == "__main__":
    sys.exit(main())
