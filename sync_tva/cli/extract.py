"""``python -m sync_tva.extract [--config FILE] [--shard i/n] [key=value ...] [--merge DIR ...]``: fill the feature store.

Reads the raw data set that ``data.name`` names (csv, meld, iemocap), runs the text, audio and
visual extractors for ``model.modalities`` on every utterance the store lacks, and prints one
JSON line ``{"extracted": N, "cached": N, "failed": N}``. Failures are listed in
``STORE/failures.jsonl``. Run it again after a crash: finished utterances are not recomputed.

``torchrun --nproc_per_node N -m sync_tva.extract ...`` shards the work by rank instead of
``--shard`` (each rank on ``cuda:LOCAL_RANK`` when extracting on GPUs), all ranks writing into the
one ``features.store``; when every rank is done, rank 0 rebuilds ``failures.jsonl`` and prints
the totals. A rank killed mid-way loses nothing stored: rerun the same command.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from ..config import load_config
from ..data import read_raw
from ..device import resolve_device
from ..distributed import distributed, env_shard, parse_shard
from ..errors import ConfigError, SyncTVAError
from ..features.pipeline import ExtractionReport, build_extractors, extract, open_store, wanted_modalities
from ..features.store import FAILURES, merge_stores

# Ranks wait for the slowest at the end; torchrun itself stops every rank when one dies.
_WAIT_FOR_PEERS = timedelta(days=2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_tva.extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=None, help="YAML config, e.g. configs/meld.yaml")
    parser.add_argument("--shard", default=None, metavar="i/n", help="extract only shard i of n (0-based)")
    parser.add_argument(
        "--merge", nargs="+", type=Path, default=None, metavar="DIR", help="copy these shard stores into features.store and stop (give key=value overrides before --merge)"
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. data.root=DIR")
    return parser.parse_intermixed_args(argv)  # overrides may stand before and after --config/--shard


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        overrides = list(args.overrides) + ([f"features.shard={args.shard}"] if args.shard else [])
        cfg = load_config(args.config, overrides)
        store = open_store(cfg)
        if args.merge:
            copied = merge_stores(args.merge, store.root)
            print(json.dumps({"merged": copied, "store": str(store.root)}))
            return 0
        shard = parse_shard(cfg.features.shard)
        if shard is not None and env_shard() is not None:
            raise ConfigError("--shard (features.shard) and torchrun both split the work; under torchrun leave --shard out")
        raw = read_raw(cfg)
        with distributed(resolve_device(cfg.features.device, "features.device"), timeout=_WAIT_FOR_PEERS) as ctx:
            for note in raw.notes if ctx.is_main else ():
                print(f"note: {note}", file=sys.stderr)
            extractors = build_extractors(cfg, wanted_modalities(cfg, raw))  # loads the models: fails before any work
            rank = f" (rank {ctx.rank} of {ctx.world_size})" if ctx.is_distributed else ""
            print(f"extractors: {extractors}; store {store.root}{rank}", file=sys.stderr)
            report = extract(raw, extractors, store, shard=shard or ctx.shard, chunk=cfg.features.chunk, progress=cfg.features.progress)
            report = ExtractionReport(*(int(n) for n in ctx.all_reduce_sum([report.extracted, report.cached, report.failed])))
            if not ctx.is_main:
                return 0
            if ctx.is_distributed:
                store.write_failures_index()  # every rank is done: the index now lists all their failures
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if report.failed:
        print(f"{report.failed} utterances failed; see {store.root / FAILURES}", file=sys.stderr)
    print(json.dumps(report.to_dict()), flush=True)
    return 0
