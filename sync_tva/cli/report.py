"""``python -m sync_tva.report RUN_OR_SUMMARY... [--reference FILE] [--out FILE]``: runs side by side.

Each argument is a run directory (``metrics.json``), a seeds folder (``summary.json``, written
by ``python -m sync_tva.run --seeds``), a cross-validation folder (``--folds``: its seeds column
reads ``2 x speaker:5``) or a ``summary.json``; each becomes one row of a markdown table of
dev-selected test figures in percent (mean ± std over seeds, or over fold runs), followed by
per-class test F1. ``--reference`` adds published figures from a YAML file, each with its source
(``benchmarks/references.yaml`` holds the Sync-TVA paper's MELD figure).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ConfigError, SyncTVAError
from ..io import atomic_open
from ..train.summary import HEADLINE, SUMMARY_JSON, SeedSummary, read_run, read_summary, summarize

_TITLES = {"accuracy": "accuracy", "weighted_f1": "weighted F1", "macro_f1": "macro F1"}


@dataclass(frozen=True)
class Reference:
    """A published figure set: ``figures`` in percent as printed (any of accuracy, weighted_f1, macro_f1), and where it is printed."""

    name: str
    dataset: str
    figures: dict[str, float]
    source: str


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_tva.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_OR_SUMMARY", help="run directories, seeds folders or summary.json files")
    parser.add_argument("--reference", type=Path, default=None, metavar="FILE", help="YAML of published figures, e.g. benchmarks/references.yaml")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="also write the table to this markdown file")
    return parser.parse_args(argv)


def load_row(path: Path) -> SeedSummary:
    """A run directory as a one-run summary, or a seeds summary (its folder or its ``summary.json``)."""
    if path.is_file() or (path / SUMMARY_JSON).is_file():
        return read_summary(path)
    return summarize([read_run(path)])


def read_references(path: Path) -> list[Reference]:
    """The ``references:`` list of a YAML file; every entry needs a name, a data set, a source and a figure."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"--reference {path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--reference {path}: not valid YAML ({exc})") from None
    entries = data.get("references") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a top-level 'references:' list")
    refs = []
    for i, entry in enumerate(entries):
        where = f"{path}: references[{i}]"
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "dataset", "source")):
            raise ConfigError(f"{where}: needs string fields name, dataset and source")
        unknown = sorted(set(entry) - {"name", "dataset", "source", *HEADLINE})
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; figures are {list(HEADLINE)} (percent)")
        figures = {k: entry[k] for k in HEADLINE if k in entry}
        if not figures or not all(isinstance(v, (int, float)) and 0 <= v <= 100 for v in figures.values()):
            raise ConfigError(f"{where}: give at least one of {list(HEADLINE)} as a percentage between 0 and 100")
        refs.append(Reference(entry["name"], entry["dataset"], {k: float(v) for k, v in figures.items()}, entry["source"]))
    return refs


def render(rows: dict[str, SeedSummary], references: list[Reference]) -> str:
    """The markdown tables: headline test figures per row (then references), and per-class test F1."""
    lines = [
        "| run | seeds | " + " | ".join(f"test {_TITLES[k]}" for k in HEADLINE) + " | dev weighted F1 | best epochs |",
        "| --- | --- | " + " | ".join("---" for _ in HEADLINE) + " | --- | --- |",
    ]
    for name, s in rows.items():
        test = " | ".join(s.test[k].percent() for k in HEADLINE)
        seeds = len(s.seeds) if s.protocol is None else f"{len(set(s.seeds))} x {s.protocol}"
        lines.append(f"| {name} | {seeds} | {test} | {s.dev['weighted_f1'].percent()} | {', '.join(map(str, s.best_epochs))} |")
    for ref in references:
        test = " | ".join(f"{ref.figures[k]:.2f}" if k in ref.figures else "–" for k in HEADLINE)
        lines.append(f"| {ref.name} ({ref.dataset}; {ref.source}) | – | {test} | – | – |")
    classes = list(dict.fromkeys(c for s in rows.values() for c in s.per_class_f1))
    lines += ["", "Per-class test F1 (percent):", "", "| run | " + " | ".join(classes) + " |", "| --- | " + " | ".join("---" for _ in classes) + " |"]
    for name, s in rows.items():
        lines.append(f"| {name} | " + " | ".join(s.per_class_f1[c].percent() if c in s.per_class_f1 else "–" for c in classes) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        rows = {str(path): load_row(path) for path in args.runs}
        references = read_references(args.reference) if args.reference is not None else []
        table = render(rows, references)
        if args.out is not None:
            with atomic_open(args.out) as fh:
                fh.write(table)
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table, end="")
    return 0
