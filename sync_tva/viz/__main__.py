"""``python -m sync_tva.viz --run RUN_DIR [--utterance ID ...] [--split test] [--out DIR]``.

Draws the GAT attention of some utterances of a finished run and exports their graphs. With
no ``--utterance`` it picks a few from the split: the most confident correct predictions and
the most confident wrong ones (the interesting failures). For each utterance ``ID`` it writes
``ID.png`` and ``ID.svg`` (all relations), ``ID_relations.png`` (one panel per relation) and
``ID.graphml`` (every layer, head and relation), and prints the paths.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DataError, SyncTVAError
from ..inference import TrainedModel, load_model, predict
from ..records import Utterance
from .attention import UtteranceAttention, extract_attention
from .draw import draw_attention, save_figure
from .graphml import write_graphml

_LISTED_IDS = 30  # how many valid ids an error message shows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_tva.viz", description=__doc__.split("\n\n")[0].strip("`. "))
    parser.add_argument("--run", type=Path, required=True, help="run directory written by python -m sync_tva.run")
    parser.add_argument("--utterance", action="extend", nargs="+", default=[], metavar="ID", help="utterance ids to draw")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"], help="where to look for utterances")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: RUN/attention)")
    parser.add_argument("--checkpoint", default="best", help="checkpoint name under RUN/checkpoints (best or last)")
    parser.add_argument("--n", type=int, default=4, help="utterances picked when none is given (half correct, half wrong)")
    parser.add_argument("--layer", type=int, default=-1, help="GAT layer to draw (negative: from the last)")
    parser.add_argument("--head", type=int, default=None, help="attention head to draw (default: mean of heads)")
    parser.add_argument("--top-k", type=int, default=3, help="strongest incoming edges per node and relation (0: all)")
    return parser.parse_args(argv)


def find_utterances(pool: list[Utterance], ids: list[str], split: str) -> list[Utterance]:
    """The utterances named by ``ids``; an unknown id is an error listing valid ones."""
    by_id = {u.uid: u for u in pool}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        valid = list(by_id)
        shown = ", ".join(valid[:_LISTED_IDS]) + (f", ... ({len(valid)} in all)" if len(valid) > _LISTED_IDS else "")
        raise DataError(f"unknown utterance id(s) {unknown} in split {split!r}; valid ids: {shown}")
    return [by_id[i] for i in ids]


def pick_utterances(trained: TrainedModel, pool: list[Utterance], n: int) -> list[Utterance]:
    """The ``n // 2`` most confident wrong predictions, filled up with the most confident correct ones."""
    pred = predict(trained, pool)
    confidence = pred.probs.max(dim=1).values.tolist()
    ranked = sorted(range(len(pool)), key=lambda i: -confidence[i])
    wrong = [i for i in ranked if pred.y_pred[i] != pred.y_true[i]][: n // 2]
    right = [i for i in ranked if pred.y_pred[i] == pred.y_true[i]][: n - len(wrong)]
    return [pool[i] for i in right + wrong]


def write_utterance(ua: UtteranceAttention, out: Path, modalities: list[str], args: argparse.Namespace) -> list[Path]:
    """PNG and SVG of the combined view, a PNG with one panel per relation, and the GraphML."""
    top_k = args.top_k or None
    options = {"layer": args.layer, "head": args.head, "top_k": top_k, "modalities": modalities}
    paths = save_figure(draw_attention(ua, **options), out / ua.uid)
    paths += save_figure(draw_attention(ua, per_relation=True, **options), out / f"{ua.uid}_relations", formats=("png",))
    paths.append(write_graphml(ua, out / f"{ua.uid}.graphml"))
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        trained = load_model(args.run, args.checkpoint)
        pool = trained.load_split(args.split)
        if args.utterance:
            chosen = find_utterances(pool, args.utterance, args.split)
        else:
            chosen = pick_utterances(trained, pool, args.n)
        if not chosen:
            raise DataError(f"split {args.split!r} of run {args.run} has no utterances to draw")
        out = args.out or args.run / "attention"
        for ua in extract_attention(trained, chosen):
            for path in write_utterance(ua, out, list(trained.schema.node_types), args):
                print(path)
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
