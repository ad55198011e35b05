"""``python -m sync_tva.finetune [--config FILE] [key=value ...]``: fine-tune the text encoder into the feature store.

Trains ``features.text.model`` as an utterance classifier on the training split of ``data.name``
(``features.text.finetune.*``, epochs at least 1), chooses the epoch on dev, saves the encoder
into the store and prints the JSON summary. The same request again trains nothing; a killed
one resumes. ``extract`` and ``run`` do this step themselves when the epochs are above 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import load_config
from ..data import read_raw
from ..errors import SyncTVAError
from ..features.finetune import finetune_text_encoder


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_tva.finetune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=None, help="YAML config, e.g. configs/meld.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. features.text.finetune.epochs=2")
    return parser.parse_intermixed_args(argv)  # overrides may stand before and after --config


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
        tuned = finetune_text_encoder(cfg, read_raw(cfg, ("train", "dev")))  # the test split is never read
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = "trained now" if tuned.trained else "already in the store: nothing trained"
    print(f"fine-tuned encoder {tuned.path} ({state})", file=sys.stderr)
    print(json.dumps(tuned.summary | {"folder": str(tuned.path), "trained_now": tuned.trained}), flush=True)
    return 0
