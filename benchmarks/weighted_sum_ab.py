"""Same-run A/B of the fused GAT's weighted sum: DGL's broadcasting kernel vs the WeightedSum autograd function.

    python benchmarks/weighted_sum_ab.py [--rounds 6]

The demo config with ``train.num_threads=1``; in one process, training epochs
(``train_one_epoch``, graph building included) alternate between the two paths of
``sync_tva.models.fused_gat.weighted_sum`` (``REPEAT_LIMIT`` set to -1: always DGL's
``u_mul_e_sum``; left as shipped: WeightedSum on these small batches). Prints the utterances/s
of every epoch and the median per path, as wall-clock and as this process's CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sync_tva.config import load_config
from sync_tva.models import fused_gat
from sync_tva.train.experiment import build_experiment
from sync_tva.train.losses import make_loss
from sync_tva.train.loop import train_one_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="epochs per path, taken in turns")
    args = parser.parse_args()
    exp = build_experiment(load_config(None, ["train.num_threads=1"]))
    torch.set_num_threads(1)
    cfg = exp.cfg.train
    optimizer = torch.optim.AdamW(exp.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = make_loss(cfg.loss, [u.label for u in exp.data.train], len(exp.labels))
    shipped = fused_gat.REPEAT_LIMIT
    paths = {"dgl u_mul_e_sum": -1, "WeightedSum": shipped}
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    n = len(exp.data.train)
    train_one_epoch(exp, loss_fn, optimizer, 0)  # warm-up, not counted
    for epoch in range(1, args.rounds + 1):
        for name, limit in (paths.items() if epoch % 2 else reversed(paths.items())):  # alternate who goes first
            fused_gat.REPEAT_LIMIT = limit
            wall, cpu = time.perf_counter(), time.process_time()
            train_one_epoch(exp, loss_fn, optimizer, epoch)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rates[name].append((n / wall, n / cpu))
            print(f"epoch {epoch} {name:>16}: {n / wall:7.1f} utt/s wall, {n / cpu:7.1f} utt/s cpu", flush=True)
    fused_gat.REPEAT_LIMIT = shipped
    medians = {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)) for name, rs in rates.items()}
    for name, (wall, cpu) in medians.items():
        print(f"median {name:>16}: {wall:7.1f} utt/s wall, {cpu:7.1f} utt/s cpu")
    base, custom = medians["dgl u_mul_e_sum"], medians["WeightedSum"]
    print(f"WeightedSum vs DGL: {custom[0] / base[0] - 1:+.1%} wall, {custom[1] / base[1] - 1:+.1%} cpu")


if __name__ == "__main__":
    main()
