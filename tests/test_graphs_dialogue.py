import dgl
import numpy as np
import pytest
import torch
import yaml

from sync_tva.errors import DataError, SchemaError
from sync_tva.graphs import (
    DialogueGraphBuilder,
    UtteranceGraphBuilder,
    iterate_batches,
    list_dialogue_schemas,
    load_dialogue_schema,
    load_schema,
)
from sync_tva.graphs.dialogue import NODE_TYPE, dialogue_schema_from_dict
from sync_tva.records import DatasetSplits, Utterance, dialogue_units


def builder(past=2, future=1, speakers=True):
    return DialogueGraphBuilder(load_dialogue_schema("dialogue").resolve(past=past, future=future, speakers=speakers))


def edges(g, relation):
    src, dst = g.edges(etype=(NODE_TYPE, relation, NODE_TYPE))
    return sorted(zip(src.tolist(), dst.tolist()))


def test_shipped_schema_loads_by_name_and_path():
    assert "dialogue" in list_dialogue_schemas()
    schema = load_dialogue_schema("dialogue")
    assert [r.name for r in schema.relations] == ["past-same", "past-other", "future-same", "future-other", "self"]
    assert load_dialogue_schema(schema.source) == schema


@pytest.mark.parametrize("speakers", [True, False])
def test_schema_round_trips_through_its_dict_and_resolves_alike(speakers):
    """What a checkpoint stores (to_dict of the resolved schema) resolves to the same relations again."""
    resolved = load_dialogue_schema("dialogue").resolve(past=3, future=1, speakers=speakers)
    again = dialogue_schema_from_dict(resolved.to_dict()).resolve(past=3, future=1, speakers=speakers)
    assert again.relations == resolved.relations and again.name == resolved.name


@pytest.mark.parametrize("past, future", [(0, 0), (1, 0), (2, 1), (3, 3), (50, 50)])
def test_edge_counts_per_window_are_clipped_at_dialogue_ends(past, future):
    sizes = [5, 3]
    g = builder(past, future, speakers=False).build_batch([["a"] * n for n in sizes])
    want_past = sum(min(t, past) for n in sizes for t in range(n))
    want_future = sum(min(n - 1 - t, future) for n in sizes for t in range(n))
    got = {etype[1]: g.num_edges(etype) for etype in g.canonical_etypes}
    assert got.pop("self") == sum(sizes)
    assert got == {k: v for k, v in (("past", want_past), ("future", want_future)) if k in got}
    assert ("past" in got) == (past > 0) and ("future" in got) == (future > 0)


def test_past_and_future_edges_point_at_the_listening_utterance():
    g = builder(past=2, future=1, speakers=False).build_batch([["a", "b", "a", "b"]])
    assert edges(g, "past") == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]  # earlier -> later, at most 2 back
    assert edges(g, "future") == [(1, 0), (2, 1), (3, 2)]  # the next turn only
    assert edges(g, "self") == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_speaker_relations_split_same_and_other():
    g = builder(past=3, future=3).build_batch([["Ana", "Ben", "Ana", "Cleo"]])
    assert edges(g, "past-same") == [(0, 2)]
    assert edges(g, "past-other") == [(0, 1), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert edges(g, "future-same") == [(2, 0)]
    assert edges(g, "future-other") == [(1, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


def test_online_schema_never_looks_ahead():
    schema = load_dialogue_schema("dialogue").resolve(past=4, future=0, speakers=True)
    assert all(r.direction != "future" for r in schema.relations)
    g = DialogueGraphBuilder(schema).build_batch([["a", "b", "a", "b", "a"]])
    for etype in g.canonical_etypes:
        src, dst = g.edges(etype=etype)
        assert bool((src <= dst).all()), etype


def test_one_utterance_dialogues_and_no_edge_across_dialogues():
    dialogues = [["a"], ["a", "b", "a"], ["c"], ["a", "a"]]
    g = builder(past=10, future=10).build_batch(dialogues)
    assert g.batch_size == 4 and g.batch_num_nodes(NODE_TYPE).tolist() == [1, 3, 1, 2]
    owner = np.repeat(np.arange(4), [1, 3, 1, 2])
    for etype in g.canonical_etypes:
        src, dst = g.edges(etype=etype)
        assert (owner[src.numpy()] == owner[dst.numpy()]).all(), etype
    parts = dgl.unbatch(g)
    assert [p.num_edges() for p in parts][0] == 1 and [p.num_edges() for p in parts][2] == 1  # self-loop only
    assert edges(parts[3], "past-same") == [(0, 1)] and edges(parts[3], "past-other") == []


def test_empty_batch_and_unresolved_schema():
    assert builder().build_batch([]).num_nodes() == 0
    with pytest.raises(SchemaError, match="no window"):
        DialogueGraphBuilder(load_dialogue_schema("dialogue"))
    with pytest.raises(SchemaError, match="leave no relation"):
        dialogue_schema_from_dict({"relations": {"p": {"direction": "past"}}}).resolve(past=0, future=0, speakers=True)


@pytest.mark.parametrize(
    "relations, message",
    [
        ({"p": {"direction": "back"}}, r"relations\.p\.direction: 'back'"),
        ({"p": {"direction": "past", "speaker": "me"}}, r"relations\.p\.speaker: 'me'"),
        ({"s": {"direction": "self", "speaker": "same"}}, r"relations\.s\.speaker"),
        ({"p": {"direction": "past", "window": 3}}, r"relations\.p: unknown keys \['window'\]"),
        ({}, r"relations: expected a non-empty mapping"),
    ],
)
def test_schema_errors_name_the_key(tmp_path, relations, message):
    path = tmp_path / "ctx.yaml"
    path.write_text(yaml.safe_dump({"name": "ctx", "relations": relations}))
    with pytest.raises(SchemaError, match=message):
        load_dialogue_schema(path)
    with pytest.raises(SchemaError, match="unknown dialogue schema 'nope'"):
        load_dialogue_schema("nope")


def utt(uid, dialogue, speaker="a", label=0):
    return Utterance(uid, dialogue, speaker, label, {"text": np.ones((2, 4), np.float32)})


def test_dialogue_units_group_runs_and_refuse_a_split_dialogue():
    utts = [utt("u0", "d1"), utt("u1", "d1"), utt("u2", "d2"), utt("u3", "d3"), utt("u4", "d3")]
    assert dialogue_units(utts) == [[0, 1], [2], [3, 4]]
    data = DatasetSplits("x", ("a",), utts, [], [])
    assert [[u.uid for u in d] for d in data.dialogues("train")] == [["u0", "u1"], ["u2"], ["u3", "u4"]]
    with pytest.raises(DataError, match=r"dialogue 'd1' starts at position 0 and again at 3 \(utterance 'u9'\)"):
        dialogue_units(utts[:3] + [utt("u9", "d1")] + utts[3:])


def test_dialogue_batches_hold_whole_dialogues_with_their_graph():
    utts = [utt(f"d{d}u{t}", f"d{d}", "ab"[t % 2], label=t) for d, n in enumerate([3, 1, 4, 2]) for t in range(n)]
    ub = UtteranceGraphBuilder(load_schema("utterance").restrict(["text"]), {"text": 4})
    batches = list(iterate_batches(utts, ub, 5, shuffle_seed=3, dialogue_builder=builder(past=1, future=0)))
    seen = [uid for b in batches for uid in b.uids]
    assert sorted(seen) == sorted(u.uid for u in utts)
    for b in batches:
        by_dialogue = [uid.split("u")[0] for uid in b.uids]
        assert all(by_dialogue.count(d) == {"d0": 3, "d1": 1, "d2": 4, "d3": 2}[d] for d in by_dialogue)  # whole dialogues
        assert b.dialogue.num_nodes() == len(b.uids) == b.graph.batch_size
        assert b.dialogue.batch_size == len(set(by_dialogue))
    plain = list(iterate_batches(utts, ub, 5, shuffle_seed=3))
    assert all(b.dialogue is None for b in plain) and [len(b.uids) for b in plain] == [5, 5]
    moved = batches[0].to("cpu")
    assert moved.dialogue is not None and torch.equal(moved.labels, batches[0].labels)
