"""Feature store: round trips, atomic writes, failure records, and merging shard stores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sync_tva.errors import DataError
from sync_tva.features.base import NodeFeatures
from sync_tva.features.store import FeatureStore, merge_stores

KEY = ("meld", "train", "text-abc")


def nodes(n: int = 3, value: float = 1.0) -> NodeFeatures:
    feat = np.full((n, 4), value, np.float32)
    spans = np.stack([np.arange(n), np.arange(n) + 1], axis=1).astype(np.float32)
    return NodeFeatures(feat, spans=spans, tokens=[f"t{i}" for i in range(n)])


def test_round_trip(tmp_path):
    store = FeatureStore(tmp_path)
    assert not store.has(*KEY, "dia0_utt0")
    store.save(*KEY, "dia0_utt0", nodes())
    assert store.has(*KEY, "dia0_utt0")
    assert store.path(*KEY, "dia0_utt0") == tmp_path / "meld" / "train" / "text-abc" / "dia0_utt0.npz"
    back = store.load(*KEY, "dia0_utt0")
    np.testing.assert_array_equal(back.feat, nodes().feat)
    np.testing.assert_array_equal(back.spans, nodes().spans)
    assert back.tokens == ["t0", "t1", "t2"]
    store.save(*KEY, "empty", NodeFeatures(np.zeros((0, 4), np.float32)))
    empty = store.load(*KEY, "empty")
    assert empty.feat.shape == (0, 4) and empty.spans is None and empty.tokens == []


def test_a_write_that_dies_leaves_the_old_file(tmp_path, monkeypatch):
    store = FeatureStore(tmp_path)
    store.save(*KEY, "u", nodes(value=1.0))

    def dies(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # like a kill in the middle of the write

    monkeypatch.setattr(np, "savez", dies)
    with pytest.raises(KeyboardInterrupt):
        store.save(*KEY, "u", nodes(value=2.0))
    with pytest.raises(KeyboardInterrupt):
        store.save(*KEY, "new", nodes())
    monkeypatch.undo()
    assert store.load(*KEY, "u").feat[0, 0] == 1.0  # the old file, whole
    assert not store.has(*KEY, "new")
    assert [p.name for p in store.folder(*KEY).iterdir()] == ["u.npz"]  # no temporary file left behind


def test_unreadable_or_pickled_files_are_refused_by_name(tmp_path):
    store = FeatureStore(tmp_path)
    store.save(*KEY, "u", nodes())
    store.path(*KEY, "u").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"u.npz: unreadable feature file for utterance 'u'"):
        store.load(*KEY, "u")
    with open(store.path(*KEY, "p"), "wb") as fh:
        np.savez(fh, feat=np.array([{"a": 1}], dtype=object), tokens=np.array([], str))
    with pytest.raises(DataError, match="p.npz"):
        store.load(*KEY, "p")


def test_failures_are_recorded_indexed_and_cleared(tmp_path):
    store = FeatureStore(tmp_path)
    store.record_failure("meld", "dev", "audio-1", "dia0_utt1", "/x/dia0_utt1.mp4", "file not found")
    store.record_failure("meld", "dev", "visual-2", "dia0_utt1", "/x/dia0_utt1.mp4", "file not found")
    store.record_failure("meld", "dev", "visual-2", "dia0_utt2", "/x/dia0_utt2.mp4", "corrupt video")
    lines = [json.loads(line) for line in store.write_failures_index().read_text().splitlines()]
    assert [(r["uid"], r["reason"], r["extractors"]) for r in lines] == [
        ("dia0_utt1", "file not found", ["audio-1", "visual-2"]),
        ("dia0_utt2", "corrupt video", ["visual-2"]),
    ]
    assert lines[0]["path"] == "/x/dia0_utt1.mp4" and lines[0]["split"] == "dev"
    store.save("meld", "dev", "visual-2", "dia0_utt2", nodes())  # fixed and extracted later
    store.write_failures_index()
    assert "dia0_utt2" not in (tmp_path / "failures.jsonl").read_text()


def test_merge_shard_stores(tmp_path):
    a, b, dest = FeatureStore(tmp_path / "a"), FeatureStore(tmp_path / "b"), FeatureStore(tmp_path / "all")
    a.save(*KEY, "u1", nodes(value=1.0))
    b.save(*KEY, "u2", nodes(value=2.0))
    b.record_failure(*KEY, "u3", "/x/u3.mp4", "file not found")
    dest.save(*KEY, "u1", nodes(value=9.0))  # already there: kept
    assert merge_stores([a.root, b.root], dest.root) == 2
    assert dest.load(*KEY, "u1").feat[0, 0] == 9.0 and dest.load(*KEY, "u2").feat[0, 0] == 2.0
    assert json.loads((dest.root / "failures.jsonl").read_text())["uid"] == "u3"
    with pytest.raises(DataError, match="not a feature store folder"):
        merge_stores([tmp_path / "nope"], dest.root)
