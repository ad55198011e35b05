"""``python -m sync_tva.run [--config FILE] [--out DIR] [key=value ...]``: train and evaluate.

With no arguments it trains on the built-in synthetic demo. The run directory receives the
resolved ``config.yaml``, ``metrics.json`` (dev and test), ``history.json``, ``checkpoints/``,
``tensorboard/``, ``confusion_matrix.png`` and ``curves.png``.

``--seeds 0,1,2`` trains one run per seed into ``OUT/seed-<s>`` and writes ``OUT/summary.json``
and ``OUT/summary.md`` (dev-selected test figures as mean ± std). Under ``torchrun`` the runs
train with DistributedDataParallel and rank 0 alone evaluates and writes.

``--folds GROUP:K`` (``speaker:5``, ``dialogue:10``, ``session:5``, ``speaker:loo``, or explicit
held-out groups per fold, ``speaker:03+08,09+10``) cross-validates over whole groups of the source's
train and dev utterances (``sync_tva.data.folds``): one run per fold into ``OUT/fold-<i>`` (with
``--seeds``: ``OUT/fold-<i>/seed-<s>``), then one summary over all of them. The source's own test
split is not used. Each run directory holds a ``fold.json`` beside its ``config.yaml`` saying which
fold it trained on. A fold whose ``metrics.json`` exists is skipped, so rerunning the same command
resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt

from ..config import Config, load_config
from ..data.folds import FOLD_JSON, FoldSpec, cut_folds, parse_folds, warn_label_gaps
from ..device import resolve_device
from ..distributed import DistContext, distributed
from ..errors import ConfigError, SyncTVAError
from ..features import load_dataset
from ..io import save_figure, write_json
from ..records import DatasetSplits
from ..train.experiment import Experiment, build_experiment
from ..train.logging import RunLogger, plot_confusion_matrix, plot_curves
from ..train.loop import evaluate, fit
from ..train.summary import write_fold_summary, write_summary
from ..viz import attention_figure


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_tva.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=None, help="YAML config (default: the built-in demo)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<config>-<time>)")
    parser.add_argument("--seeds", default=None, metavar="S,S,...", help="one run per seed in OUT/seed-S, then OUT/summary.{json,md}")
    parser.add_argument(
        "--folds", default=None, metavar="GROUP:K",
        help="cross-validate over whole groups (speaker:5, session:loo, or held-out groups per fold: speaker:03+08,09+10): "
        "OUT/fold-<i>, then OUT/summary.{json,md}",
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.epochs=3")
    return parser.parse_intermixed_args(argv)  # overrides may stand before and after the options


def _default_out(config: Path | None) -> Path:
    stem = config.stem if config is not None else "demo"
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _check_run_dir(out: Path) -> None:
    """Refuse an ``--out`` that cannot become a run directory, before any work and without creating it."""
    existing = next(p for p in (out, *out.parents, Path.cwd()) if p.exists())  # relative parents end at "."
    if not existing.is_dir():
        why = f"{existing} is a file, not a directory"
    elif not os.access(existing, os.W_OK | os.X_OK):
        why = f"{existing} is not writable"
    else:
        return
    raise SyncTVAError(f"--out {out}: cannot create the run directory ({why}); choose another --out")


def _make_run_dir(out: Path) -> None:
    """Create the run directory; a file in the way is a user error naming it, not a traceback."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a directory" if blocker is not None else (exc.strerror or str(exc))
        raise SyncTVAError(f"--out {out}: cannot create the run directory ({why}); choose another --out") from None


def _save_figure(fig: plt.Figure, path: Path) -> None:
    save_figure(fig, path)
    plt.close(fig)


def _first_dev_attention(exp: Experiment) -> plt.Figure | None:
    """The attention drawing of the first dev utterance, logged after every epoch."""
    return attention_figure(exp, exp.data.dev[0]) if exp.data.dev else None


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` to ``[0, 1, 2]``: distinct integers."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected distinct integers separated by commas, e.g. --seeds 0,1,2") from None
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: a seed is repeated")
    return seeds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        out = args.out or _default_out(args.config)
        _check_run_dir(out)
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        folds = parse_folds(args.folds) if args.folds is not None else None
        with distributed(resolve_device(cfg.train.device, "train.device")) as ctx:
            if folds is not None:
                train_folds(cfg, folds, seeds, out, ctx, lambda s: load_config(args.config, [*args.overrides, f"seed={s}"]))
                return 0
            if seeds is None:
                train_run(cfg, out, ctx)
                return 0
            for seed in seeds:
                train_run(load_config(args.config, [*args.overrides, f"seed={seed}"]), out / f"seed-{seed}", ctx)
            if ctx.is_main:
                summary = write_summary(out, [out / f"seed-{seed}" for seed in seeds])
                figures = ", ".join(f"{k} {v.percent()}" for k, v in summary.test.items())
                print(f"{len(seeds)} seeds; test {figures}; summary in {out / 'summary.md'}")
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def train_folds(
    cfg: Config, spec: FoldSpec, seeds: list[int] | None, out: Path, ctx: DistContext, seed_config: Callable[[int], Config]
) -> None:
    """Cross-validate over ``spec``: the data is read once, folds are cut by ``cfg.seed``, each fold trains in turn.

    With ``seeds`` every fold trains once per seed (``seed_config(s)`` is the config with
    ``seed=s``); the folds and their dev carves stay those of ``cfg.seed``, so seeds vary only
    initialisation, dropout and batch order. A run whose ``metrics.json`` exists is skipped; an
    unfinished one resumes through ``train.resume``.
    """
    data = load_dataset(cfg, ("train", "dev"))
    if ctx.is_main:
        print(f"note: --folds {spec}: the source's own test split is left untouched and unused; "
              "each fold tests on its held-out groups of the train and dev utterances", file=sys.stderr)
    folds = cut_folds(data, spec, cfg.seed, cfg.data.dev_fraction)
    fold_dirs = []
    for record, split in folds:
        fold = record.fold
        fold_dir = out / f"fold-{fold.index}"
        fold_dirs.append(fold_dir)
        runs = [(seed_config(s), fold_dir / f"seed-{s}") for s in seeds] if seeds else [(cfg, fold_dir)]
        if ctx.is_main:
            warn_label_gaps(data, fold, split.test)
            for run_dir in dict.fromkeys([fold_dir, *(d for _, d in runs)]):  # beside each config.yaml: the run's splits
                _make_run_dir(run_dir)
                write_json(run_dir / FOLD_JSON, record.to_dict())
        for run_cfg, run_dir in runs:
            if (run_dir / "metrics.json").is_file():
                if ctx.is_main:
                    print(f"fold {fold.index}: {run_dir} is finished (metrics.json); skipped")
                continue
            if ctx.is_main:
                print(f"fold {fold.index} of {len(folds)}: test {spec.group} {', '.join(fold.groups)}; run directory {run_dir}")
            train_run(run_cfg, run_dir, ctx, data=split)
    if ctx.is_main:
        summary = write_fold_summary(out, fold_dirs, seeds)
        figures = ", ".join(f"{k} {v.percent()}" for k, v in summary.test.items())
        print(f"{len(folds)} folds ({spec}) x {len(seeds or [cfg.seed])} seed(s); test {figures}; summary in {out / 'summary.md'}")


def train_run(cfg: Config, out: Path, ctx: DistContext, data: DatasetSplits | None = None) -> None:
    """Train and evaluate one run into ``out`` (on ``data`` when given, else the config's data);
    on a distributed run rank 0 alone evaluates and writes."""
    exp = build_experiment(cfg, data)
    exp.device = ctx.device  # cuda:LOCAL_RANK under torchrun; distributed() made it the current GPU, so the model is there
    logger = None
    if ctx.is_main:
        _make_run_dir(out)  # only now: a data error leaves no empty run directory behind
        logger = RunLogger(out, epoch_figures={"dev/attention": _first_dev_attention})
        logger.info(
            f"data {exp.data.name}: {len(exp.data.train)} train / {len(exp.data.dev)} dev / {len(exp.data.test)} test "
            f"utterances; modalities {cfg.model.modalities}; device {exp.device}; ranks {ctx.world_size}; run directory {out}"
        )
    try:
        state = fit(exp, out, logger, ctx)
    finally:
        if logger is not None:
            logger.close()
    if not ctx.is_main:
        return
    dev, test = evaluate(exp, exp.data.dev), evaluate(exp, exp.data.test)
    write_json(out / "metrics.json", {"dev": dev.to_dict(), "test": test.to_dict(), "best_epoch": state.best_epoch})
    write_json(out / "history.json", state.history)
    _save_figure(plot_confusion_matrix(test.confusion_matrix, exp.data.labels, title="test"), out / "confusion_matrix.png")
    _save_figure(plot_curves(state.history), out / "curves.png")
    summary = {k: round(getattr(test, k), 4) for k in ("accuracy", "weighted_f1", "macro_f1")}
    print(f"best epoch {state.best_epoch}; test {json.dumps(summary)}; metrics in {out / 'metrics.json'}")
