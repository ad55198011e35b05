"""Input adapters: sentences, media files and CSVs to the raw records a prediction starts from.

Each adapter returns :class:`Inputs`: the :class:`~sync_tva.records.RawUtterance` records, the
modalities each record cannot supply at all (a sentence has no audio, a WAV no frames), whether
the input carried labels, and the name its features take in the run's store. Nothing here
extracts or runs a model; that is the engine's (:mod:`sync_tva.predictor.engine`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DataConfig
from ..data.csv_reader import dropped_note, read_table, rows_to_records
from ..data.ids import check_unique, safe_uid
from ..errors import DataError
from ..records import MediaRef, RawUtterance

__all__ = ["VIDEO_SUFFIXES", "AUDIO_SUFFIXES", "Inputs", "text_inputs", "file_inputs", "csv_inputs"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")  # clips: their track serves audio, frames visual
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a")  # sound only: no visual nodes


@dataclass
class Inputs:
    """Raw records to predict, which modalities each one lacks on purpose, and whether they carry labels."""

    name: str  # store data set name: the input's stem and a digest of its content
    records: list[RawUtterance]
    absent: dict[str, list[str]] = field(default_factory=dict)  # uid -> modalities the input cannot supply
    labelled: bool = False


def text_inputs(texts: Sequence[str], modalities: Sequence[str]) -> Inputs:
    """Sentences alone, ids ``text``, ``text-2``...; every modality but text is absent."""
    uids = _unique_uids(["text"] * len(texts))
    records = [RawUtterance(uid, uid, "", 0, t, source=f"--text {t!r}") for uid, t in zip(uids, texts)]
    absent = {r.uid: [m for m in modalities if m != "text"] for r in records}
    return Inputs(_store_name("text", records), records, absent)


def file_inputs(paths: Sequence[Path], texts: Sequence[str] | None, modalities: Sequence[str]) -> Inputs:
    """Media files, each its own one-utterance conversation, with one transcript per file or none."""
    if texts is not None and len(texts) != len(paths):
        raise DataError(f"{len(texts)} transcripts for {len(paths)} media files: give one per file")
    records, absent = [], {}
    for i, (path, uid) in enumerate(zip(paths, _unique_uids([p.stem for p in paths]))):
        text = None if texts is None else texts[i]
        record = _media_record(path, uid, text)
        records.append(record)
        absent[uid] = _absent(record, modalities, text_given=text is not None)
    return Inputs(_store_name(paths[0].stem if paths else "files", records), records, absent)


def csv_inputs(
    path: Path, data: DataConfig, labels: Sequence[str], modalities: Sequence[str], *, media: str | None, media_root: Path | None
) -> Inputs:
    """A CSV of utterances or conversations read with ``data.columns``; clips from ``media`` (default
    ``data.media``) under ``media_root`` (default: the CSV's folder). Labelled when its label column has any value."""
    table = read_table(path)
    template = media if media is not None else data.media
    root = media_root if media_root is not None else path.parent
    label_col = data.columns.label
    labelled = label_col in table.columns and bool(table[label_col].str.strip().ne("").any())
    if not labelled:
        table = table.assign(**{label_col: labels[0]})  # a placeholder label; the set is marked unlabelled
    dropped: Counter | None = Counter() if data.other_labels == "drop" else None  # the run's rule for other labels
    records = rows_to_records(table, path, data.columns, labels, template, root, dropped=dropped)
    if dropped:
        print(f"note: {path}: {dropped_note(dropped, labels)}", file=sys.stderr)
    check_unique(records, str(path))
    absent = {r.uid: _absent(r, modalities, text_given=True) for r in records}
    return Inputs(_store_name(path.stem, records), records, absent, labelled)


def _media_record(path: Path, uid: str, text: str | None) -> RawUtterance:
    """The record of one media file: a video clip serves audio and visual, an audio file audio alone."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
        raise DataError(
            f"{path}: unknown file type {path.suffix or '(none)'!r}; give a video clip ({', '.join(VIDEO_SUFFIXES)}), "
            f"an audio file ({', '.join(AUDIO_SUFFIXES)}) or a .csv of utterances"
        )
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    ref = MediaRef(path)
    video = ref if suffix in VIDEO_SUFFIXES else None
    return RawUtterance(uid, uid, "", 0, text or "", audio=ref, video=video, source=str(path))


def _absent(record: RawUtterance, modalities: Sequence[str], *, text_given: bool) -> list[str]:
    """The ``modalities`` that ``record`` cannot supply at all (a failed decode is found later)."""
    has = {"text": text_given, "audio": record.audio is not None, "visual": record.video is not None}
    return [m for m in modalities if not has[m]]


def _store_name(stem: str, records: Sequence[RawUtterance]) -> str:
    """``predict-<stem>-<digest>``: the digest covers each record's text and media (path, size, mtime), so an
    edited transcript or a replaced clip never reads stale features from the store."""
    parts = []
    for r in records:
        media = sorted({str(ref) for ref in (r.audio, r.video) if ref is not None})
        stats = [(str(ref.path.resolve()), ref.path.stat().st_size, ref.path.stat().st_mtime_ns) for ref in (r.audio, r.video)
                 if ref is not None and ref.path.is_file()]
        parts.append([r.uid, r.text, media, stats])
    digest = hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]
    return f"predict-{safe_uid(stem)}-{digest}"


def _unique_uids(stems: Sequence[str]) -> list[str]:
    """File-safe ids from input names; a repeated name gets ``-2``, ``-3``... in input order."""
    seen: Counter[str] = Counter()
    out = []
    for stem in stems:
        uid = safe_uid(stem)
        seen[uid] += 1
        out.append(uid if seen[uid] == 1 else f"{uid}-{seen[uid]}")
    return out
