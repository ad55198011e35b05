"""Speed of the GAT implementations on the demo and as graphs grow (printed figures, never asserted).

    python benchmarks/speed.py [--repeats 5] [--sizes 16 32 64 128 256 512] [--scale-batch 8] [--skip-scaling]

Part 1, the demo config with ``train.num_threads=1``: utterances/s of a training epoch
(``train_one_epoch``, graph building included) and of inference (``collect_logits`` over the
training split) for ``model.gat_impl=per_relation`` and ``fused``, plus the dense reference
(``sync_tva.models.dense_reference``) for inference; and the share of a training epoch spent
building graphs. The implementations take turns inside every repeat and the median over
repeats is printed, as wall-clock time and as this process's CPU time (the machine may be shared).

Part 2, synthetic utterances of ``n`` nodes (n/2 text, n/4 audio, the rest visual) on the
``utterance`` schema (``full`` edges) and the ``aligned`` schema (``aligned`` cross-modal and
intra-modal edges): CPU milliseconds per training step (forward, backward, AdamW) and per
inference batch, graph building per batch, and peak memory. Each (schema, n) runs in a fresh process with
glibc's mmap threshold fixed at 64 KiB (freed tensors go back to the OS); peak memory is the
kernel's resident high-water mark (VmHWM, reset through /proc/self/clear_refs) minus the
resident size just before the measured steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from typing import Callable

import dgl
import numpy as np
import torch

from sync_tva.config import load_config
from sync_tva.features import load_dataset
from sync_tva.graphs import UtteranceGraphBuilder, iterate_batches, load_schema
from sync_tva.models import build_model
from sync_tva.models.dense_reference import dense_logits
from sync_tva.train.experiment import build_experiment
from sync_tva.train.loop import collect_logits, train_one_epoch
from sync_tva.train.losses import make_loss

IMPLS = ("per_relation", "fused")
SCHEMAS = {"full": "utterance", "aligned": "aligned"}


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _status_kb(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory_mib(fn: Callable[[], object]) -> tuple[float, object]:
    """(resident high-water mark during ``fn`` above the resident size before it in MiB, ``fn()``)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current VmRSS
    before = _status_kb("VmRSS")
    result = fn()
    return (_status_kb("VmHWM") - before) / 1024, result


def cpu_times(fn: Callable[[dgl.DGLGraph], object], graphs: list[dgl.DGLGraph]) -> list[float]:
    """CPU seconds of this process for ``fn(g)``, for each graph (one thread: the compute time, whatever the load)."""
    return [timed(partial(fn, g))[1] for g in graphs]


def dense_pass(exp, utterances, batch_size: int) -> None:
    """The dense reference's logits for ``utterances`` (graphs built as ``collect_logits`` builds them)."""
    exp.model.eval()
    with torch.no_grad():
        for batch in iterate_batches(utterances, exp.builder, batch_size):
            dense_logits(exp.model, batch.graph)
    exp.model.train()


def build_epoch(builder, utterances, batch_size: int, seed: int) -> None:
    """Build every training batch of one epoch, as ``train_one_epoch`` does."""
    for _ in iterate_batches(utterances, builder, batch_size, shuffle_seed=seed):
        pass


def train_step(model, optimizer, loss_fn, labels: torch.Tensor, g: dgl.DGLGraph) -> None:
    """Forward, backward and one optimiser step on a prebuilt batch."""
    loss = loss_fn(model(g).logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def infer(model, g: dgl.DGLGraph) -> torch.Tensor:
    """Logits of ``model`` on a prebuilt batch."""
    return model(g).logits


def demo(repeats: int) -> None:
    """Part 1: the demo config, one thread, per-relation vs fused (vs dense for inference)."""
    experiments, optimizers = {}, {}
    for impl in IMPLS:
        cfg = load_config(None, ["train.num_threads=1", f"model.gat_impl={impl}"])
        data = load_dataset(cfg)
        experiments[impl] = exp = build_experiment(cfg, data)
        optimizers[impl] = torch.optim.AdamW(exp.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    exp0 = experiments[IMPLS[0]]
    data, bs = exp0.data, exp0.cfg.train.batch_size
    loss_fn = make_loss(exp0.cfg.train.loss, [u.label for u in data.train], len(data.labels))
    n = len(data.train)
    nodes = np.mean([sum(len(a) for a in u.features.values()) for u in data.train])
    print(f"torch {torch.__version__}, dgl {dgl.__version__}, threads {torch.get_num_threads()}, {os.cpu_count()} CPUs seen")
    print(f"demo config: {n} training utterances, {nodes:.1f} nodes each on average, batches of {bs}, {repeats} repeats (median)")

    runs: dict[str, list[tuple[float, float]]] = {}
    for impl in IMPLS:  # warm-up: first-call allocations and format conversions
        train_one_epoch(experiments[impl], loss_fn, optimizers[impl], 0)
    for r in range(repeats):
        for impl in IMPLS:
            exp = experiments[impl]
            runs.setdefault(f"train {impl}", []).append(timed(partial(train_one_epoch, exp, loss_fn, optimizers[impl], r + 1)))
            runs.setdefault(f"infer {impl}", []).append(timed(partial(collect_logits, exp.model, exp.builder, data.train, bs, exp.device)))
        runs.setdefault("infer dense reference", []).append(timed(partial(dense_pass, experiments["fused"], data.train, bs)))
        runs.setdefault("graph building", []).append(timed(partial(build_epoch, exp0.builder, data.train, bs, r + 1)))
    median = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
    print(f"{'':24s} {'utt/s (CPU)':>12s} {'vs per_relation':>16s} {'utt/s (wall)':>13s} {'vs per_relation':>16s}")
    for key in [k for k in median if k != "graph building"]:
        wall, cpu = median[key]
        ref_wall, ref_cpu = median["train per_relation" if key.startswith("train") else "infer per_relation"]
        print(f"{key:24s} {n / cpu:12.0f} {ref_cpu / cpu:15.2f}x {n / wall:13.0f} {ref_wall / wall:15.2f}x")
    build_wall, build_cpu = median["graph building"]
    for impl in IMPLS:
        wall, cpu = median[f"train {impl}"]
        print(f"graph building share of a training epoch ({impl}): {100 * build_cpu / cpu:.1f}% (CPU), {100 * build_wall / wall:.1f}% (wall)")


def _features(rng: np.random.Generator, n: int, dims: dict[str, int]) -> dict[str, np.ndarray]:
    counts = {"text": n // 2, "audio": n // 4, "visual": n - n // 2 - n // 4}
    return {m: rng.normal(size=(c, dims[m])).astype(np.float32) for m, c in counts.items()}


def one_size(pattern: str, n: int, batch_size: int, steps: int) -> dict:
    """Part 2 for one (pattern, n): per impl, ms per training step and inference batch, and peak MiB."""
    torch.set_num_threads(1)
    cfg = load_config(None, ["train.num_threads=1", "model.normalize=none"])
    schema = load_schema(SCHEMAS[pattern])
    dims = {"text": cfg.data.demo.text_dim, "audio": cfg.data.demo.audio_dim, "visual": cfg.data.demo.visual_dim}
    builder = UtteranceGraphBuilder(schema, dims)
    rng = np.random.default_rng(0)
    feats = [[_features(rng, n, dims) for _ in range(batch_size)] for _ in range(steps)]
    build = [timed(partial(builder.build_batch, f))[1] for f in feats]
    graphs = [builder.build_batch(f) for f in feats]
    labels = torch.zeros(batch_size, dtype=torch.long)
    result = {"edges": graphs[0].num_edges() / batch_size, "build_ms": 1000 * statistics.median(build)}
    for impl in (*IMPLS, "dense"):
        torch.manual_seed(0)
        model_cfg = load_config(None, ["model.normalize=none", f"model.gat_impl={'fused' if impl == 'dense' else impl}"]).model
        model = build_model(schema, dims, 7, model_cfg)
        if impl != "dense":
            step = partial(train_step, model, torch.optim.AdamW(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss(), labels)
            step(graphs[0])  # warm-up
            mib, times = peak_memory_mib(partial(cpu_times, step, graphs))
            result[f"train_mib {impl}"], result[f"train_ms {impl}"] = mib, 1000 * statistics.median(times)
        model.eval()
        forward = partial(dense_logits if impl == "dense" else infer, model)
        with torch.no_grad():
            forward(graphs[0])
            mib, times = peak_memory_mib(partial(cpu_times, forward, graphs))
        result[f"infer_mib {impl}"], result[f"infer_ms {impl}"] = mib, 1000 * statistics.median(times)
    return result


def scaling(sizes: list[int], batch_size: int, steps: int) -> None:
    """Part 2: every (pattern, n) in its own process; one table per pattern."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    print(f"\nscaling: batches of {batch_size} synthetic utterances, median of {steps} steps, one thread; CPU ms per batch, peak MiB above the pre-step RSS")
    for pattern in SCHEMAS:
        print(f"\n{pattern} edges (schema {SCHEMAS[pattern]!r})")
        header = "nodes  edges/utt  build | train ms: per_rel  fused  x     | infer ms: per_rel  fused  dense | train MiB: per_rel fused | infer MiB: per_rel fused dense"
        print(header)
        for n in sizes:
            cmd = [sys.executable, __file__, "--one", pattern, str(n), "--scale-batch", str(batch_size), "--steps", str(steps)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{n:5d}  failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            t_ref, t_fused = r["train_ms per_relation"], r["train_ms fused"]
            print(
                f"{n:5d} {r['edges']:10.0f} {r['build_ms']:6.1f} | {t_ref:16.1f} {t_fused:6.1f} {t_ref / t_fused:4.2f} "
                f"| {r['infer_ms per_relation']:16.1f} {r['infer_ms fused']:6.1f} {r['infer_ms dense']:6.1f} "
                f"| {r['train_mib per_relation']:17.0f} {r['train_mib fused']:5.0f} "
                f"| {r['infer_mib per_relation']:17.0f} {r['infer_mib fused']:5.0f} {r['infer_mib dense']:5.0f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="demo epochs timed per implementation (median printed)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512], help="nodes per utterance")
    parser.add_argument("--scale-batch", type=int, default=8, help="utterances per batch in the scaling part")
    parser.add_argument("--steps", type=int, default=3, help="batches timed per size and implementation (median printed)")
    parser.add_argument("--skip-demo", action="store_true", help="only the scaling part")
    parser.add_argument("--skip-scaling", action="store_true", help="only the demo part")
    parser.add_argument("--one", nargs=2, metavar=("PATTERN", "NODES"), help=argparse.SUPPRESS)  # a scaling child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one[0], int(args.one[1]), args.scale_batch, args.steps)))
        return
    torch.set_num_threads(1)
    if not args.skip_demo:
        demo(args.repeats)
    if not args.skip_scaling:
        scaling(args.sizes, args.scale_batch, args.steps)


if __name__ == "__main__":
    main()
