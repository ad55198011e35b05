"""``python -m sync_tva.viz --run RUN_DIR [--utterance ID ...] [--split test] [--out DIR] [--html PAGE]``.

Draws the attention of some utterances of a finished run and exports their graphs. With no
``--utterance`` it picks a few from the split: the most confident correct predictions and the
most confident wrong ones (the interesting failures). For each utterance ``ID`` it writes
``ID.png`` and ``ID.svg`` (all relations), ``ID_heatmap.png`` (a heatmap per relation, MSDE
and CAF), ``ID_relations.png`` (a graph panel per relation) and ``ID.graphml`` (every layer,
head and relation). ``--view auto`` puts dense relations (edges on at least half of the
possible pairs, e.g. ``full`` patterns) in the heatmap and sparse ones in the graph panels,
and skips ``ID_relations.png`` when no relation is sparse. ``--html PAGE`` also writes the
explorer page of the split. Paths go to stdout, one per line; a verdict line per utterance
(``ID  true X  predicted Y  right  p=0.83``) goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ModelConfig
from ..errors import ConfigError, DataError, SyncTVAError
from ..inference import TrainedModel, load_model, predict
from ..records import Utterance
from ..viz.attention import UtteranceAttention, extract_attention
from ..viz.draw import draw_attention, save_figure
from ..viz.explorer import write_explorer_page
from ..viz.graphml import write_graphml
from ..viz.heatmap import dense_relations, draw_heatmaps

_LISTED_IDS = 30  # how many valid ids an error message shows
VIEWS = ("auto", "graph", "heatmap", "both")


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
    parser.add_argument("--view", default="auto", choices=VIEWS, help="relations as graphs, heatmaps, both, or auto (dense ones as heatmaps)")
    parser.add_argument("--html", type=Path, default=None, metavar="PAGE", help="also write the explorer page of the split to this file")
    parser.add_argument("--html-max", type=int, default=100, help="utterances in the page at most (whole dialogues, drawn ones first)")
    args = parser.parse_args(argv)
    if args.html_max < 1:
        parser.error(f"--html-max must be at least 1, got {args.html_max}")
    return args


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
    """The ``n // 2`` most confident wrong predictions, filled up with the most confident correct ones
    (and, when there are too few correct ones, with further wrong ones): ``min(n, len(pool))`` in all."""
    pred = predict(trained, pool)
    confidence = pred.probs.max(dim=1).values.tolist()
    ranked = sorted(range(len(pool)), key=lambda i: -confidence[i])
    all_wrong = [i for i in ranked if pred.y_pred[i] != pred.y_true[i]]
    right = [i for i in ranked if pred.y_pred[i] == pred.y_true[i]][: n - min(len(all_wrong), n // 2)]
    wrong = all_wrong[: n - len(right)]
    return [pool[i] for i in right + wrong]


def split_relations(ua: UtteranceAttention, view: str) -> tuple[list[str], list[str]]:
    """``(as graph panels, as heatmaps)``: every relation in both for ``both``, dense ones as heatmaps for ``auto``."""
    relations = list(dict.fromkeys(ua.gat["relation"]))
    if view == "auto":
        dense = set(dense_relations(ua))
        return [r for r in relations if r not in dense], [r for r in relations if r in dense]
    return (relations if view in ("graph", "both") else []), (relations if view in ("heatmap", "both") else [])


def write_utterance(ua: UtteranceAttention, out: Path, modalities: list[str], args: argparse.Namespace) -> list[Path]:
    """The combined view (PNG, SVG), heatmaps and relation panels as ``--view`` says, and the GraphML."""
    top_k = args.top_k or None
    options = {"layer": args.layer, "head": args.head, "top_k": top_k, "modalities": modalities}
    as_graph, as_heatmap = split_relations(ua, args.view)
    paths = []
    if args.view != "heatmap":
        paths += save_figure(draw_attention(ua, **options), out / ua.uid)
    if args.view != "graph" and (as_heatmap or not ua.msde.empty or not ua.caf.empty):
        heatmaps = draw_heatmaps(ua, layer=args.layer, head=args.head, relations=as_heatmap)
        paths += save_figure(heatmaps, out / f"{ua.uid}_heatmap", formats=("png",))
    if as_graph:
        panels = draw_attention(ua, per_relation=True, relations=as_graph, **options)
        paths += save_figure(panels, out / f"{ua.uid}_relations", formats=("png",))
    paths.append(write_graphml(ua, out / f"{ua.uid}.graphml"))
    return paths


def verdict(ua: UtteranceAttention) -> str:
    """``ID  true X  predicted Y  right  p=0.83``: one line per drawn utterance."""
    mark = "right" if ua.correct else "wrong"
    p = float(ua.probs[ua.predicted])
    return f"{ua.uid}  true {ua.labels[ua.true]}  predicted {ua.labels[ua.predicted]}  {mark}  p={p:.2f}"


def page_utterances(pool: list[Utterance], chosen: list[Utterance], limit: int) -> list[Utterance]:
    """Whole dialogues of the split for the page: the drawn utterances' first, then others in split order.

    Stops adding dialogues once ``limit`` utterances are in; the result keeps the split's order,
    which is each dialogue's time order.
    """
    dialogues = list(dict.fromkeys([u.dialogue for u in chosen] + [u.dialogue for u in pool]))
    size = {d: 0 for d in dialogues}
    for u in pool:
        size[u.dialogue] += 1
    keep, total = set(), 0
    for d in dialogues:
        if total >= limit:
            break
        keep.add(d)
        total += size[d]
    return [u for u in pool if u.dialogue in keep]


def check_layer_and_head(model: ModelConfig, layer: int, head: int | None) -> None:
    """Refuse a ``--layer``/``--head`` the run's model does not have, before any data is read."""
    if model.gat_layers and not -model.gat_layers <= layer < model.gat_layers:
        raise ConfigError(f"--layer {layer}: the run's model has {model.gat_layers} GAT layers (0 to {model.gat_layers - 1}, or -1 for the last)")
    if head is not None and not 0 <= head < model.gat_heads:
        raise ConfigError(f"--head {head}: the run's model has {model.gat_heads} GAT heads (0 to {model.gat_heads - 1}); leave it out for their mean")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        trained = load_model(args.run, args.checkpoint)
        check_layer_and_head(trained.cfg.model, args.layer, args.head)
        pool = trained.load_split(args.split)
        if args.utterance:
            chosen = find_utterances(pool, args.utterance, args.split)
        else:
            chosen = pick_utterances(trained, pool, args.n)
        if not chosen:
            raise DataError(f"split {args.split!r} of run {args.run} has no utterances to draw")
        out = args.out or args.run / "attention"
        for ua in extract_attention(trained, chosen):
            print(verdict(ua), file=sys.stderr)
            for path in write_utterance(ua, out, list(trained.schema.node_types), args):
                print(path)
        if args.html is not None:
            title = f"{args.run.resolve().name}: {args.split} split, {args.checkpoint} checkpoint"
            page = page_utterances(pool, chosen, args.html_max)
            print(write_explorer_page(trained, page, args.html, title=title, batch_size=trained.cfg.train.batch_size))
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
