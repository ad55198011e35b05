import dgl
import numpy as np
import pytest
import torch
from conftest import random_features

from sync_tva.errors import UnknownNameError
from sync_tva.graphs import (
    PLACEHOLDER_ETYPE,
    PooledGraphBuilder,
    UtteranceGraphBuilder,
    edge_index,
    get_builder,
    list_builders,
    load_schema,
    register_builder,
    schema_from_dict,
)
from sync_tva.graphs.schema import EdgeSpec

DIMS = {"text": 6, "audio": 4, "visual": 5}


def aligned_pairs_by_loops(n_src, n_dst, window, intra):
    """Reference implementation of the aligned pattern, one pair at a time."""
    pairs = set()
    for j in range(n_dst):
        pd = (j + 0.5) / n_dst
        dists = [abs((i + 0.5) / n_src - pd) for i in range(n_src)]
        for i, d in enumerate(dists):
            if d <= window + 1e-9 and not (intra and i == j):
                pairs.add((i, j))
        if not intra:
            pairs.add((int(np.argmin(dists)), j))
    return pairs


@pytest.mark.parametrize("n_src, n_dst", [(1, 1), (3, 7), (16, 4), (32, 9), (5, 0), (0, 5)])
def test_full_pattern_counts(n_src, n_dst):
    src, dst = edge_index(EdgeSpec("r", "text", "audio"), n_src, n_dst)
    assert len(src) == n_src * n_dst
    assert len(set(zip(src.tolist(), dst.tolist()))) == n_src * n_dst


@pytest.mark.parametrize("n_src, n_dst, window", [(10, 10, 0.1), (32, 4, 0.05), (3, 16, 0.2), (7, 5, 1.0), (2, 16, 0.01)])
@pytest.mark.parametrize("intra", [False, True])
def test_aligned_pattern_matches_reference(n_src, n_dst, window, intra):
    if intra:
        n_dst = n_src
    spec = EdgeSpec("r", "text", "text" if intra else "audio", pattern="aligned", window=window)
    src, dst = edge_index(spec, n_src, n_dst)
    assert set(zip(src.tolist(), dst.tolist())) == aligned_pairs_by_loops(n_src, n_dst, window, intra)


def test_aligned_cross_modal_reaches_every_destination():
    src, dst = edge_index(EdgeSpec("r", "text", "audio", pattern="aligned", window=0.01), 2, 16)
    assert set(dst.tolist()) == set(range(16))


def test_single_graph_counts_and_features(rng):
    schema = load_schema("utterance")
    feats = random_features(rng, {"text": 8, "audio": 3, "visual": 5}, DIMS)
    g = UtteranceGraphBuilder(schema).build(feats)
    assert {t: g.num_nodes(t) for t in g.ntypes} == {"text": 8, "audio": 3, "visual": 5}
    assert g.num_edges(("visual", "V-A", "audio")) == 15
    assert g.num_edges(("audio", "A-T", "text")) == 24
    assert g.num_edges(("text", "T-V", "visual")) == 40
    for t in g.ntypes:
        assert torch.equal(g.nodes[t].data["feat"], torch.from_numpy(feats[t]))
        assert g.nodes[t].data["feat"].dtype == torch.float32


def test_zero_node_modality_keeps_type_and_relations(rng):
    feats = random_features(rng, {"text": 4, "audio": 0, "visual": 2}, DIMS)
    g = UtteranceGraphBuilder(load_schema("utterance")).build(feats)
    assert g.num_nodes("audio") == 0
    assert g.nodes["audio"].data["feat"].shape == (0, 4)
    assert g.num_edges(("audio", "A-T", "text")) == 0
    assert g.num_edges(("text", "T-V", "visual")) == 8


def test_missing_modality_uses_dims(rng):
    feats = random_features(rng, {"text": 4}, DIMS)
    g = UtteranceGraphBuilder(load_schema("utterance"), dims=DIMS).build(feats)
    assert g.nodes["visual"].data["feat"].shape == (0, 5)
    with pytest.raises(ValueError, match="no width known for node type 'audio'"):
        UtteranceGraphBuilder(load_schema("utterance")).build(feats)


def test_wrong_width_is_named(rng):
    builder = UtteranceGraphBuilder(load_schema("utterance"), dims=DIMS)
    feats = random_features(rng, {"text": 4, "audio": 2, "visual": 2}, {**DIMS, "audio": 9})
    with pytest.raises(ValueError, match=r"'audio' features have shape \(2, 9\), expected \[n, 4\]"):
        builder.build(feats)


@pytest.mark.parametrize("schema_name", ["utterance", "aligned"])
def test_batch_equals_dgl_batch_of_singles(rng, schema_name):
    builder = UtteranceGraphBuilder(load_schema(schema_name), dims=DIMS)
    batch = [
        random_features(rng, {"text": int(rng.integers(0, 12)), "audio": int(rng.integers(0, 6)), "visual": int(rng.integers(0, 6))}, DIMS)
        for _ in range(9)
    ]
    fast = builder.build_batch(batch)
    reference = dgl.batch([builder.build(f) for f in batch])
    assert fast.batch_size == reference.batch_size == 9
    for t in reference.ntypes:
        assert torch.equal(fast.batch_num_nodes(t), reference.batch_num_nodes(t))
        assert torch.equal(fast.nodes[t].data["feat"], reference.nodes[t].data["feat"])
    for etype in reference.canonical_etypes:
        assert torch.equal(fast.batch_num_edges(etype), reference.batch_num_edges(etype))
        fs, fd = fast.edges(etype=etype)
        rs, rd = reference.edges(etype=etype)
        assert set(zip(fs.tolist(), fd.tolist())) == set(zip(rs.tolist(), rd.tolist()))


def test_unbatch_restores_each_utterance(rng):
    builder = UtteranceGraphBuilder(load_schema("utterance"), dims=DIMS)
    batch = [random_features(rng, {"text": n, "audio": 3 - n % 3, "visual": n % 2}, DIMS) for n in range(1, 6)]
    for feats, g in zip(batch, dgl.unbatch(builder.build_batch(batch))):
        for t in g.ntypes:
            assert torch.equal(g.nodes[t].data["feat"], torch.from_numpy(feats[t]))
        assert g.num_edges(("text", "T-V", "visual")) == feats["text"].shape[0] * feats["visual"].shape[0]


def test_schema_without_edges_gets_placeholder(rng):
    schema = load_schema("utterance").restrict(["text"])
    g = UtteranceGraphBuilder(schema).build_batch([random_features(rng, {"text": 3}, DIMS)] * 2)
    assert g.canonical_etypes == [("text", PLACEHOLDER_ETYPE, "text")]
    assert g.num_edges() == 0 and g.batch_size == 2


def test_two_modality_custom_schema(rng):
    schema = schema_from_dict(
        {"node_types": ["text", "audio"], "relations": {"A-T": {"src": "audio", "dst": "text", "pattern": "aligned", "window": 0.2}}}
    )
    g = UtteranceGraphBuilder(schema).build(random_features(rng, {"text": 10, "audio": 5}, DIMS))
    assert g.ntypes == ["audio", "text"]
    assert 0 < g.num_edges(("audio", "A-T", "text")) < 50


def test_pooled_builder_one_node_per_present_modality(rng):
    feats = random_features(rng, {"text": 7, "audio": 0, "visual": 3}, DIMS)
    g = PooledGraphBuilder(load_schema("utterance"), dims=DIMS).build(feats)
    assert {t: g.num_nodes(t) for t in g.ntypes} == {"text": 1, "audio": 0, "visual": 1}
    assert torch.allclose(g.nodes["text"].data["feat"][0], torch.from_numpy(feats["text"].mean(0)))


def test_builder_registry_is_loud():
    assert {"utterance", "pooled"} <= set(list_builders())
    with pytest.raises(UnknownNameError, match="unknown builder 'nope'; registered: pooled, utterance"):
        get_builder("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_builder("utterance")(UtteranceGraphBuilder)


@pytest.mark.parametrize("name", list_builders())
def test_every_registered_builder_batches(rng, name):
    builder = get_builder(name)(load_schema("utterance"), dims=DIMS)
    g = builder.build_batch([random_features(rng, {"text": 3, "audio": 2, "visual": 2}, DIMS)] * 3)
    assert g.batch_size == 3 and all(g.num_nodes(t) > 0 for t in g.ntypes)
