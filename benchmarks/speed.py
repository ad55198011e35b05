"""Speed of the GAT implementations on the demo and as graphs grow (printed figures, never asserted).

    python benchmarks/speed.py [--repeats 5] [--sizes 16 32 64 128 256 512] [--scale-batch 8] [--skip-scaling]
        [--baseline REV]

Part 1, the demo config with ``train.num_threads=1``: utterances/s of a training epoch
(``train_one_epoch``, graph building included) and of inference (``collect_logits`` over the
training split) for ``model.gat_impl=per_relation`` and ``fused``, plus the dense reference
(``sync_tva.models.dense_reference``) for inference, and fused training with graphs built by one
prefetching worker (``train.prefetch_workers=1``: a second process, so compare its wall-clock
figure); the share of a training epoch spent building graphs; where the time of one fused
training step goes (forward per block, backward, optimiser); and the GAT stack alone, forward
and backward, for both implementations. The implementations take turns inside
every repeat and the median over repeats is printed, as wall-clock time and as this process's CPU
time (the machine may be shared). ``--baseline REV`` also times the training epoch of the package
as it was at git revision REV (checked out in a temporary worktree, run in a subprocess right
after), so "before" and "after" come from one run on one machine.

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
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
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


def demo(repeats: int, baseline: str | None) -> None:
    """Part 1: the demo config, one thread, per-relation vs fused (vs dense for inference, vs a git revision)."""
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

    fused = experiments["fused"]
    prefetching = replace(fused, cfg=replace(fused.cfg, train=replace(fused.cfg.train, prefetch_workers=1)))
    trainers = {f"train {impl}": (experiments[impl], optimizers[impl]) for impl in IMPLS}
    trainers["train fused, 1 prefetch worker"] = (prefetching, optimizers["fused"])
    runs: dict[str, list[tuple[float, float]]] = {}
    for exp, optimizer in trainers.values():  # warm-up: first-call allocations and format conversions
        train_one_epoch(exp, loss_fn, optimizer, 0)
    for r in range(repeats):
        for key, (exp, optimizer) in trainers.items():
            runs.setdefault(key, []).append(timed(partial(train_one_epoch, exp, loss_fn, optimizer, r + 1)))
        for impl in IMPLS:
            exp = experiments[impl]
            runs.setdefault(f"infer {impl}", []).append(timed(partial(collect_logits, exp.model, exp.builder, data.train, bs, exp.device)))
        runs.setdefault("infer dense reference", []).append(timed(partial(dense_pass, fused, data.train, bs)))
        runs.setdefault("graph building", []).append(timed(partial(build_epoch, exp0.builder, data.train, bs, r + 1)))
    median = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
    print(f"{'':32s} {'utt/s (CPU)':>12s} {'vs per_relation':>16s} {'utt/s (wall)':>13s} {'vs per_relation':>16s}")
    for key in [k for k in median if k != "graph building"]:
        wall, cpu = median[key]
        ref_wall, ref_cpu = median["train per_relation" if key.startswith("train") else "infer per_relation"]
        print(f"{key:32s} {n / cpu:12.0f} {ref_cpu / cpu:15.2f}x {n / wall:13.0f} {ref_wall / wall:15.2f}x")
    print("(with a prefetch worker the graphs are built in a second process: its CPU column leaves that work out, read the wall column)")
    build_wall, build_cpu = median["graph building"]
    for impl in IMPLS:
        wall, cpu = median[f"train {impl}"]
        print(f"graph building share of a training epoch ({impl}): {100 * build_cpu / cpu:.1f}% (CPU), {100 * build_wall / wall:.1f}% (wall)")
    step_breakdown(fused, loss_fn, optimizers["fused"])
    gat = {impl: gat_forward_backward_ms(experiments[impl]) for impl in IMPLS}
    print("GAT stack alone, forward + backward, CPU ms per batch: " + ", ".join(f"{impl} {ms:.1f}" for impl, ms in gat.items()))
    if baseline:
        wall, cpu = median["train fused"]
        base_wall, base_cpu = revision_epoch(baseline, repeats)
        print(
            f"training at revision {baseline}: {n / base_cpu:.0f} utt/s (CPU), {n / base_wall:.0f} utt/s (wall); "
            f"now (fused) {base_cpu / cpu:.2f}x (CPU), {base_wall / wall:.2f}x (wall); "
            f"with a prefetch worker {base_wall / median['train fused, 1 prefetch worker'][0]:.2f}x (wall)"
        )


def step_breakdown(exp, loss_fn, optimizer, batches: int = 20) -> None:
    """CPU ms per training batch in each forward block, backward and the optimiser, for ``exp``'s model."""
    model = exp.model
    blocks = {"normalise + MSDE": [*model.enhance.values()], "GAT": [model.gat], "pooling": [*model.pool.values()], "CAF": [model.caf], "classifier": [model.classifier]}
    spent = dict.fromkeys([*blocks, "forward, other", "loss + backward", "clip + optimiser"], 0.0)
    started: dict[str, float] = {}
    handles = []
    for name, modules in blocks.items():
        for module in modules:
            if module is None:
                continue
            handles.append(module.register_forward_pre_hook(lambda *_, name=name: started.__setitem__(name, time.process_time())))
            handles.append(module.register_forward_hook(lambda *_, name=name: spent.__setitem__(name, spent[name] + time.process_time() - started[name])))
    graphs = list(iterate_batches(exp.data.train, exp.builder, exp.cfg.train.batch_size, shuffle_seed=0))[:batches]
    model.train()
    for batch in graphs:
        t0 = time.process_time()
        logits = model(batch.graph).logits
        t1 = time.process_time()
        loss_fn(logits, batch.labels).backward()
        t2 = time.process_time()
        torch.nn.utils.clip_grad_norm_(model.parameters(), exp.cfg.train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        spent["forward, other"] += t1 - t0
        spent["loss + backward"] += t2 - t1
        spent["clip + optimiser"] += time.process_time() - t2
    for handle in handles:
        handle.remove()
    spent["forward, other"] -= sum(spent[name] for name in blocks)
    total = sum(spent.values())
    parts = ", ".join(f"{name} {1000 * t / len(graphs):.1f} ({100 * t / total:.0f}%)" for name, t in spent.items())
    print(f"one fused training step, CPU ms per batch of {exp.cfg.train.batch_size} (graphs prebuilt): {parts}; total {1000 * total / len(graphs):.1f}")


def gat_forward_backward_ms(exp, batches: int = 20) -> float:
    """Median CPU ms of the model's GAT stack, forward and backward, on prebuilt demo batches (random inputs)."""
    gat = exp.model.gat.train()
    graphs = [b.graph for b in iterate_batches(exp.data.train, exp.builder, exp.cfg.train.batch_size, shuffle_seed=0)][:batches]
    inputs = [{t: torch.randn(g.num_nodes(t), exp.cfg.model.hidden, requires_grad=True) for t in g.ntypes} for g in graphs]

    def one(g: dgl.DGLGraph, h: dict[str, torch.Tensor]) -> None:
        out, _ = gat(g, h)
        sum(x.sum() for x in out.values()).backward()

    for g, h in zip(graphs, inputs):  # warm-up
        one(g, h)
    return 1000 * statistics.median(timed(partial(one, g, h))[1] for g, h in zip(graphs, inputs))


BASELINE_EPOCHS = """
import statistics, sys, time, torch
from sync_tva.config import load_config
from sync_tva.train.experiment import build_experiment
from sync_tva.train.losses import make_loss
from sync_tva.train.loop import train_one_epoch
cfg = load_config(None, ["train.num_threads=1"])
exp = build_experiment(cfg)
torch.set_num_threads(1)
loss_fn = make_loss(cfg.train.loss, [u.label for u in exp.data.train], len(exp.data.labels))
optimizer = torch.optim.AdamW(exp.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
times = []
for epoch in range(int(sys.argv[1]) + 1):  # epoch 0 warms up
    wall, cpu = time.perf_counter(), time.process_time()
    train_one_epoch(exp, loss_fn, optimizer, epoch)
    times.append((time.perf_counter() - wall, time.process_time() - cpu))
print(statistics.median(w for w, _ in times[1:]), statistics.median(c for _, c in times[1:]))
"""


def revision_epoch(revision: str, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of a demo training epoch with the package at git ``revision``.

    The revision is checked out in a temporary worktree (removed afterwards) and run with this
    interpreter, so only the package's code differs. It must have ``train_one_epoch(exp,
    loss_fn, optimizer, epoch)`` and ``build_experiment(cfg)``, as every revision since the first
    training loop does.
    """
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), revision], check=True, capture_output=True)
        try:
            env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
            proc = subprocess.run([sys.executable, "-c", BASELINE_EPOCHS, str(repeats)], cwd=tree, env=env, capture_output=True, text=True, check=True)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=True, capture_output=True)
    wall, cpu = proc.stdout.split()
    return float(wall), float(cpu)


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
    parser.add_argument("--baseline", metavar="REV", help="also time a demo training epoch at this git revision (e.g. the commit an issue was filed at)")
    parser.add_argument("--one", nargs=2, metavar=("PATTERN", "NODES"), help=argparse.SUPPRESS)  # a scaling child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one[0], int(args.one[1]), args.scale_batch, args.steps)))
        return
    torch.set_num_threads(1)
    if not args.skip_demo:
        demo(args.repeats, args.baseline)
    if not args.skip_scaling:
        scaling(args.sizes, args.scale_batch, args.steps)


if __name__ == "__main__":
    main()
