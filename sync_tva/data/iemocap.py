"""IEMOCAP (Busso et al., 2008) from its released folder layout, with the usual six emotions.

For each ``SessionN`` under ``data.root``::

    SessionN/dialog/EmoEvaluation/<dialogue>.txt    "[start - end]\\t<utterance>\\t<code>\\t[V, A, D]"
    SessionN/dialog/transcriptions/<dialogue>.txt   "<utterance> [start-end]: text"
    SessionN/sentences/wav/<dialogue>/<utterance>.wav   audio of one utterance
    SessionN/dialog/avi/DivX/<dialogue>.avi          video of the whole dialogue (cut by time)

Sessions in ``data.test_sessions`` (default 5) are the test split; a seeded share
(``data.dev_fraction``) of the other sessions' dialogues is the dev split. Every record carries
its session (``Ses01`` for ``Session1``), the group of ``run --folds session:K``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from ..records import SPLITS, MediaRef, RawSplits, RawUtterance
from .labels import IEMOCAP_LABELS
from .registry import register_reader
from .splits import split_dev_by_dialogue

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["IEMOCAP_CODES", "read_iemocap", "read_session"]

# EmoEvaluation codes of the six-class set; the other codes (xxx, sur, fea, dis, oth) are left out.
IEMOCAP_CODES: dict[str, str] = {
    "hap": "happy",
    "sad": "sad",
    "neu": "neutral",
    "ang": "angry",
    "exc": "excited",
    "fru": "frustrated",
}
_EVAL_LINE = re.compile(r"^\[(?P<start>[\d.]+) - (?P<end>[\d.]+)\]\t(?P<uid>\S+)\t(?P<code>\w+)\t")
_TEXT_LINE = re.compile(r"^(?P<uid>\S+) \[[\d.]+-[\d.]+\]: ?(?P<text>.*)$")


def _read_transcripts(folder: Path) -> dict[str, str]:
    """Utterance id to transcript for one session (lines that are not utterances are ignored)."""
    texts: dict[str, str] = {}
    for file in sorted(folder.glob("*.txt")):
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            match = _TEXT_LINE.match(line.strip())
            if match:
                texts[match["uid"]] = match["text"].strip()
    return texts


def read_session(root: Path, session: int, labels: tuple[str, ...], skipped: Counter, *, drop_others: bool = True) -> list[RawUtterance]:
    """Labelled utterances of ``SessionN``; utterances with other emotions are counted in ``skipped`` (or refused)."""
    base = root / f"Session{session}"
    evaluation = base / "dialog" / "EmoEvaluation"
    if not evaluation.is_dir():
        raise DataError(f"IEMOCAP: {evaluation} not found; data.root must hold Session1..Session5 as released")
    texts = _read_transcripts(base / "dialog" / "transcriptions")
    index = {name: i for i, name in enumerate(labels)}
    records = []
    for file in sorted(evaluation.glob("*.txt")):
        dialogue = file.stem
        for line_no, line in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            match = _EVAL_LINE.match(line)
            if not match:
                continue  # the per-annotator lines (C-E1: ...) and blank lines
            name = IEMOCAP_CODES.get(match["code"])
            if name not in index:
                if not drop_others:
                    raise DataError(
                        f"{file}:{line_no}: emotion {match['code']!r} is outside data.labels {list(labels)} and "
                        "data.other_labels=error; use data.other_labels=drop (IEMOCAP's usual 4/6-class setups drop them)"
                    )
                skipped[match["code"]] += 1
                continue
            uid = match["uid"]
            if uid not in texts:
                raise DataError(f"{file}:{line_no}: utterance {uid!r} has no line in {base / 'dialog' / 'transcriptions'}")
            records.append(
                RawUtterance(
                    uid=uid,
                    dialogue=dialogue,
                    speaker=f"Ses{session:02d}{uid.rsplit('_', 1)[-1][0]}",  # the F/M letter of the utterance id
                    label=index[name],
                    text=texts[uid],
                    audio=MediaRef(base / "sentences" / "wav" / dialogue / f"{uid}.wav"),
                    video=MediaRef(base / "dialog" / "avi" / "DivX" / f"{dialogue}.avi", float(match["start"]), float(match["end"])),
                    source=f"{file}:{line_no}",
                    session=f"Ses{session:02d}",  # the prefix of the speaker id, as --folds session names it
                )
            )
    return records


@register_reader("iemocap")
def read_iemocap(cfg: Config, splits: Collection[str] = SPLITS) -> RawSplits:
    """IEMOCAP's sessions as raw splits (test: ``data.test_sessions``; dev: carved from training dialogues)."""
    if cfg.data.root is None:
        raise DataError("data.name=iemocap needs data.root=DIR, the folder holding Session1..Session5")
    root = Path(cfg.data.root).expanduser()
    labels = tuple(cfg.data.labels) if cfg.data.labels else IEMOCAP_LABELS
    unknown = [name for name in labels if name not in IEMOCAP_CODES.values()]
    if unknown:
        raise DataError(f"data.labels: {unknown} are not IEMOCAP emotions; choose from {list(IEMOCAP_CODES.values())}")
    sessions = sorted(int(p.name[len("Session") :]) for p in root.glob("Session[0-9]*") if p.is_dir())
    if not sessions:
        raise DataError(f"data.root={root}: no Session1..Session5 folders found")
    missing = [s for s in cfg.data.test_sessions if s not in sessions]
    if missing:
        raise DataError(f"data.test_sessions={cfg.data.test_sessions}: no folder Session{missing[0]} under {root}")
    skipped: Counter = Counter()
    train: list[RawUtterance] = []
    test: list[RawUtterance] = []
    for session in sessions:
        (test if session in cfg.data.test_sessions else train).extend(read_session(root, session, labels, skipped, drop_others=cfg.data.other_labels != "error"))
    train, dev = split_dev_by_dialogue(train, cfg.data.dev_fraction, cfg.seed)
    notes = [f"IEMOCAP: left out {sum(skipped.values())} utterances with emotions outside {list(labels)}: {dict(skipped)}"] if skipped else []
    chosen = {s: (part if s in splits else []) for s, part in (("train", train), ("dev", dev), ("test", test))}
    return RawSplits(name="iemocap", labels=labels, notes=notes, **chosen)

