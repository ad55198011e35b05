"""``python -m sync_tva.extract [--config FILE] [--shard i/n] [key=value ...] [--merge DIR ...]``: fill the feature store.

Reads the raw data set that ``data.name`` names (csv, meld, iemocap), runs the text, audio and
visual extractors for ``model.modalities`` on every utterance the store lacks, and prints one
JSON line ``{"extracted": N, "cached": N, "failed": N}``. Failures are listed in
``STORE/failures.jsonl``. Run it again after a crash: finished utterances are not recomputed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import load_config
from .data import read_raw
from .errors import SyncTVAError
from .features.pipeline import build_extractors, extract, parse_shard, wanted_modalities
from .features.store import FAILURES, FeatureStore, merge_stores


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_tva.extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=None, help="YAML config, e.g. configs/meld.yaml")
    parser.add_argument("--shard", default=None, metavar="i/n", help="extract only shard i of n (0-based)")
    parser.add_argument(
        "--merge", nargs="+", type=Path, default=None, metavar="DIR", help="copy these shard stores into features.store and stop (give key=value overrides before --merge)"
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. data.root=DIR")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        overrides = list(args.overrides) + ([f"features.shard={args.shard}"] if args.shard else [])
        cfg = load_config(args.config, overrides)
        store = FeatureStore(cfg.features.store)
        if args.merge:
            copied = merge_stores(args.merge, store.root)
            print(json.dumps({"merged": copied, "store": str(store.root)}))
            return 0
        shard = parse_shard(cfg.features.shard)
        raw = read_raw(cfg)
        for note in raw.notes:
            print(f"note: {note}", file=sys.stderr)
        extractors = build_extractors(cfg, wanted_modalities(cfg, raw))  # loads the models: fails before any work
        print(f"extractors: {extractors}; store {store.root}", file=sys.stderr)
        report = extract(raw, extractors, store, shard=shard, chunk=cfg.features.chunk, progress=cfg.features.progress)
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if report.failed:
        print(f"{report.failed} utterances failed; see {store.root / FAILURES}", file=sys.stderr)
    print(json.dumps(report.to_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
