"""Graph building and training throughput on the demo config (printed figures, never asserted).

    python benchmarks/graphs.py [--utterances 2000] [--epochs 2]

Reports utterance graphs built per second one at a time, batched with ``build_batch``, and by
``dgl.batch`` of single graphs; then training utterances per second on the demo config and
the share of a training epoch spent building graphs.
"""

from __future__ import annotations

import argparse
import time

import dgl
import torch

from sync_tva.config import load_config
from sync_tva.features import load_dataset
from sync_tva.graphs import iterate_batches
from sync_tva.train.experiment import build_experiment
from sync_tva.train.loop import train_one_epoch
from sync_tva.train.losses import make_loss


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=2000, help="utterances to build graphs for")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs to time")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    cfg = load_config(None, [f"train.batch_size={args.batch_size}"])
    data = load_dataset(cfg)
    pool = (data.train + data.dev + data.test) * (args.utterances // len(data.train + data.dev + data.test) + 1)
    feats = [u.features for u in pool[: args.utterances]]
    exp = build_experiment(cfg, data)
    builder = exp.builder
    bs = args.batch_size
    print(f"torch {torch.__version__}, dgl {dgl.__version__}, threads {torch.get_num_threads()}, schema {exp.schema.name}")
    n_nodes = sum(sum(a.shape[0] for a in f.values()) for f in feats) / len(feats)
    print(f"{len(feats)} utterances, {n_nodes:.1f} nodes each on average, batches of {bs}")

    singles: list = []
    t_single = timed(lambda: singles.extend(builder.build(f) for f in feats))
    t_dgl_batch = timed(lambda: [dgl.batch(singles[i : i + bs]) for i in range(0, len(singles), bs)])
    t_batched = timed(lambda: [builder.build_batch(feats[i : i + bs]) for i in range(0, len(feats), bs)])
    print(f"one at a time (build):          {len(feats) / t_single:10.0f} graphs/s")
    print(f"one at a time + dgl.batch:      {len(feats) / (t_single + t_dgl_batch):10.0f} graphs/s")
    print(f"batched (build_batch of {bs}):   {len(feats) / t_batched:10.0f} graphs/s")

    loss_fn = make_loss("ce", [u.label for u in data.train], len(data.labels))
    optimizer = torch.optim.AdamW(exp.model.parameters(), lr=cfg.train.lr)
    train_one_epoch(exp, loss_fn, optimizer, 0)  # warm-up
    t_train = sum(timed(lambda e=e: train_one_epoch(exp, loss_fn, optimizer, e)) for e in range(1, args.epochs + 1))
    t_build = sum(timed(lambda e=e: list(iterate_batches(data.train, builder, bs, shuffle_seed=e))) for e in range(1, args.epochs + 1))
    n = len(data.train) * args.epochs
    print(f"training (demo config, CPU):    {n / t_train:10.0f} utterances/s ({t_train / args.epochs:.2f} s/epoch)")
    print(f"graph building share of an epoch: {100 * t_build / t_train:.1f}%")


if __name__ == "__main__":
    main()
