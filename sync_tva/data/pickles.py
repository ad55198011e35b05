"""Community feature pickles (DialogueRNN / DialogueGCN / MMGCN / COSMIC / SDT / M3Net family) as ``DatasetSplits``.

Each file is one tuple whose items are dicts keyed by dialogue id (one entry per utterance of
the dialogue, in order) and lists of dialogue ids for the splits. A :class:`PickleLayout` names
what each tuple position holds; ``data.layout`` picks one (``docs/pickles.md`` describes them
all, with dims and label maps). Every utterance becomes one node per modality.

Files go through :mod:`sync_tva.data.safe_pickle`, so a hostile file is refused before any of
its code runs. Then the contents are checked: split ids present in every dict, one entry per
utterance in every field, one feature width per modality, labels inside the label set; each
error names the file, the dialogue and, where it applies, the utterance.

Example::

    python -m sync_tva.run --config configs/iemocap_pickle.yaml data.path=IEMOCAP_features.pkl
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config
from ..errors import ConfigError, DataError, UnknownNameError
from .labels import IEMOCAP_LABELS, MELD_LABELS
from .records import DatasetSplits, Utterance, check_utterance
from .registry import register_dataset
from .safe_pickle import safe_load
from .splits import carve_dev

__all__ = ["LAYOUTS", "PickleLayout", "get_layout", "list_layouts", "read_feature_pickle"]

_SPLIT_FIELDS = ("train", "dev", "test")
_ROBERTA = ("roberta1", "roberta2", "roberta3", "roberta4")


@dataclass(frozen=True)
class PickleLayout:
    """What each position of a feature pickle's tuple holds.

    ``fields`` names the positions: ``ids``, ``speakers``, ``labels``, ``sentences``, feature
    fields, ``train``/``dev``/``test`` (lists of dialogue ids), or ``unused``. ``modalities``
    maps each modality to the feature fields averaged into its node (several for COSMIC's four
    RoBERTa layers). ``uid`` formats an utterance id from ``dialogue`` and ``utt`` (the file's
    utterance id, or the position in the dialogue when the file has none). ``dims`` documents
    the widths of the released files; other widths in the same layout are accepted.
    """

    name: str
    fields: tuple[str, ...]
    modalities: Mapping[str, tuple[str, ...]]
    labels: tuple[str, ...]
    uid: str
    dims: Mapping[str, int]
    source: str

    def __repr__(self) -> str:
        return f"PickleLayout({self.name!r}, {len(self.fields)}-tuple, modalities={sorted(self.modalities)})"


LAYOUTS: dict[str, PickleLayout] = {
    layout.name: layout
    for layout in (
        PickleLayout(
            name="iemocap",
            fields=("ids", "speakers", "labels", "text", "audio", "visual", "sentences", "train", "test"),
            modalities={"text": ("text",), "audio": ("audio",), "visual": ("visual",)},
            labels=IEMOCAP_LABELS,
            uid="{utt}",
            dims={"text": 100, "audio": 100, "visual": 512},
            source="IEMOCAP_features.pkl (DialogueRNN, DialogueGCN, MMGCN)",
        ),
        PickleLayout(
            name="meld_raw",
            fields=("ids", "speakers", "labels", "text", "audio", "sentences", "train", "test", "unused"),
            modalities={"text": ("text",), "audio": ("audio",)},
            labels=MELD_LABELS,
            uid="dia{dialogue}_utt{utt}",
            dims={"text": 600, "audio": 300},
            source="MELD_features_raw.pkl (DialogueRNN, DialogueGCN); the last item is the 3-class sentiment",
        ),
        PickleLayout(
            name="meld_raw_visual",
            fields=(
                "ids",
                "speakers",
                "labels",
                "text",
                "audio",
                "visual",
                "sentences",
                "train",
                "test",
                "unused",
            ),
            modalities={"text": ("text",), "audio": ("audio",), "visual": ("visual",)},
            labels=MELD_LABELS,
            uid="dia{dialogue}_utt{utt}",
            dims={"text": 600, "audio": 300, "visual": 342},
            source="MELD_features_raw1.pkl (MMGCN)",
        ),
        PickleLayout(
            name="meld_roberta",
            fields=("speakers", "labels", "unused", *_ROBERTA, "sentences", "train", "test", "dev"),
            modalities={"text": _ROBERTA},
            labels=MELD_LABELS,
            uid="dia{dialogue}_utt{utt}",
            dims={"text": 1024},
            source="meld_features_roberta.pkl (COSMIC); the third item is the 3-class sentiment",
        ),
        PickleLayout(
            name="iemocap_roberta",
            fields=("speakers", "labels", *_ROBERTA, "sentences", "train", "test", "dev"),
            modalities={"text": _ROBERTA},
            labels=IEMOCAP_LABELS,
            uid="{dialogue}_{utt}",
            dims={"text": 1024},
            source="iemocap_features_roberta.pkl (COSMIC)",
        ),
        PickleLayout(
            name="iemocap_multimodal",
            fields=("ids", "speakers", "labels", *_ROBERTA, "audio", "visual", "sentences", "train", "test"),
            modalities={"text": _ROBERTA, "audio": ("audio",), "visual": ("visual",)},
            labels=IEMOCAP_LABELS,
            uid="{utt}",
            dims={"text": 1024, "audio": 1582, "visual": 342},
            source="iemocap_multimodal_features.pkl (SDT, M3Net, CFN-ESA family)",
        ),
        PickleLayout(
            name="meld_multimodal",
            fields=(
                "ids",
                "speakers",
                "labels",
                *_ROBERTA,
                "audio",
                "visual",
                "sentences",
                "train",
                "test",
                "unused",
            ),
            modalities={"text": _ROBERTA, "audio": ("audio",), "visual": ("visual",)},
            labels=MELD_LABELS,
            uid="dia{dialogue}_utt{utt}",
            dims={"text": 1024, "audio": 300, "visual": 342},
            source="meld_multimodal_features.pkl (SDT, M3Net, CFN-ESA family)",
        ),
    )
}


def list_layouts() -> list[str]:
    """Names accepted by ``data.layout``."""
    return sorted(LAYOUTS)


def get_layout(name: str | None) -> PickleLayout:
    """The layout called ``name``; a missing or unknown name lists the choices."""
    if name is None:
        raise ConfigError(
            f"data.layout: required with data.name=features_pickle; choose from {', '.join(list_layouts())}"
        )
    if name not in LAYOUTS:
        raise UnknownNameError(
            f"data.layout: unknown layout {name!r}; choose from {', '.join(list_layouts())}"
        )
    return LAYOUTS[name]


# ----------------------------------------------------------------------------------------------
# Unpacking and checking the tuple.


def _unpack(payload: Any, layout: PickleLayout, source: str) -> dict[str, Any]:
    """Name the tuple's items after the layout's fields, checking the length and the item kinds."""
    if not isinstance(payload, (tuple, list)) or len(payload) != len(layout.fields):
        found = (
            f"a {len(payload)}-tuple" if isinstance(payload, (tuple, list)) else f"a {type(payload).__name__}"
        )
        fits = [
            n
            for n, lay in LAYOUTS.items()
            if isinstance(payload, (tuple, list)) and len(lay.fields) == len(payload)
        ]
        hint = f"; layouts of that length: {', '.join(fits)}" if fits else ""
        raise DataError(
            f"{source}: data.layout={layout.name} expects a {len(layout.fields)}-tuple "
            f"({', '.join(layout.fields)}), found {found}{hint}"
        )
    items = dict(zip(layout.fields, payload))
    for pos, field in enumerate(layout.fields):
        value = items[field]
        if field in _SPLIT_FIELDS:
            if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
                raise DataError(
                    f"{source}: item {pos} ({field} ids) must be a list of dialogue ids, got {type(value).__name__}; "
                    f"is data.layout={layout.name} the file's layout? See docs/pickles.md"
                )
            items[field] = list(value)
        elif field != "unused" and not isinstance(value, Mapping):
            raise DataError(
                f"{source}: item {pos} ({field}) must be a dict keyed by dialogue id, got {type(value).__name__}; "
                f"is data.layout={layout.name} the file's layout? See docs/pickles.md"
            )
    return items


def _check_split_ids(items: dict[str, Any], layout: PickleLayout, source: str) -> None:
    """Every split id is in every per-dialogue dict, and no dialogue is in two splits."""
    seen: dict[Any, str] = {}
    for split in (s for s in _SPLIT_FIELDS if s in items):
        for dialogue in items[split]:
            if dialogue in seen:
                raise DataError(
                    f"{source}: dialogue {dialogue!r} is in both the {seen[dialogue]} and the {split} id lists"
                )
            seen[dialogue] = split
            for field in (f for f in layout.fields if f not in _SPLIT_FIELDS and f != "unused"):
                if dialogue not in items[field]:
                    raise DataError(
                        f"{source}: dialogue {dialogue!r} from the {split} id list is missing from {field}"
                    )


def _label_index(value: Any, n_labels: int, where: str) -> int:
    """An integral label inside ``0..n_labels-1``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"{where}: label {value!r} is not an integer class index")
    if not float(value).is_integer() or not 0 <= int(value) < n_labels:
        raise DataError(f"{where}: label {value!r} outside 0..{n_labels - 1}")
    return int(value)


def _speaker_name(value: Any) -> str:
    """'M'/'F' strings stay; a one-hot speaker vector (MELD) becomes ``speaker<index>``."""
    if isinstance(value, bytes):
        return value.decode("latin1")
    if isinstance(value, (str, int, np.integer)):
        return str(value)
    return f"speaker{int(np.argmax(np.asarray(value, dtype=np.float64)))}"


def _feature_rows(value: Any, uids: Sequence[str], field: str, where: str, width: int | None) -> np.ndarray:
    """One dialogue's ``field`` as float32 ``[n_utterances, dim]``, each row checked against ``width``."""
    if isinstance(value, np.ndarray) and value.ndim == 2:
        rows: Sequence[Any] = list(value)
    elif isinstance(value, (list, tuple, np.ndarray)):
        rows = list(value)
    else:
        raise DataError(
            f"{where}: {field} must be a list or array of per-utterance vectors, got {type(value).__name__}"
        )
    if len(rows) != len(uids):
        first_bad = uids[len(rows)] if len(rows) < len(uids) else f"extra row {len(uids)}"
        raise DataError(
            f"{where}: {field} has {len(rows)} rows but the dialogue has {len(uids)} labelled utterances "
            f"(first without a match: {first_bad})"
        )
    out = []
    for uid, row in zip(uids, rows):
        try:
            vec = np.asarray(row, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"{where}, utterance {uid!r}: {field} is not a numeric vector") from None
        if vec.ndim != 1 or (width is not None and vec.shape[0] != width):
            expected = f"[{width}]" if width is not None else "a 1-d vector"
            raise DataError(
                f"{where}, utterance {uid!r}: {field} has shape {list(vec.shape)}, expected {expected}"
            )
        width = vec.shape[0]
        out.append(vec)
    return np.stack(out) if out else np.zeros((0, width or 0), dtype=np.float32)


def _per_utterance(items: dict[str, Any], field: str, dialogue: Any, n: int, where: str) -> list[Any]:
    """A non-feature field (ids, speakers, sentences) of one dialogue, checked to have ``n`` entries."""
    value = list(items[field][dialogue])
    if len(value) != n:
        raise DataError(
            f"{where}: {field} has {len(value)} entries but the dialogue has {n} labelled utterances"
        )
    return value


def _dialogue_utterances(
    items: dict[str, Any],
    layout: PickleLayout,
    dialogue: Any,
    labels: tuple[str, ...],
    modalities: Sequence[str],
    widths: dict[str, int],
    source: str,
) -> list[Utterance]:
    """The records of one dialogue; ``widths`` (field -> dim) is filled from the first dialogue read."""
    where = f"{source}: dialogue {dialogue!r}"
    raw_labels = list(items["labels"][dialogue])
    n = len(raw_labels)
    utt_ids = _per_utterance(items, "ids", dialogue, n, where) if "ids" in items else list(range(n))
    uids = [layout.uid.format(dialogue=dialogue, utt=u) for u in utt_ids]
    label_idx = [
        _label_index(v, len(labels), f"{where}, utterance {uid!r}") for uid, v in zip(uids, raw_labels)
    ]
    speakers = [_speaker_name(s) for s in _per_utterance(items, "speakers", dialogue, n, where)]
    sentences = _per_utterance(items, "sentences", dialogue, n, where) if "sentences" in items else [""] * n
    features: dict[str, np.ndarray] = {}
    for mod in modalities:
        mats = []
        for field in layout.modalities[mod]:
            mat = _feature_rows(items[field][dialogue], uids, field, where, widths.get(field))
            if len(mat):
                widths.setdefault(field, mat.shape[1])
            mats.append(mat)
        # Several fields (COSMIC's four RoBERTa layers) are averaged into one node feature.
        features[mod] = np.mean(mats, axis=0, dtype=np.float32) if len(mats) > 1 else mats[0]
    return [
        Utterance(
            uid=uid,
            dialogue=str(dialogue),
            speaker=speakers[i],
            label=label_idx[i],
            features={m: features[m][i : i + 1] for m in modalities},  # one node per modality: [1, dim]
            text=sentences[i].decode("latin1") if isinstance(sentences[i], bytes) else str(sentences[i]),
        )
        for i, uid in enumerate(uids)
    ]


def read_feature_pickle(
    path: str | Path,
    layout_name: str | None,
    *,
    labels: Sequence[str] | None = None,
    modalities: Sequence[str] | None = None,
    dev_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetSplits:
    """Read a community feature pickle of layout ``layout_name`` into train/dev/test records.

    ``modalities`` keeps only those the layout has (default: all of them). Layouts without a dev
    list get one carved from the training dialogues with :func:`carve_dev` (``dev_fraction``,
    ``seed``). ``labels`` renames the classes; by default the layout's label map is used.
    """
    layout = get_layout(layout_name)
    source = str(path)
    items = _unpack(safe_load(path), layout, source)
    _check_split_ids(items, layout, source)
    label_names = tuple(labels) if labels else layout.labels
    wanted = [m for m in (modalities or layout.modalities) if m in layout.modalities]
    widths: dict[str, int] = {}

    def records(dialogues: Sequence[Any]) -> list[Utterance]:
        utts = [
            u
            for d in dialogues
            for u in _dialogue_utterances(items, layout, d, label_names, wanted, widths, source)
        ]
        for utt in utts:
            check_utterance(utt, len(label_names), source)
        return utts

    train_ids, test_ids = items["train"], items["test"]
    if "dev" in items:
        dev_ids = items["dev"]
    else:
        train_ids, dev_ids = carve_dev(train_ids, dev_fraction, seed)
    splits = DatasetSplits(
        name=layout.name,
        labels=label_names,
        train=records(train_ids),
        dev=records(dev_ids),
        test=records(test_ids),
    )
    _check_unique_uids(splits, source)
    return splits


def _check_unique_uids(splits: DatasetSplits, source: str) -> None:
    """Utterance ids identify predictions and drawings, so a repeated one is an error."""
    seen: dict[str, str] = {}
    for split in ("train", "dev", "test"):
        for utt in splits.split(split):
            if utt.uid in seen:
                raise DataError(
                    f"{source}: utterance id {utt.uid!r} appears twice (dialogues {seen[utt.uid]!r} and {utt.dialogue!r})"
                )
            seen[utt.uid] = utt.dialogue


@register_dataset("features_pickle")
def load_features_pickle(cfg: Config) -> DatasetSplits:
    """``data.name=features_pickle``: read ``data.path`` with ``data.layout``."""
    if cfg.data.path is None:
        raise ConfigError(
            "data.path: required with data.name=features_pickle; give the pickle file, e.g. data.path=IEMOCAP_features.pkl"
        )
    return read_feature_pickle(
        cfg.data.path,
        cfg.data.layout,
        labels=cfg.data.labels,
        modalities=cfg.model.modalities,
        dev_fraction=cfg.data.dev_fraction,
        seed=cfg.seed,
    )
