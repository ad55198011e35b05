"""The feature store: one ``.npz`` per (data set, split, extractor fingerprint, utterance), written atomically.

Layout::

    STORE/<dataset>/<split>/<modality>-<fingerprint>/<uid>.npz          features (feat, spans, tokens; visual: boxes, thumbs)
    STORE/<dataset>/<split>/<modality>-<fingerprint>/<uid>.failed.json  why this utterance failed
    STORE/<dataset>/<split>/<modality>-<fingerprint>/extractor.json     what the fingerprint stands for
    STORE/failures.jsonl                                                every failure, one line per utterance

Because every file is complete or absent, a killed run resumes by skipping what exists, and
shards that wrote to different stores merge by copying files (:func:`merge_stores`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..io import atomic_open, write_json
from .base import NodeFeatures

__all__ = ["FeatureStore", "merge_stores", "store_key"]

FAILURES = "failures.jsonl"
_FAILED = ".failed.json"


def store_key(modality: str, fingerprint: str) -> str:
    """The store's name for one extractor's features: its modality and the fingerprint of its weights and preprocessing."""
    return f"{modality}-{fingerprint}"


class FeatureStore:
    """Read and write node features under ``root``; keys are ``(dataset, split, extractor, uid)``.

    ``extractor`` is ``"<modality>-<fingerprint>"`` (see :meth:`Extractor.fingerprint`).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r})"

    def folder(self, dataset: str, split: str, extractor: str) -> Path:
        """The folder holding one extractor's features for one split."""
        return self.root / dataset / split / extractor

    def path(self, dataset: str, split: str, extractor: str, uid: str) -> Path:
        """Where the features of ``uid`` live."""
        return self.folder(dataset, split, extractor) / f"{uid}.npz"

    def has(self, dataset: str, split: str, extractor: str, uid: str) -> bool:
        """Whether the features of ``uid`` are stored (a stored file is always complete)."""
        return self.path(dataset, split, extractor, uid).is_file()

    def describe(self, dataset: str, split: str, extractor: str, description: dict[str, Any]) -> None:
        """Record what a fingerprint stands for, once per folder, for people browsing the store."""
        file = self.folder(dataset, split, extractor) / "extractor.json"
        if not file.is_file():
            write_json(file, description)

    def save(self, dataset: str, split: str, extractor: str, uid: str, nodes: NodeFeatures) -> None:
        """Atomically write the features of ``uid`` and clear an earlier failure record of it."""
        arrays = {"feat": np.ascontiguousarray(nodes.feat, dtype=np.float32)}
        if nodes.spans is not None:
            arrays["spans"] = np.asarray(nodes.spans, dtype=np.float32)
        arrays["tokens"] = np.asarray(nodes.tokens, dtype=np.str_)
        if nodes.boxes is not None:
            arrays["boxes"] = np.asarray(nodes.boxes, dtype=np.float32)
        if nodes.thumbs is not None:
            arrays["thumbs"] = np.asarray(nodes.thumbs, dtype=np.uint8)
        with atomic_open(self.path(dataset, split, extractor, uid), "wb") as fh:
            np.savez(fh, **arrays)
        self._failure_file(dataset, split, extractor, uid).unlink(missing_ok=True)

    def load(self, dataset: str, split: str, extractor: str, uid: str) -> NodeFeatures:
        """The stored features of ``uid``; a damaged file is a DataError naming it (delete it to re-extract)."""
        file = self.path(dataset, split, extractor, uid)
        try:
            with np.load(file, allow_pickle=False) as data:
                optional = {key: data[key] if key in data.files else None for key in ("spans", "boxes", "thumbs")}
                return NodeFeatures(feat=data["feat"], tokens=[str(t) for t in data["tokens"]], **optional)
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{file}: unreadable feature file for utterance {uid!r} ({exc}); delete it to re-extract") from exc

    def _failure_file(self, dataset: str, split: str, extractor: str, uid: str) -> Path:
        return self.folder(dataset, split, extractor) / f"{uid}{_FAILED}"

    def record_failure(self, dataset: str, split: str, extractor: str, uid: str, path: str, reason: str) -> None:
        """Atomically note that ``uid`` could not be extracted, with the file and the reason."""
        record = {"dataset": dataset, "split": split, "uid": uid, "extractor": extractor, "path": path, "reason": reason}
        write_json(self._failure_file(dataset, split, extractor, uid), record)

    def failures(self) -> Iterator[dict[str, Any]]:
        """Every failure record in the store."""
        for file in sorted(self.root.glob(f"*/*/*/*{_FAILED}")):
            with open(file) as fh:
                yield json.load(fh)

    def write_failures_index(self) -> Path:
        """Rebuild ``failures.jsonl``: one line per failed utterance and file, with the extractors that failed."""
        grouped: dict[tuple[str, ...], dict[str, Any]] = {}
        for rec in self.failures():
            key = (rec["dataset"], rec["split"], rec["uid"], rec["path"], rec["reason"])
            entry = grouped.setdefault(key, {k: rec[k] for k in ("dataset", "split", "uid", "path", "reason")} | {"extractors": []})
            entry["extractors"].append(rec["extractor"])
        file = self.root / FAILURES
        with atomic_open(file) as fh:
            for entry in grouped.values():
                fh.write(json.dumps(entry) + "\n")
        return file


def merge_stores(sources: list[str | Path], dest: str | Path) -> int:
    """Copy the feature files of shard stores into ``dest`` (existing files are kept); returns files copied."""
    target = FeatureStore(dest)
    copied = 0
    for src in sources:
        src = Path(src).expanduser()
        if not src.is_dir():
            raise DataError(f"--merge: {src} is not a feature store folder")
        for file in sorted(src.glob("*/*/*/*")):
            if file.name.startswith("."):
                continue  # a temporary file of a killed writer
            out = target.root / file.relative_to(src)
            if out.exists():
                continue
            if file.name.endswith(_FAILED) and out.with_name(file.name[: -len(_FAILED)] + ".npz").exists():
                continue  # another shard extracted it after all
            with open(file, "rb") as fin, atomic_open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            if file.suffix == ".npz":
                out.with_name(file.name[: -len(".npz")] + _FAILED).unlink(missing_ok=True)
            copied += 1
    target.write_failures_index()
    return copied
