"""``python -m sync_tva.predict --run RUN INPUT... [--text "..."] [--out DIR] [--draw] [--allow-missing]``: classify new material.

INPUT is media files (video clips such as ``clip.mp4``, audio such as ``clip.wav``; ``--text``
gives the transcript, once for all files or once per file), or one CSV of utterances or whole
conversations read with the run's column mapping (``data.columns``, ``data.media``), or nothing
but ``--text "a sentence"`` (repeatable) for a text-only run. Features are extracted with the
run's own extractor settings into its feature store.

Prints a table (utterance, top emotion, probability, runner-up) and writes ``OUT/predictions.csv``
and ``OUT/predictions.jsonl`` with every class's probability; ``metrics.json`` when the CSV has
labels; with ``--draw``, ``OUT/attention/<utterance>.png`` for each utterance and, for a
context model, ``OUT/conversations/dialogue_<id>.png`` for each conversation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import av

from .data.ids import safe_uid
from .errors import DataError, SyncTVAError
from .io import atomic_open, write_json
from .predictor import PredictionSet, Predictor
from .records import dialogue_units
from .viz import draw_attention, extract_attention, save_figure
from .viz.conversation import draw_conversation, extract_conversation


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_tva.predict", description="Classify new media files, one CSV of utterances, or --text sentences with a trained run.")
    parser.add_argument("--run", type=Path, required=True, help="run directory written by python -m sync_tva.run")
    parser.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="media files, or one CSV of utterances")
    parser.add_argument("--text", action="append", default=None, help="transcript of the media files, or a sentence on its own (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: predictions/<input>-<time>)")
    parser.add_argument("--draw", action="store_true", help="draw each utterance's attention graph into OUT/attention/")
    parser.add_argument("--allow-missing", action="store_true", help="predict inputs lacking a modality of the run with its nodes absent")
    parser.add_argument("--checkpoint", default="best", help="checkpoint name under RUN/checkpoints (best or last)")
    parser.add_argument("--media", default=None, metavar="TEMPLATE", help="CSV: clip path template (default: the run's data.media)")
    parser.add_argument("--media-root", type=Path, default=None, help="CSV: folder the media template is resolved under (default: the CSV's)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the run's train.device)")
    return parser.parse_args(argv)


def predict_inputs(predictor: Predictor, args: argparse.Namespace) -> PredictionSet:
    """Dispatch on the kind of input: one CSV, media files (with transcripts), or sentences alone."""
    tables = [p for p in args.inputs if p.suffix.lower() == ".csv"]
    if tables:
        if len(args.inputs) > 1:
            raise DataError(f"give one CSV at a time, without media files (got {[str(p) for p in args.inputs]})")
        if args.text:
            raise DataError(f"{tables[0]}: --text goes with media files or alone, not with a CSV (its rows carry the text)")
        return predictor.predict_csv(tables[0], media=args.media, media_root=args.media_root)
    if args.inputs:
        texts = args.text
        if texts is not None and len(texts) == 1:
            texts = texts * len(args.inputs)  # one transcript for every file
        return predictor.predict_files(args.inputs, texts)
    if args.text:
        return predictor.predict_text(args.text)
    raise DataError("nothing to predict: give media files, a CSV, or --text \"a sentence\"")


def format_table(result: PredictionSet, width: int = 40) -> str:
    """The terminal table: utterance, top emotion and its probability, runner-up and its probability."""

    def cut(s: str) -> str:
        return s if len(s) <= width else s[: width - 1] + "…"

    names = [cut(p.uid if not p.text else f"{p.uid}: {p.text}") for p in result]
    w = max([len("utterance"), *map(len, names)])
    lines = [f"{'utterance':<{w}}  {'emotion':<12} {'p':>5}  runner-up"]
    for name, p in zip(names, result):
        lines.append(f"{name:<{w}}  {p.label:<12} {p.probability:5.2f}  {p.runner_up} ({p.runner_up_probability:.2f})")
    if len(result) == 1:
        lines += ["", "ranked:"] + [f"  {label:<12} {prob:.3f}" for label, prob in result[0].ranked()]
    return "\n".join(lines)


def write_predictions(result: PredictionSet, out: Path) -> list[Path]:
    """``predictions.csv``, ``predictions.jsonl`` and, for labelled inputs, ``metrics.json`` (atomic writes)."""
    paths = [out / "predictions.csv", out / "predictions.jsonl"]
    with atomic_open(paths[0]) as fh:
        result.to_frame().to_csv(fh, index=False)
    with atomic_open(paths[1]) as fh:
        for p in result:
            fh.write(json.dumps(p.to_dict()) + "\n")
    if result.labelled:
        paths.append(out / "metrics.json")
        write_json(paths[-1], result.metrics().to_dict())
    return paths


def draw_predictions(predictor: Predictor, result: PredictionSet, out: Path) -> list[Path]:
    """One attention drawing per utterance (last GAT layer, heads averaged, 3 strongest edges per node)."""
    by_uid = {p.uid: p for p in result}
    paths = []
    for chunk in predictor.planned_batches(result.utterances):  # a conversation stays with its context
        for ua in extract_attention(predictor.trained, chunk):
            pred = by_uid[ua.uid]
            fig = draw_attention(ua, top_k=3, modalities=predictor.modalities)
            if not result.labelled:  # the drawing's title names a true label; these inputs have none
                detail = fig.get_suptitle().split("\n")[1:]
                fig.suptitle("\n".join([f"{pred.uid}: predicted {pred.label} ({pred.probability:.2f})", *detail]), fontsize=10)
            paths += save_figure(fig, out / "attention" / pred.uid, formats=("png",))
    return paths


def draw_conversations(predictor: Predictor, result: PredictionSet, out: Path) -> list[Path]:
    """A context model's view of each conversation: turns, speakers, emotions and context attention."""
    paths = []
    for unit in dialogue_units(result.utterances):
        conv = extract_conversation(predictor.trained, [result.utterances[i] for i in unit])
        if not result.labelled:  # the drawing marks true vs predicted; these inputs have no true emotion
            conv = replace(conv, true=conv.predicted)
        fig = draw_conversation(conv)
        if not result.labelled:
            fig.axes[0].set_title(f"dialogue {conv.dialogue}: context attention; predicted emotions (no labels given)", fontsize=9)
        paths += save_figure(fig, out / "conversations" / safe_uid("dialogue", conv.dialogue), formats=("png",))
    return paths


def _default_out(args: argparse.Namespace) -> Path:
    stem = args.inputs[0].stem if args.inputs else "text"
    return Path("predictions") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _make_out(out: Path) -> None:
    """Create the output folder; a file where it or a parent should be is a user error naming the path, not a traceback."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise DataError(f"--out {out}: cannot create the folder ({exc.strerror}: {exc.filename}); choose another --out") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    av.logging.set_level(av.logging.PANIC)  # FFmpeg's own log lines would repeat what the one error line says
    try:
        predictor = Predictor.from_run(args.run, args.checkpoint, device=args.device, allow_missing=args.allow_missing)
        result = predict_inputs(predictor, args)
        out = args.out or _default_out(args)
        _make_out(out)
        files = write_predictions(result, out)
        drawings = draw_predictions(predictor, result, out) if args.draw else []
        if args.draw and predictor.reads_conversations:
            drawings += draw_conversations(predictor, result, out)
    except SyncTVAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    if result.labelled:
        m = result.metrics()
        print(f"\naccuracy {m.accuracy:.4f}, weighted F1 {m.weighted_f1:.4f}, macro F1 {m.macro_f1:.4f}")
    print(f"\nwrote {', '.join(map(str, files))}" + (f" and {len(drawings)} drawings under {out}" if drawings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
