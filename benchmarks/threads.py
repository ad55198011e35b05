"""Demo epoch time at several ``train.num_threads`` while busy processes share the cores (printed, never asserted).

    python benchmarks/threads.py [--threads 0 1 2] [--busy 1] [--epochs 2] [--repeats 2] [key=value ...]

Each setting trains the demo config in a fresh process (torch's thread pool is set once per
process) next to ``--busy`` processes that spin a core each, as other jobs on a shared machine
would; it prints seconds per epoch, mean and spread over epochs and repeats. ``key=value``
overrides change the demo (e.g. ``data.demo.n_dialogues=60`` for a quicker measurement).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import time

import torch

from sync_tva.config import load_config
from sync_tva.train.experiment import build_experiment
from sync_tva.train.loop import train_one_epoch
from sync_tva.train.losses import make_loss


def spin() -> None:
    """Keep one core busy until killed."""
    while True:
        pass


def epoch_seconds(threads: int, epochs: int, overrides: list[str]) -> list[float]:
    """Seconds of each of ``epochs`` demo training epochs at ``train.num_threads=threads``."""
    exp = build_experiment(load_config(None, [*overrides, f"train.num_threads={threads}"]))
    optimizer = torch.optim.AdamW(exp.model.parameters(), lr=exp.cfg.train.lr)
    loss_fn = make_loss("ce", [u.label for u in exp.data.train], len(exp.data.labels))
    times = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_one_epoch(exp, loss_fn, optimizer, epoch)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[0, 1, 2], help="train.num_threads settings")
    parser.add_argument("--busy", type=int, default=1, help="busy-loop processes running alongside")
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed per process")
    parser.add_argument("--repeats", type=int, default=2, help="processes per setting, interleaved")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="demo config overrides")
    args = parser.parse_intermixed_args()
    if args.child is not None:
        print(json.dumps(epoch_seconds(args.child, args.epochs, args.overrides)))
        return
    busy = [mp.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for p in busy:
        p.start()
    times: dict[int, list[float]] = {t: [] for t in args.threads}
    try:
        for _ in range(args.repeats):
            for t in args.threads:
                cmd = [sys.executable, __file__, "--child", str(t), "--epochs", str(args.epochs), *args.overrides]
                seconds = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
                print(f"train.num_threads={t}: epochs of {', '.join(f'{x:.1f}' for x in seconds)} s", flush=True)
                times[t] += seconds
    finally:
        for p in busy:
            p.kill()
    print(f"torch default threads here: {torch.get_num_threads()}; busy processes: {args.busy}")
    for t, ts in times.items():
        spread = statistics.stdev(ts) if len(ts) > 1 else 0.0
        print(f"train.num_threads={t}: {statistics.mean(ts):.1f} ± {spread:.1f} s per epoch over {len(ts)} epochs")


if __name__ == "__main__":
    main()
