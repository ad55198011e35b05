"""The multi-seed protocol's numbers: one run per seed, selected on dev, summarised as mean ± std.

Every figure comes from a run's ``metrics.json``, whose test metrics are those of the epoch
with the best dev weighted F1 (the test split never chooses anything). The spread is the
sample standard deviation over seeds (``ddof=1``; 0 for a single run).

A cross-validation (``run --folds GROUP:K``, optionally with ``--seeds``) is summarised the same
way over all its runs (folds x seeds), and lists each fold's test groups, split sizes and mean
test figures over its seeds (:func:`write_fold_summary`); each fold directory holds a
``fold.json`` (:data:`FOLD_JSON`) saying which groups it tests on.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import yaml

from ..data.folds import FOLD_JSON
from ..errors import DataError
from ..io import atomic_open, write_json

__all__ = [
    "Spread",
    "RunResult",
    "FoldResult",
    "SeedSummary",
    "read_run",
    "summarize",
    "write_summary",
    "write_fold_summary",
    "read_summary",
    "summary_markdown",
]

HEADLINE = ("accuracy", "weighted_f1", "macro_f1")  # the figures every table reports
SUMMARY_JSON, SUMMARY_MD = "summary.json", "summary.md"


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation of one figure over ``n`` runs."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Spread":
        values = [float(v) for v in values]
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))

    def percent(self) -> str:
        """``"67.40 ± 0.52"`` (a single run: ``"67.40"``)."""
        return f"{100 * self.mean:.2f}" + (f" ± {100 * self.std:.2f}" if self.n > 1 else "")


@dataclass(frozen=True)
class RunResult:
    """What one finished run directory reports: its seed, best epoch, dev and test metrics (``Metrics.to_dict``)."""

    run_dir: str
    seed: int
    best_epoch: int
    dev: dict
    test: dict


@dataclass(frozen=True)
class FoldResult:
    """One fold of a cross-validation: the groups it tests on, its split sizes, its runs (one per seed) and their mean test figures."""

    index: int
    groups: list[str]
    sizes: dict[str, int]  # utterances in train, dev and test
    runs: list[str]
    test: dict[str, Spread]  # headline test figures over the fold's seeds


@dataclass(frozen=True)
class SeedSummary:
    """Dev-selected figures over seeds: headline test and dev figures, per-class test F1, the runs themselves.

    A cross-validation summary also names its protocol (``"speaker:5"``) and lists its folds;
    ``seeds``, ``best_epochs`` and ``runs`` then hold one entry per run (folds x seeds).
    """

    seeds: list[int]
    best_epochs: list[int]
    test: dict[str, Spread]
    dev: dict[str, Spread]
    per_class_f1: dict[str, Spread]
    runs: list[str]
    protocol: str | None = None  # "GROUP:K" of a cross-validation; None for seeds alone
    folds: list[FoldResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SeedSummary":
        spreads = {k: {name: Spread(**v) for name, v in data[k].items()} for k in ("test", "dev", "per_class_f1")}
        folds = [
            FoldResult(f["index"], list(f["groups"]), dict(f["sizes"]), list(f["runs"]), {k: Spread(**v) for k, v in f["test"].items()})
            for f in data.get("folds", [])
        ]
        return cls(
            seeds=list(data["seeds"]), best_epochs=list(data["best_epochs"]), runs=list(data["runs"]),
            protocol=data.get("protocol"), folds=folds, **spreads,
        )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found; is {path.parent} a finished run directory?") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def read_run(run_dir: str | Path) -> RunResult:
    """The figures of a finished run directory (``metrics.json`` and the seed in ``config.yaml``)."""
    run_dir = Path(run_dir)
    metrics = _read_json(run_dir / "metrics.json")
    missing = [k for k in ("dev", "test", "best_epoch") if k not in metrics]
    if missing:
        raise DataError(f"{run_dir / 'metrics.json'}: lacks {missing}; was it written by python -m sync_tva.run?")
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        raise DataError(f"{config_file}: not found; is {run_dir} a finished run directory?")
    seed = (yaml.safe_load(config_file.read_text()) or {}).get("seed")
    if not isinstance(seed, int):
        raise DataError(f"{config_file}: has no integer 'seed'")
    return RunResult(str(run_dir), seed, int(metrics["best_epoch"]), metrics["dev"], metrics["test"])


def summarize(runs: Sequence[RunResult]) -> SeedSummary:
    """Mean ± std over ``runs`` of the headline dev and test figures and of each class's test F1."""
    if not runs:
        raise DataError("no runs to summarise")
    classes = list(runs[0].test["per_class_f1"])
    for run in runs[1:]:
        if list(run.test["per_class_f1"]) != classes:
            raise DataError(f"{run.run_dir}: labels {list(run.test['per_class_f1'])} differ from {runs[0].run_dir}'s {classes}")
    return SeedSummary(
        seeds=[r.seed for r in runs],
        best_epochs=[r.best_epoch for r in runs],
        test={k: Spread.of([r.test[k] for r in runs]) for k in HEADLINE},
        dev={k: Spread.of([r.dev[k] for r in runs]) for k in HEADLINE},
        per_class_f1={c: Spread.of([r.test["per_class_f1"][c] for r in runs]) for c in classes},
        runs=[r.run_dir for r in runs],
    )


def summary_markdown(summary: SeedSummary) -> str:
    """The summary as markdown: headline figures (percent, mean ± std), per-class test F1, seeds and best epochs."""
    if summary.protocol is None:
        lines = [
            f"# {len(summary.seeds)} seeds: {', '.join(map(str, summary.seeds))}",
            "",
            "Test figures of the epoch with the best dev weighted F1; mean ± sample std over seeds, in percent.",
            "",
        ]
    else:
        seeds = list(dict.fromkeys(summary.seeds))
        lines = [
            f"# {len(summary.folds)} folds ({summary.protocol}) x {len(seeds)} seed(s): {', '.join(map(str, seeds))}",
            "",
            "Test figures of the epoch with the best dev weighted F1; mean ± sample std over all fold runs, in percent.",
            "Each fold tests on its held-out groups; the source's own test split is not used.",
            "",
        ]
    lines += [
        "| split | accuracy | weighted F1 | macro F1 |",
        "| --- | --- | --- | --- |",
    ]
    for split in ("test", "dev"):
        spreads = getattr(summary, split)
        lines.append(f"| {split} | " + " | ".join(spreads[k].percent() for k in HEADLINE) + " |")
    lines += ["", "| class | test F1 |", "| --- | --- |"]
    lines += [f"| {name} | {spread.percent()} |" for name, spread in summary.per_class_f1.items()]
    if summary.folds:
        lines += ["", "| fold | test groups | train / dev / test | " + " | ".join(f"test {k} (mean over seeds)" for k in HEADLINE) + " |"]
        lines.append("| --- | --- | --- | " + " | ".join("---" for _ in HEADLINE) + " |")
        for f in summary.folds:
            sizes = " / ".join(str(f.sizes.get(s, "?")) for s in ("train", "dev", "test"))
            lines.append(f"| {f.index} | {', '.join(f.groups)} | {sizes} | " + " | ".join(f.test[k].percent() for k in HEADLINE) + " |")
    lines += ["", "| seed | best epoch | run |", "| --- | --- | --- |"]
    lines += [f"| {s} | {e} | {r} |" for s, e, r in zip(summary.seeds, summary.best_epochs, summary.runs)]
    return "\n".join(lines) + "\n"


def write_summary(out: str | Path, run_dirs: Sequence[str | Path]) -> SeedSummary:
    """Summarise ``run_dirs`` into ``OUT/summary.json`` and ``OUT/summary.md``."""
    out = Path(out)
    summary = summarize([read_run(d) for d in run_dirs])
    write_json(out / SUMMARY_JSON, summary.to_dict())
    with atomic_open(out / SUMMARY_MD) as fh:
        fh.write(summary_markdown(summary))
    return summary


def write_fold_summary(out: str | Path, fold_dirs: Sequence[str | Path], seeds: Sequence[int] | None = None) -> SeedSummary:
    """Summarise a cross-validation into ``OUT/summary.json`` and ``OUT/summary.md``.

    Each of ``fold_dirs`` holds a ``fold.json`` and is a run directory, or (with ``seeds``) holds
    one run directory ``seed-<s>`` per seed. The headline figures are over every run.
    """
    out = Path(out)
    folds, runs, protocols = [], [], set()
    for fold_dir in map(Path, fold_dirs):
        info = _read_json(fold_dir / FOLD_JSON)
        try:
            protocols.add(info["protocol"])
            fold_runs = [read_run(d) for d in ([fold_dir / f"seed-{s}" for s in seeds] if seeds else [fold_dir])]
            test = {k: Spread.of([r.test[k] for r in fold_runs]) for k in HEADLINE}
            folds.append(FoldResult(int(info["index"]), list(info["groups"]), dict(info["sizes"]), [r.run_dir for r in fold_runs], test))
        except (KeyError, TypeError) as exc:
            raise DataError(f"{fold_dir / FOLD_JSON}: not a sync_tva fold description ({exc})") from None
        runs += fold_runs
    if len(protocols) != 1:
        raise DataError(f"{out}: the fold directories come from different --folds protocols {sorted(protocols)}")
    summary = replace(summarize(runs), protocol=protocols.pop(), folds=folds)
    write_json(out / SUMMARY_JSON, summary.to_dict())
    with atomic_open(out / SUMMARY_MD) as fh:
        fh.write(summary_markdown(summary))
    return summary


def read_summary(path: str | Path) -> SeedSummary:
    """A ``summary.json`` written by :func:`write_summary` (or the folder holding it)."""
    path = Path(path)
    path = path / SUMMARY_JSON if path.is_dir() else path
    data = _read_json(path)
    try:
        return SeedSummary.from_dict(data)
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a sync_tva seed summary ({exc})") from None
