"""Community feature pickles: the layout table, every layout, validation errors, the dev-split policy, the configs.

Each test writes small pickles in the exact layout the field's files use (dicts keyed by dialogue
id, lists of per-utterance numpy vectors, id lists for the splits) at pickle protocol 2, as the
Python-2 era files are. Besides the hand-written files, every entry of ``layouts.yaml`` gets a
file generated from the entry itself, so a new layout is tested the moment it is added.
"""

from __future__ import annotations

import copy
import pickle
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sync_tva.config import load_config
from sync_tva.data import IEMOCAP_LABELS, MELD_LABELS
from sync_tva.data.pickles import LAYOUTS, PickleLayout, get_layout, list_layouts, read_feature_pickle
from sync_tva.data.pickles.layouts import LAYOUT_TABLE, layouts_from_table, load_layout_table
from sync_tva.data.splits import carve_dev
from sync_tva.errors import ConfigError, DataError, UnknownNameError
from sync_tva.features import load_dataset
from sync_tva.metrics import Metrics
from sync_tva.train.experiment import build_experiment
from sync_tva.train.loop import evaluate, train_one_epoch
from sync_tva.train.losses import make_loss

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_MODEL = [
    "model.hidden=16",
    "model.heads=2",
    "train.batch_size=64",
]
N_SPEAKERS = 9  # MELD pickles encode speakers as 9-d one-hot vectors


@dataclass
class Corpus:
    """Dialogues in the field's dict-of-lists form, before they are packed into a layout's tuple.

    Labels follow ``text symbol + 3 * audio symbol`` (6 classes): text alone leaves two candidates
    per utterance, text with audio (or visual, which repeats the audio symbol) settles it.
    """

    dialogues: list
    labels: dict = field(default_factory=dict)
    feats: dict = field(default_factory=dict)  # modality -> {dialogue: [n_utt vectors]}
    sentences: dict = field(default_factory=dict)


def make_corpus(
    dialogues: list, dims: dict[str, int], seed: int = 0, turns: tuple[int, int] = (3, 7)
) -> Corpus:
    """A corpus whose labels reward fusing text with audio or visual; Gaussian noise around prototypes."""
    rng = np.random.default_rng(seed)
    protos = {m: rng.normal(size=(3, d)) * 1.5 for m, d in dims.items()}
    corpus = Corpus(dialogues=list(dialogues), feats={m: {} for m in dims})
    for d in dialogues:
        n = int(rng.integers(turns[0], turns[1] + 1))
        t, a = rng.integers(0, 3, size=n), rng.integers(0, 2, size=n)
        corpus.labels[d] = [int(x) for x in t + 3 * a]
        symbols = {"text": t, "audio": a, "visual": a}
        for m, d_m in dims.items():
            sym = symbols.get(m, t)
            corpus.feats[m][d] = [(protos[m][s] + rng.normal(size=d_m)).astype(np.float32) for s in sym]
        corpus.sentences[d] = [f"utterance {i} of {d}" for i in range(n)]
    return corpus


def one_hot_speakers(n: int) -> list[list[int]]:
    return [[1 if k == i % 2 else 0 for k in range(N_SPEAKERS)] for i in range(n)]


def split_ids(ids: list, n_test: int, n_dev: int = 0) -> tuple[list, list, list]:
    return (
        ids[: len(ids) - n_test - n_dev],
        ids[len(ids) - n_test - n_dev : len(ids) - n_test],
        ids[len(ids) - n_test :],
    )


def iemocap_tuple(n_dialogues: int = 10, seed: int = 0) -> tuple:
    """IEMOCAP_features.pkl: (ids, speakers, labels, text 100, audio 100, visual 512, sentences, train, test)."""
    vids = [f"Ses0{1 + i // 5}F_impro{i:02d}" for i in range(n_dialogues)]
    c = make_corpus(vids, {"text": 100, "audio": 100, "visual": 512}, seed)
    ids = {v: [f"{v}_F{i:03d}" for i in range(len(c.labels[v]))] for v in vids}
    speakers = {v: ["MF"[i % 2] for i in range(len(c.labels[v]))] for v in vids}
    train, _, test = split_ids(vids, n_test=max(2, n_dialogues // 5))
    return (
        ids,
        speakers,
        c.labels,
        c.feats["text"],
        c.feats["audio"],
        c.feats["visual"],
        c.sentences,
        train,
        test,
    )


def meld_raw_tuple(visual: bool) -> tuple:
    """MELD_features_raw.pkl (9-tuple) or MELD_features_raw1.pkl (10-tuple, with visual 342)."""
    vids = list(range(8))
    dims = {"text": 600, "audio": 300, **({"visual": 342} if visual else {})}
    c = make_corpus(vids, dims, seed=1)
    ids = {v: list(range(len(c.labels[v]))) for v in vids}
    speakers = {v: one_hot_speakers(len(c.labels[v])) for v in vids}
    sentiment = {v: [0] * len(c.labels[v]) for v in vids}
    train, _, test = split_ids(vids, n_test=2)
    mods = (c.feats["text"], c.feats["audio"]) + ((c.feats["visual"],) if visual else ())
    return (ids, speakers, c.labels) + mods + (c.sentences, train, test, sentiment)


def roberta_layers(c: Corpus) -> tuple:
    """COSMIC's four RoBERTa layers: the corpus's text feature with a layer-specific offset."""
    return tuple({v: [x + k for x in rows] for v, rows in c.feats["text"].items()} for k in range(4))


def meld_roberta_tuple() -> tuple:
    """meld_features_roberta.pkl: (speakers, emotion, sentiment, r1..r4 1024, sentences, train, test, valid)."""
    vids = list(range(9))
    c = make_corpus(vids, {"text": 1024}, seed=2)
    speakers = {v: one_hot_speakers(len(c.labels[v])) for v in vids}
    sentiment = {v: [1] * len(c.labels[v]) for v in vids}
    train, dev, test = split_ids(vids, n_test=2, n_dev=2)
    return (speakers, c.labels, sentiment) + roberta_layers(c) + (c.sentences, train, test, dev)


def iemocap_roberta_tuple() -> tuple:
    """iemocap_features_roberta.pkl: (speakers, labels, r1..r4 1024, sentences, train, test, valid)."""
    vids = [f"Ses0{1 + i // 4}M_script{i:02d}" for i in range(9)]
    c = make_corpus(vids, {"text": 1024}, seed=3)
    speakers = {v: ["MF"[i % 2] for i in range(len(c.labels[v]))] for v in vids}
    train, dev, test = split_ids(vids, n_test=2, n_dev=2)
    return (speakers, c.labels) + roberta_layers(c) + (c.sentences, train, test, dev)


def iemocap_multimodal_tuple() -> tuple:
    """iemocap_multimodal_features.pkl: (ids, speakers, labels, r1..r4 1024, audio 1582, visual 342, sentences, train, test)."""
    vids = [f"Ses0{1 + i // 4}F_script{i:02d}" for i in range(8)]
    c = make_corpus(vids, {"text": 1024, "audio": 1582, "visual": 342}, seed=4)
    ids = {v: [f"{v}_M{i:03d}" for i in range(len(c.labels[v]))] for v in vids}
    speakers = {v: ["MF"[i % 2] for i in range(len(c.labels[v]))] for v in vids}
    train, _, test = split_ids(vids, n_test=2)
    return (
        (ids, speakers, c.labels)
        + roberta_layers(c)
        + (c.feats["audio"], c.feats["visual"], c.sentences, train, test)
    )


def meld_multimodal_tuple() -> tuple:
    """meld_multimodal_features.pkl: the iemocap_multimodal order (audio 300) and a trailing sentiment item."""
    vids = list(range(8))
    c = make_corpus(vids, {"text": 1024, "audio": 300, "visual": 342}, seed=5)
    ids = {v: list(range(len(c.labels[v]))) for v in vids}
    speakers = {v: one_hot_speakers(len(c.labels[v])) for v in vids}
    sentiment = {v: [2] * len(c.labels[v]) for v in vids}
    train, _, test = split_ids(vids, n_test=2)
    return (
        (ids, speakers, c.labels)
        + roberta_layers(c)
        + (c.feats["audio"], c.feats["visual"], c.sentences, train, test, sentiment)
    )


WRITERS = {
    "iemocap": iemocap_tuple,
    "meld_raw": lambda: meld_raw_tuple(visual=False),
    "meld_raw_visual": lambda: meld_raw_tuple(visual=True),
    "meld_roberta": meld_roberta_tuple,
    "iemocap_roberta": iemocap_roberta_tuple,
    "iemocap_multimodal": iemocap_multimodal_tuple,
    "meld_multimodal": meld_multimodal_tuple,
}


def write(path: Path, payload: tuple) -> Path:
    with path.open("wb") as fh:
        pickle.dump(payload, fh, protocol=2)
    return path


def test_every_layout_has_a_writer():
    assert sorted(WRITERS) == list_layouts()


# ----------------------------------------------------------------------------------------------
# The layout table: every entry loads from layouts.yaml and reads back a file written from it.


def layout_payload(layout: PickleLayout, n_dialogues: int = 4, seed: int = 0) -> tuple:
    """A tuple written from the layout's own description: its fields in order, its dims, its encodings."""
    rng = np.random.default_rng(seed)
    dialogues = [f"d{i}" for i in range(n_dialogues)]
    sizes = {d: int(rng.integers(2, 5)) for d in dialogues}
    widths = {f: layout.dims[m] for m, group in layout.modalities.items() for f in group}
    train, dev, test = split_ids(dialogues, n_test=1, n_dev=1 if "dev" in layout.fields else 0)
    splits = {"train": train, "dev": dev, "test": test}
    speakers = one_hot_speakers if layout.speakers == "one_hot" else lambda n: ["MF"[i % 2] for i in range(n)]
    per_utterance = {
        "ids": lambda d, n: [f"{d}_u{i}" for i in range(n)],
        "speakers": lambda d, n: speakers(n),
        "labels": lambda d, n: rng.integers(0, len(layout.labels), size=n).tolist(),
        "sentences": lambda d, n: [f"utterance {i} of {d}" for i in range(n)],
        "unused": lambda d, n: [0] * n,
    }
    for name, dim in widths.items():
        per_utterance[name] = lambda d, n, dim=dim: [
            rng.normal(size=dim).astype(np.float32) for _ in range(n)
        ]
    return tuple(
        splits[name] if name in splits else {d: per_utterance[name](d, sizes[d]) for d in dialogues}
        for name in layout.fields
    )


@pytest.mark.parametrize("name", list_layouts())
def test_every_layout_loads_from_the_table_and_round_trips_a_generated_pickle(tmp_path, name):
    layout = get_layout(name)
    assert load_layout_table(LAYOUT_TABLE).get(name) == layout  # the registry holds exactly the YAML entry
    payload = layout_payload(layout)
    item = dict(zip(layout.fields, payload))
    data = read_feature_pickle(write(tmp_path / f"{name}.pkl", payload), name)

    assert data.name == name and data.labels == layout.labels
    assert {u.dialogue for u in data.test} == set(item["test"])
    if "dev" in item:
        assert {u.dialogue for u in data.dev} == set(item["dev"])
    assert {u.dialogue for u in data.train + data.dev} == set(item["train"]) | set(item.get("dev", []))
    utts = data.train + data.dev + data.test
    assert len(utts) == sum(len(v) for v in item["labels"].values())
    for d in item["labels"]:
        for i, utt in enumerate(u for u in utts if u.dialogue == d):
            assert utt.uid == layout.uid.format(dialogue=d, utt=item["ids"][d][i] if "ids" in item else i)
            assert utt.label == item["labels"][d][i]
            assert utt.speaker == (f"speaker{i % 2}" if layout.speakers == "one_hot" else "MF"[i % 2])
            assert utt.text == f"utterance {i} of {d}"
            for mod, group in layout.modalities.items():
                expected = np.mean([item[f][d][i] for f in group], axis=0)
                np.testing.assert_allclose(utt.features[mod], expected[None, :], rtol=1e-6)


def _table_entry(name: str) -> dict:
    """A deep copy of one raw entry of the shipped table, to break on purpose."""
    return copy.deepcopy(next(e for e in yaml.safe_load(LAYOUT_TABLE.read_text()) if e["name"] == name))


def _set(key, value):
    return lambda entry: entry.__setitem__(key, value)


@pytest.mark.parametrize(
    "edit, key",
    [
        (_set("speakers", "letters"), "speakers"),
        (_set("labels", "EMORY_LABELS"), "labels"),
        (_set("uid", "{dialog}_{utt}"), "uid"),
        (_set("dims", {"text": 100, "audio": 100}), "dims"),
        (_set("dims", {"text": 100, "audio": 100, "visual": "512"}), r"dims\.visual"),
        (_set("modalities", {"text": ["text"], "audio": ["audio"], "smell": ["visual"]}), "modalities"),
        (
            _set("modalities", {"text": ["text"], "audio": ["audio"], "visual": ["labels"]}),
            r"modalities\.visual",
        ),
        (lambda e: e["fields"].__setitem__(3, "txt"), r"fields\[3\]"),
        (lambda e: e["fields"].remove("labels"), "fields"),
        (lambda e: e.pop("uid"), "uid"),
        (lambda e: e.__setitem__("speaker", "name"), r"unknown keys \['speaker'\]"),
    ],
)
def test_a_malformed_table_entry_names_the_layout_and_the_key(edit, key):
    entry = _table_entry("iemocap")
    edit(entry)
    with pytest.raises(ConfigError, match=rf"^layouts\.yaml: layout 'iemocap': {key}"):
        layouts_from_table([entry], "layouts.yaml")


def test_a_layout_listed_twice_is_refused():
    with pytest.raises(ConfigError, match=r"layout 'iemocap': name: listed twice"):
        layouts_from_table([_table_entry("iemocap"), _table_entry("iemocap")], "layouts.yaml")


def test_a_table_that_is_not_yaml_names_the_file(tmp_path):
    table = tmp_path / "layouts.yaml"
    table.write_text("- name: [iemocap\n")
    with pytest.raises(ConfigError, match=rf"{table}: not valid YAML"):
        load_layout_table(table)


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_layout_reads_every_utterance_with_one_node_per_modality(tmp_path, layout):
    payload = WRITERS[layout]()
    path = write(tmp_path / f"{layout}.pkl", payload)
    data = load_dataset(
        load_config(None, ["data.name=features_pickle", f"data.path={path}", f"data.layout={layout}"])
    )
    lay = LAYOUTS[layout]
    labels = payload[lay.fields.index("labels")]
    assert sum(len(v) for v in labels.values()) == len(data.train) + len(data.dev) + len(data.test)
    assert data.labels == lay.labels
    assert data.feature_dims() == dict(lay.dims)
    for utt in data.train + data.dev + data.test:
        assert set(utt.features) == set(lay.modalities)
        assert all(arr.shape[0] == 1 and arr.dtype == np.float32 for arr in utt.features.values())
    first = data.train[0]
    dialogue_key = type(payload[lay.fields.index("train")][0])(first.dialogue)
    assert first.label == labels[dialogue_key][0]
    assert first.text == f"utterance 0 of {dialogue_key}"
    assert first.speaker in ("M", "speaker0")
    if "dev" in lay.fields:  # the file's own dev list is used as given
        dev_ids = payload[lay.fields.index("dev")]
        assert sorted({u.dialogue for u in data.dev}) == sorted(str(d) for d in dev_ids)


def test_uids_follow_the_file_ids(tmp_path):
    data = read_feature_pickle(write(tmp_path / "i.pkl", iemocap_tuple()), "iemocap")
    assert data.train[0].uid == f"{data.train[0].dialogue}_F000"
    meld = read_feature_pickle(write(tmp_path / "m.pkl", meld_raw_tuple(visual=False)), "meld_raw")
    assert meld.test[0].uid == f"dia{meld.test[0].dialogue}_utt0"
    assert meld.train[0].speaker == "speaker0" and meld.train[1].speaker == "speaker1"


def test_roberta_layers_are_averaged_into_one_text_node(tmp_path):
    payload = meld_roberta_tuple()
    data = read_feature_pickle(write(tmp_path / "r.pkl", payload), "meld_roberta")
    utt = data.train[0]
    layers = [payload[3 + k][int(utt.dialogue)][0] for k in range(4)]
    np.testing.assert_allclose(utt.features["text"][0], np.mean(layers, axis=0), rtol=1e-6)


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_text_only_model_runs_on_every_layout(tmp_path, layout):
    path = write(tmp_path / f"{layout}.pkl", WRITERS[layout]())
    overrides = [
        "data.name=features_pickle",
        f"data.path={path}",
        f"data.layout={layout}",
        "model.modalities=[text]",
    ]
    exp = build_experiment(load_config(None, overrides + TINY_MODEL))
    assert exp.data.feature_dims() == {
        "text": LAYOUTS[layout].dims["text"]
    }  # other modalities are not loaded
    metrics = evaluate(exp, exp.data.test)
    assert len(metrics.confusion_matrix) == len(LAYOUTS[layout].labels)
    assert int(np.sum(metrics.confusion_matrix)) == len(exp.data.test)  # one prediction per test utterance


def test_text_only_model_runs_on_the_demo_source():
    exp = build_experiment(
        load_config(None, ["model.modalities=[text]", "data.demo.n_dialogues=12"] + TINY_MODEL)
    )
    assert exp.data.feature_dims() == {
        "text": 48,
        "audio": 32,
        "visual": 48,
    }  # the demo always makes all three
    assert len(evaluate(exp, exp.data.test).confusion_matrix) == len(MELD_LABELS)


def test_a_file_read_with_the_wrong_layout_says_so(tmp_path):
    path = write(tmp_path / "i.pkl", iemocap_tuple())
    with pytest.raises(
        DataError, match=r"item 6 \(train ids\) must be a list .* is data.layout=meld_raw the file's layout"
    ):
        read_feature_pickle(path, "meld_raw")


def test_asking_for_a_modality_the_layout_lacks_names_it(tmp_path):
    path = write(tmp_path / "m.pkl", meld_raw_tuple(visual=False))
    cfg = load_config(
        None, ["data.name=features_pickle", f"data.path={path}", "data.layout=meld_raw"] + TINY_MODEL
    )
    with pytest.raises(ConfigError, match="visual"):
        build_experiment(cfg)


# ----------------------------------------------------------------------------------------------
# Label maps: the community files' maps, written out here, must match our constants.


def test_label_constants_match_the_community_label_maps():
    meld_map = {"neutral": 0, "surprise": 1, "fear": 2, "sadness": 3, "joy": 4, "disgust": 5, "anger": 6}
    iemocap_map = {"hap": 0, "sad": 1, "neu": 2, "ang": 3, "exc": 4, "fru": 5}
    assert MELD_LABELS == tuple(sorted(meld_map, key=meld_map.get))
    assert [name[:3] for name in IEMOCAP_LABELS] == sorted(iemocap_map, key=iemocap_map.get)


# ----------------------------------------------------------------------------------------------
# Validation: each error names the file, the dialogue and, where it applies, the utterance.


def _iemocap_with(tmp_path: Path, edit) -> Path:
    payload = list(iemocap_tuple())
    edit(payload)
    return write(tmp_path / "bad.pkl", tuple(payload))


def test_wrong_tuple_length_suggests_layouts(tmp_path):
    path = write(tmp_path / "m.pkl", meld_raw_tuple(visual=True))
    with pytest.raises(
        DataError, match=r"expects a 9-tuple .* found a 10-tuple; layouts of that length: .*meld_raw_visual"
    ):
        read_feature_pickle(path, "iemocap")


def test_split_id_missing_from_a_dict_is_named(tmp_path):
    path = _iemocap_with(tmp_path, lambda p: p[4].pop(p[7][1]))  # drop a train dialogue's audio
    with pytest.raises(
        DataError, match=rf"{path}: dialogue 'Ses01F_impro01' from the train id list is missing from audio"
    ):
        read_feature_pickle(path, "iemocap")


def test_feature_rows_must_match_the_utterances(tmp_path):
    path = _iemocap_with(tmp_path, lambda p: p[3][p[7][0]].pop())
    with pytest.raises(
        DataError,
        match=r"dialogue 'Ses01F_impro00': text has \d+ rows but the dialogue has \d+ labelled utterances",
    ):
        read_feature_pickle(path, "iemocap")


def test_wrong_feature_width_names_the_utterance(tmp_path):
    def edit(p):
        p[5][p[7][2]][1] = np.zeros(511, dtype=np.float32)

    path = _iemocap_with(tmp_path, edit)
    with pytest.raises(
        DataError,
        match=r"dialogue 'Ses01F_impro02', utterance 'Ses01F_impro02_F001': visual has shape \[511\], expected \[512\]",
    ):
        read_feature_pickle(path, "iemocap")


def test_label_outside_the_label_set_names_the_utterance(tmp_path):
    def edit(p):
        p[2][p[8][0]][0] = 6

    path = _iemocap_with(tmp_path, edit)
    with pytest.raises(DataError, match=r"utterance 'Ses02F_impro08_F000': label 6 outside 0..5"):
        read_feature_pickle(path, "iemocap")


def test_non_finite_features_name_the_utterance(tmp_path):
    def edit(p):
        p[3][p[7][0]][2] = np.full(100, np.nan, dtype=np.float32)

    path = _iemocap_with(tmp_path, edit)
    with pytest.raises(DataError, match=r"utterance 'Ses01F_impro00_F002': text features contain NaN"):
        read_feature_pickle(path, "iemocap")


def test_dialogue_in_two_splits_is_refused(tmp_path):
    path = _iemocap_with(tmp_path, lambda p: p[8].append(p[7][0]))
    with pytest.raises(
        DataError, match=r"dialogue 'Ses01F_impro00' is in both the train and the test id lists"
    ):
        read_feature_pickle(path, "iemocap")


def test_speaker_list_must_match_the_utterances(tmp_path):
    path = _iemocap_with(tmp_path, lambda p: p[1][p[7][0]].append("M"))
    with pytest.raises(DataError, match=r"dialogue 'Ses01F_impro00': speakers has \d+ entries"):
        read_feature_pickle(path, "iemocap")


def test_speakers_in_another_encoding_than_the_layout_declares_name_the_utterance(tmp_path):
    path = _iemocap_with(tmp_path, lambda p: p[1].__setitem__(p[7][0], one_hot_speakers(len(p[1][p[7][0]]))))
    with pytest.raises(
        DataError,
        match=r"dialogue 'Ses01F_impro00', utterance 'Ses01F_impro00_F000': speaker \[1, 0, .*\] is not a name; "
        r"data.layout=iemocap writes speakers as names",
    ):
        read_feature_pickle(path, "iemocap")
    meld = list(meld_raw_tuple(visual=False))
    meld[1][meld[6][0]][0] = "Joey"
    with pytest.raises(DataError, match=r"utterance 'dia0_utt0': speaker 'Joey' is not a one-hot vector"):
        read_feature_pickle(write(tmp_path / "m.pkl", tuple(meld)), "meld_raw")


def test_a_repeated_utterance_id_is_refused_by_the_data_registry(tmp_path):
    def edit(p):
        p[0][p[7][1]][0] = p[0][p[7][0]][0]  # the second dialogue reuses the first one's utterance id

    path = _iemocap_with(tmp_path, edit)
    with pytest.raises(DataError, match=r"utterance id 'Ses01F_impro00_F000' appears twice"):
        load_dataset(
            load_config(None, ["data.name=features_pickle", f"data.path={path}", "data.layout=iemocap"])
        )


def test_missing_path_and_unknown_layout_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.path: required"):
        load_dataset(load_config(None, ["data.name=features_pickle", "data.layout=iemocap"]))
    with pytest.raises(ConfigError, match="data.layout: required"):
        read_feature_pickle(tmp_path / "x.pkl", None)
    with pytest.raises(UnknownNameError, match="choose from .*iemocap_roberta"):
        read_feature_pickle(tmp_path / "x.pkl", "iemocap_v2")
    with pytest.raises(DataError, match="not found"):
        read_feature_pickle(tmp_path / "absent.pkl", "iemocap")


# ----------------------------------------------------------------------------------------------
# Dev-split policy: layouts without a dev list carve whole training dialogues, seeded.


def test_carve_dev_is_seeded_sorted_and_order_independent():
    ids = list(range(50))
    train, dev = carve_dev(ids, 0.1, seed=3)
    assert len(dev) == 5 and sorted(train + dev) == ids and not set(train) & set(dev)
    assert carve_dev(reversed(ids), 0.1, seed=3) == (train, dev)  # the file's order does not matter
    assert carve_dev(ids, 0.1, seed=4)[1] != dev  # another seed, another dev set
    assert carve_dev(ids[:3], 0.01, seed=0)[1] and carve_dev(ids[:2], 0.99, seed=0)[0]  # both sides non-empty


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_carve_dev_refuses_degenerate_fractions(fraction):
    with pytest.raises(ConfigError, match="data.dev_fraction"):
        carve_dev(range(10), fraction, seed=0)


def test_reader_carves_dev_from_train_dialogues(tmp_path):
    payload = iemocap_tuple(n_dialogues=30)
    path = write(tmp_path / "i.pkl", payload)
    data = read_feature_pickle(path, "iemocap", dev_fraction=0.2, seed=7)
    _, expected_dev = carve_dev(payload[7], 0.2, seed=7)
    assert sorted({u.dialogue for u in data.dev}) == sorted(expected_dev)
    assert not {u.dialogue for u in data.dev} & {u.dialogue for u in data.train}
    assert {u.dialogue for u in data.test} == set(payload[8])  # the test list is untouched


# ----------------------------------------------------------------------------------------------
# Configs.


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*pickle*.yaml")))
def test_pickle_configs_load(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.data.name == "features_pickle" and cfg.data.layout in LAYOUTS
    assert set(cfg.model.modalities) <= set(LAYOUTS[cfg.data.layout].modalities)


def test_paper_config_loads():
    assert load_config(CONFIGS / "sync_tva_paper.yaml").model.modalities == ["text", "audio", "visual"]


# ----------------------------------------------------------------------------------------------
# Training pays off on a pickle whose labels need text and audio together: the model beats the
# majority class, and fusion beats text only.


def train_and_score(exp, epochs: int) -> Metrics:
    """A few epochs of the package's own training step, then test metrics (no checkpoints, no plots)."""
    optimizer = torch.optim.AdamW(
        exp.model.parameters(), lr=exp.cfg.train.lr, weight_decay=exp.cfg.train.weight_decay
    )
    loss_fn = make_loss("ce", [u.label for u in exp.data.train], len(exp.data.labels))
    for epoch in range(1, epochs + 1):
        train_one_epoch(exp, loss_fn, optimizer, epoch)
    return evaluate(exp, exp.data.test)


@pytest.fixture
def one_thread():
    """One torch thread: on a shared CPU, two threads of a tiny model wait on each other more than they work."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def training_overrides(path: Path) -> list[str]:
    """A tiny seeded model on the iemocap-layout pickle at ``path``, one thread."""
    return TINY_MODEL + [
        "data.name=features_pickle",
        f"data.path={path}",
        "data.layout=iemocap",
        "train.lr=0.005",
        "train.batch_size=16",
        "train.num_threads=1",
        "seed=0",
    ]


@pytest.mark.slow  # a 4-epoch training that must learn
def test_a_trained_model_beats_the_majority_class_on_a_pickle(tmp_path, one_thread):
    path = write(tmp_path / "iemocap.pkl", iemocap_tuple(n_dialogues=24))
    exp = build_experiment(load_config(None, training_overrides(path)))
    majority = Counter(u.label for u in exp.data.train).most_common(1)[0][0]
    baseline = float(np.mean([u.label == majority for u in exp.data.test]))
    accuracy = train_and_score(exp, epochs=4).accuracy
    assert accuracy > baseline + 0.3, (accuracy, baseline)


@pytest.mark.slow
def test_fusion_beats_text_only_on_an_iemocap_pickle(tmp_path, one_thread):
    path = write(tmp_path / "iemocap.pkl", iemocap_tuple(n_dialogues=40))
    scores = {
        name: train_and_score(
            build_experiment(load_config(None, training_overrides(path) + [f"model.modalities={mods}"])),
            epochs=6,
        ).weighted_f1
        for name, mods in (("fusion", "[text,audio,visual]"), ("text", "[text]"))
    }
    print(
        f"IEMOCAP-layout pickle, test weighted F1: fusion {scores['fusion']:.3f}, text only {scores['text']:.3f}"
    )
    assert scores["fusion"] > 0.85, scores
    assert scores["fusion"] > scores["text"] + 0.25, scores
