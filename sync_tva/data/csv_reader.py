"""Conversation CSVs to raw records, driven by ``data.columns`` (``data.name=csv``; MELD builds on it).

A row is one utterance. ``data.columns.dialogue``/``utterance`` name the column (or the list of
columns) whose values identify it; ``data.columns.session`` optionally names the recording-session
column (``run --folds session:K``); ``data.media`` is an optional clip path template filled
from the row, e.g. ``train_splits/dia{Dialogue_ID}_utt{Utterance_ID}.mp4``. ``data.test`` may be
left out when only train and dev are read (``run --folds``).
"""

from __future__ import annotations

import difflib
import hashlib
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..config import ColumnsConfig
from ..errors import DataError
from ..records import SPLITS, MediaRef, RawSplits, RawUtterance
from .ids import safe_uid
from .registry import register_reader
from .splits import split_dev_by_dialogue

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["label_order", "read_csv_dataset", "read_table", "rows_to_records"]


def read_table(path: Path) -> pd.DataFrame:
    """A CSV as strings (no NaN guessing: an empty cell stays ``""``); errors name the file."""
    if not path.is_file():
        raise DataError(f"CSV file not found: {path}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable UTF-8 CSV ({exc})") from exc


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _check_columns(table: pd.DataFrame, columns: ColumnsConfig, path: Path) -> None:
    """Every column ``columns`` maps (the session column only when set) is in ``table``; else a DataError naming the key."""
    for key in ("text", "label", "speaker", "dialogue", "utterance", "session"):
        for col in _as_list(getattr(columns, key) or []):
            if col not in table.columns:
                hint = difflib.get_close_matches(col, list(table.columns), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                raise DataError(
                    f"{path}: no column {col!r} (data.columns.{key}){extra}; columns are {list(table.columns)}"
                )


def label_order(tables: Sequence[pd.DataFrame], column: str, explicit: list[str] | None) -> tuple[str, ...]:
    """``data.labels`` when given, else the sorted label values found in the (training) tables."""
    if explicit:
        return tuple(explicit)
    return tuple(sorted({v.strip() for t in tables for v in t[column] if v.strip()}))


def rows_to_records(
    table: pd.DataFrame,
    path: Path,
    columns: ColumnsConfig,
    labels: tuple[str, ...],
    media: str | None,
    media_root: Path,
    *,
    dropped: Counter | None = None,
) -> list[RawUtterance]:
    """One record per row; the clip (when ``media`` is a template) serves both audio and video.

    A row labelled outside ``labels`` is an error, or, when ``dropped`` is given, left out and
    counted there by label (``data.other_labels=drop``).
    """
    _check_columns(table, columns, path)
    index = {name: i for i, name in enumerate(labels)}
    records = []
    for row_no, row in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        source = f"{path}:{row_no}"
        value = row[columns.label].strip()
        if value not in index:
            if dropped is not None:
                dropped[value] += 1
                continue
            raise DataError(
                f"{source}: label {value!r} is not in the label set {list(labels)} (data.labels); "
                "set data.other_labels=drop to leave such rows out"
            )
        dialogue = "-".join(row[c] for c in _as_list(columns.dialogue))
        utterance = "-".join(row[c] for c in _as_list(columns.utterance))
        ref = None
        if media:
            try:
                ref = MediaRef(media_root / media.format_map(row))
            except (KeyError, ValueError, IndexError) as exc:
                raise DataError(f"{source}: data.media template {media!r} names a missing column ({exc})") from exc
        records.append(
            RawUtterance(
                uid=safe_uid(f"dia{dialogue}", f"utt{utterance}"),
                dialogue=dialogue,
                speaker=row[columns.speaker],
                label=index[value],
                text=row[columns.text],
                audio=ref,
                video=ref,
                source=source,
                session=row[columns.session] if columns.session else "",
            )
        )
    return records


def _resolve(path: str | None, root: str | None) -> Path | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() or root is None else Path(root).expanduser() / p


def _tables_needed(splits: Collection[str], has_dev: bool, has_labels: bool) -> set[str]:
    """The CSVs to read for ``splits``: train also for a carved dev, and for the label set unless given."""
    needed = set(splits)
    if ("dev" in needed and not has_dev) or not has_labels:
        needed.add("train")
    if not has_dev:
        needed.discard("dev")
    return needed


@register_reader("csv")
def read_csv_dataset(cfg: Config, splits: Collection[str] = SPLITS) -> RawSplits:
    """``data.train``/``dev``/``test`` CSVs as raw splits; without ``data.dev`` a seeded share of train dialogues.

    Only the files that ``splits`` need are read (a trained run can read its test CSV after its
    training CSV has moved away, since the checkpoint gives ``data.labels``); other splits stay empty.
    ``data.test`` is needed only when ``splits`` holds ``test`` (``run --folds`` asks for train and dev).
    """
    d = cfg.data
    train_path, dev_path, test_path = (_resolve(p, d.root) for p in (d.train, d.dev, d.test))
    if train_path is None or (test_path is None and "test" in splits):
        raise DataError(
            "data.name=csv needs data.train and data.test (CSV paths); data.dev is optional, and so is data.test "
            "under run --folds, which never reads the test split"
        )
    paths = {"train": train_path, "dev": dev_path, "test": test_path}
    tables = {s: read_table(paths[s]) for s in SPLITS if s in _tables_needed(splits, dev_path is not None, bool(d.labels))}
    for split, table in tables.items():
        _check_columns(table, d.columns, paths[split])
    labels = label_order([tables["train"]], d.columns.label, d.labels) if "train" in tables else tuple(d.labels or ())
    records = {s: [] for s in SPLITS}
    dropped: Counter | None = Counter() if d.other_labels == "drop" else None
    for split, table in tables.items():
        root = Path(d.root).expanduser() if d.root else paths[split].parent
        records[split] = rows_to_records(table, paths[split], d.columns, labels, d.media, root, dropped=dropped)
    if dev_path is None and "train" in tables:
        records["train"], records["dev"] = split_dev_by_dialogue(records["train"], d.dev_fraction, cfg.seed)
    chosen = {s: (records[s] if s in splits else []) for s in SPLITS}
    key = hashlib.sha1(str(train_path.resolve()).encode()).hexdigest()[:8]
    notes = [dropped_note(dropped, labels)] if dropped else []
    return RawSplits(name=f"csv-{safe_uid(train_path.stem)}-{key}", labels=labels, notes=notes, **chosen)


def dropped_note(dropped: Counter, labels: tuple[str, ...]) -> str:
    """The note that reports rows left out because of ``data.other_labels=drop``."""
    return f"left out {sum(dropped.values())} rows labelled outside {list(labels)} (data.other_labels=drop): {dict(dropped)}"

