"""The multi-seed protocol (``run --seeds``), its summary, and ``python -m sync_tva.report``."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from conftest import TINY

from sync_tva.cli import report, run
from sync_tva.errors import ConfigError
from sync_tva.train.summary import Spread, read_summary

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "benchmarks" / "references.yaml"


@pytest.fixture(scope="module")
def seeds_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seeds")
    assert run.main(["--seeds", "0,1", "--out", str(out), *TINY, "train.epochs=1", "train.num_threads=1"]) == 0
    return out


def test_seeds_write_one_run_each_and_a_summary_of_their_metrics(seeds_out):
    metrics = [json.loads((seeds_out / f"seed-{s}" / "metrics.json").read_text()) for s in (0, 1)]
    for s in (0, 1):
        assert (seeds_out / f"seed-{s}" / "checkpoints" / "best.pt").is_file()
        assert f"seed: {s}" in (seeds_out / f"seed-{s}" / "config.yaml").read_text()
    saved = json.loads((seeds_out / "summary.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["best_epochs"] == [m["best_epoch"] for m in metrics]
    for key in ("accuracy", "weighted_f1", "macro_f1"):
        values = [m["test"][key] for m in metrics]
        assert saved["test"][key]["mean"] == pytest.approx(statistics.fmean(values))
        assert saved["test"][key]["std"] == pytest.approx(statistics.stdev(values))
        assert saved["dev"][key]["mean"] == pytest.approx(statistics.fmean(m["dev"][key] for m in metrics))
    labels = list(metrics[0]["test"]["per_class_f1"])
    assert list(saved["per_class_f1"]) == labels and len(labels) == 7
    for label in labels:
        values = [m["test"]["per_class_f1"][label] for m in metrics]
        assert saved["per_class_f1"][label] == {"mean": pytest.approx(statistics.fmean(values)), "std": pytest.approx(statistics.stdev(values)), "n": 2}
    md = (seeds_out / "summary.md").read_text()
    wf1 = read_summary(seeds_out).test["weighted_f1"]
    assert f"{100 * wf1.mean:.2f} ± {100 * wf1.std:.2f}" in md and all(f"| {label} |" in md for label in labels)


def test_report_puts_runs_summaries_and_references_side_by_side(seeds_out, capsys, tmp_path):
    table_file = tmp_path / "table.md"
    runs = [str(seeds_out / "seed-0"), str(seeds_out / "seed-1"), str(seeds_out)]
    assert report.main([*runs, "--reference", str(REFERENCES), "--out", str(table_file)]) == 0
    printed = capsys.readouterr().out
    assert printed == table_file.read_text()
    rows: dict[str, str] = {}
    for line in printed.splitlines():
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0].lstrip("| "), line)  # the headline table comes first
    m0 = json.loads((seeds_out / "seed-0" / "metrics.json").read_text())
    assert f"| 1 | {100 * m0['test']['accuracy']:.2f} |" in rows[runs[0]]
    assert runs[1] in rows and " ± " in rows[runs[2]] and "| 2 |" in rows[runs[2]]
    paper = next(line for line in printed.splitlines() if "arXiv 2507.21395" in line)
    assert "68.30" in paper and "67.40" in paper


def test_bad_inputs_are_clean_errors(tmp_path, capsys):
    assert run.main(["--seeds", "0,x", "--out", str(tmp_path / "r"), *TINY]) == 2
    assert "error: --seeds '0,x'" in capsys.readouterr().err
    assert run.main(["--seeds", "1,1", "--out", str(tmp_path / "r"), *TINY]) == 2
    assert "a seed is repeated" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert report.main([str(tmp_path / "nothing")]) == 2
    assert "metrics.json: not found" in capsys.readouterr().err
    bad = tmp_path / "refs.yaml"
    bad.write_text("references:\n  - {name: x, dataset: MELD, source: somewhere, f1: 60}\n")
    with pytest.raises(ConfigError, match=r"references\[0\]: unknown keys \['f1'\]"):
        report.read_references(bad)


def test_spread_is_mean_and_sample_std():
    spread = Spread.of([0.5, 0.7, 0.9])
    assert spread.mean == pytest.approx(0.7) and spread.std == pytest.approx(0.2) and spread.n == 3
    assert Spread.of([0.25]).percent() == "25.00" and spread.percent() == "70.00 ± 20.00"
