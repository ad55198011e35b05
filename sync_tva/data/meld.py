"""MELD (Poria et al., 2019) from its released files: the three ``*_sent_emo.csv`` and the clip folders.

``data.root`` holds ``train_sent_emo.csv``, ``dev_sent_emo.csv``, ``test_sent_emo.csv`` and,
optionally, ``train_splits/``, ``dev_splits_complete/``, ``output_repeated_splits_test/`` with
``dia{Dialogue_ID}_utt{Utterance_ID}.mp4``. Without any clip folder MELD is read as text only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from ..records import SPLITS, RawSplits
from .csv_reader import dropped_note, read_table, rows_to_records
from .labels import MELD_LABELS
from .registry import register_reader

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["MELD_FILES", "read_meld"]

# split: (transcript CSV, clip folder) as released in MELD.Raw.
MELD_FILES: dict[str, tuple[str, str]] = {
    "train": ("train_sent_emo.csv", "train_splits"),
    "dev": ("dev_sent_emo.csv", "dev_splits_complete"),
    "test": ("test_sent_emo.csv", "output_repeated_splits_test"),
}


@register_reader("meld")
def read_meld(cfg: Config, splits: Collection[str] = SPLITS) -> RawSplits:
    """MELD's splits as raw records (those not in ``splits`` stay empty); clips are attached when any clip folder exists."""
    if cfg.data.root is None:
        raise DataError("data.name=meld needs data.root=DIR, the folder holding train_sent_emo.csv and the clip folders")
    root = Path(cfg.data.root).expanduser()
    if not root.is_dir():
        raise DataError(f"data.root={root}: folder not found (expected MELD's CSVs and clip folders)")
    labels = tuple(cfg.data.labels) if cfg.data.labels else MELD_LABELS
    with_clips = any((root / folder).is_dir() for _, folder in MELD_FILES.values())
    notes = []
    dropped: Counter | None = Counter() if cfg.data.other_labels == "drop" else None
    records: dict[str, list] = {s: [] for s in SPLITS}
    for split, (csv_name, folder) in MELD_FILES.items():
        if split not in splits:
            continue
        if with_clips and not (root / folder).is_dir():
            notes.append(f"MELD clip folder {root / folder} is missing: every {split} clip will be listed as a failure")
        template = f"{folder}/dia{{{_first(cfg.data.columns.dialogue)}}}_utt{{{_first(cfg.data.columns.utterance)}}}.mp4"
        table = read_table(root / csv_name)
        records[split] = rows_to_records(
            table, root / csv_name, cfg.data.columns, labels, template if with_clips else None, root, dropped=dropped
        )
    if dropped:
        notes.append(dropped_note(dropped, labels))
    return RawSplits(name="meld", labels=labels, notes=notes, **records)


def _first(columns: str | list[str]) -> str:
    """MELD clips are named by one dialogue and one utterance column."""
    return columns if isinstance(columns, str) else columns[0]

