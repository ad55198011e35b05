"""``python -m sync_tva.run [--config FILE] [--out DIR] [key=value ...]``: train and evaluate.

With no arguments it trains on the built-in synthetic demo. The run directory receives the
resolved ``config.yaml``, ``metrics.json`` (dev and test), ``history.json``, ``checkpoints/``,
``tensorboard/``, ``confusion_matrix.png`` and ``curves.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt

from .config import load_config
from .errors import SyncTVAError
from .io import save_figure, write_json
from .train.experiment import Experiment, build_experiment
from .train.logging import RunLogger, plot_confusion_matrix, plot_curves
from .train.loop import evaluate, fit
from .viz import attention_figure


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_tva.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=None, help="YAML config (default: the built-in demo)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<config>-<time>)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.epochs=3")
    return parser.parse_args(argv)


def _default_out(config: Path | None) -> Path:
    stem = config.stem if config is not None else "demo"
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        out = args.out or _default_out(args.config)
        _make_run_dir(out)
        exp = build_experiment(cfg)
        logger = RunLogger(out, epoch_figures={"dev/attention": _first_dev_attention})
        logger.info(
            f"data {exp.data.name}: {len(exp.data.train)} train / {len(exp.data.dev)} dev / {len(exp.data.test)} test "
            f"utterances; modalities {cfg.model.modalities}; device {exp.device}; run directory {out}"
        )
        try:
            state = fit(exp, out, logger)
        finally:
            logger.close()
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dev, test = evaluate(exp, exp.data.dev), evaluate(exp, exp.data.test)
    write_json(out / "metrics.json", {"dev": dev.to_dict(), "test": test.to_dict(), "best_epoch": state.best_epoch})
    write_json(out / "history.json", state.history)
    _save_figure(plot_confusion_matrix(test.confusion_matrix, exp.data.labels, title="test"), out / "confusion_matrix.png")
    _save_figure(plot_curves(state.history), out / "curves.png")
    summary = {k: round(getattr(test, k), 4) for k in ("accuracy", "weighted_f1", "macro_f1")}
    print(f"best epoch {state.best_epoch}; test {json.dumps(summary)}; metrics in {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
