"""``python -m sync_tva.run [--config FILE] [--out DIR] [key=value ...]``: train and evaluate.

With no arguments it trains on the built-in synthetic demo. The run directory receives the
resolved ``config.yaml``, ``metrics.json`` (dev and test), ``history.json``, ``checkpoints/``,
``tensorboard/``, ``confusion_matrix.png`` and ``curves.png``.

``--seeds 0,1,2`` trains one run per seed into ``OUT/seed-<s>`` and writes ``OUT/summary.json``
and ``OUT/summary.md`` (dev-selected test figures as mean ± std). Under ``torchrun`` the runs
train with DistributedDataParallel and rank 0 alone evaluates and writes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt

from .config import Config, load_config
from .device import resolve_device
from .errors import ConfigError, SyncTVAError
from .io import save_figure, write_json
from .train.distributed import DistContext, distributed
from .train.experiment import Experiment, build_experiment
from .train.logging import RunLogger, plot_confusion_matrix, plot_curves
from .train.loop import evaluate, fit
from .train.summary import write_summary
from .viz import attention_figure


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_tva.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=None, help="YAML config (default: the built-in demo)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<config>-<time>)")
    parser.add_argument("--seeds", default=None, metavar="S,S,...", help="one run per seed in OUT/seed-S, then OUT/summary.{json,md}")
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
        with distributed(resolve_device(cfg.train.device, "train.device")) as ctx:
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


def train_run(cfg: Config, out: Path, ctx: DistContext) -> None:
    """Train and evaluate one run into ``out``; on a distributed run rank 0 alone evaluates and writes."""
    exp = build_experiment(cfg)
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


if __name__ == "__main__":
    sys.exit(main())
