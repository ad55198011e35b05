import dgl
import numpy as np
import pytest
import torch
from conftest import random_features

from sync_tva.errors import UnknownNameError
from sync_tva.graphs import (
    PLACEHOLDER_ETYPE,
    GraphSchema,
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


def pairs_by_loops(spec: EdgeSpec, n_src: int, n_dst: int) -> set[tuple[int, int]]:
    """The local (src, dst) pairs of one edge type in one utterance, written from the schema's rules.

    ``full``: every pair. ``aligned``: pairs whose relative positions ``(k + 0.5) / n`` differ by at most
    the window, and, between two modalities, each destination's nearest source (the first on a tie).
    Inside one modality a node never sends to itself.
    """
    intra = spec.src == spec.dst
    pairs = set()
    for j in range(n_dst):
        nearest, nearest_dist = None, None
        for i in range(n_src):
            dist = abs((i + 0.5) / n_src - (j + 0.5) / n_dst)
            if spec.pattern == "full" or dist <= spec.window + 1e-9:
                pairs.add((i, j))
            if nearest_dist is None or dist < nearest_dist:
                nearest, nearest_dist = i, dist
        if spec.pattern == "aligned" and not intra and nearest is not None:
            pairs.add((nearest, j))
    if intra:
        pairs -= {(i, i) for i in range(n_src)}
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
    assert set(zip(src.tolist(), dst.tolist())) == pairs_by_loops(spec, n_src, n_dst)


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


def graph_by_loops(schema: GraphSchema, feats: dict[str, np.ndarray], dims: dict[str, int], pooled: bool) -> dgl.DGLHeteroGraph:
    """One utterance's heterograph made with ``dgl.heterograph`` from explicit pairs, without the builder."""
    nodes = {}
    for t in schema.node_types:
        x = feats.get(t, np.zeros((0, dims[t]), np.float32))
        nodes[t] = x.mean(axis=0, keepdims=True) if pooled and len(x) else x
    data = {}
    for spec in schema.edges:
        pairs = sorted(pairs_by_loops(spec, len(nodes[spec.src]), len(nodes[spec.dst])))
        data[spec.src, spec.name, spec.dst] = (
            torch.tensor([i for i, _ in pairs], dtype=torch.int64),
            torch.tensor([j for _, j in pairs], dtype=torch.int64),
        )
    if not data:  # DGL needs an edge type: the builder's empty placeholder on the first node type
        empty = torch.zeros(0, dtype=torch.int64)
        data[schema.node_types[0], PLACEHOLDER_ETYPE, schema.node_types[0]] = (empty, empty)
    g = dgl.heterograph(data, num_nodes_dict={t: len(x) for t, x in nodes.items()})
    for t, x in nodes.items():
        g.nodes[t].data["feat"] = torch.tensor(x, dtype=torch.float32)
    return g


def edges_per_graph(g: dgl.DGLHeteroGraph, etype) -> list[list[tuple[int, int]]]:
    """Sorted local (src, dst) pairs of each graph of a batch, cut by ``batch_num_edges``.

    Every edge must fall inside its own graph's node range, so an edge crossing utterances fails here.
    """
    src_type, _, dst_type = etype
    src, dst = g.edges(etype=etype)
    src_nodes, dst_nodes = g.batch_num_nodes(src_type).tolist(), g.batch_num_nodes(dst_type).tolist()
    out, start, src_offset, dst_offset = [], 0, 0, 0
    for k, n_edges in enumerate(g.batch_num_edges(etype).tolist()):
        s = src[start : start + n_edges].tolist()
        d = dst[start : start + n_edges].tolist()
        local = [(a - src_offset, b - dst_offset) for a, b in zip(s, d)]
        assert all(0 <= a < src_nodes[k] and 0 <= b < dst_nodes[k] for a, b in local), (etype, k, local)
        out.append(sorted(local))
        start, src_offset, dst_offset = start + n_edges, src_offset + src_nodes[k], dst_offset + dst_nodes[k]
    assert start == g.num_edges(etype)
    return out


EQUIVALENCE_SCHEMAS = {
    "utterance": load_schema("utterance"),
    "aligned": load_schema("aligned"),
    "directed": schema_from_dict({  # one way only, mixed patterns, a full pattern inside a modality
        "node_types": ["text", "audio", "visual"],
        "directed": True,
        "relations": {
            "A-T": {"src": "audio", "dst": "text", "pattern": "aligned", "window": 0.1},
            "T-V": {"src": "text", "dst": "visual", "pattern": "full"},
        },
        "intra": {"visual": {"pattern": "full"}, "text": {"pattern": "aligned", "window": 0.3}},
    }),
    "one modality": load_schema("utterance").restrict(["audio"]),  # no edge types: the placeholder
}


def random_utterances(rng: np.random.Generator, n: int) -> list[dict[str, np.ndarray]]:
    """Random node counts, plus the corners: one node per modality, a zero-node and a missing modality."""
    corners = [
        {"text": 1, "audio": 1, "visual": 1},
        {"text": 1, "audio": 0, "visual": 2},
        {"text": 5, "visual": 1},  # no audio key at all
        {"text": 0, "audio": 0, "visual": 0},
    ]
    counts = corners + [{t: int(rng.integers(0, 13)) for t in DIMS} for _ in range(n)]
    utterances = [random_features(rng, c, DIMS) for c in counts]
    return [utterances[k] for k in rng.permutation(len(utterances))]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("builder_cls", [UtteranceGraphBuilder, PooledGraphBuilder])
@pytest.mark.parametrize("schema_name", list(EQUIVALENCE_SCHEMAS))
def test_batch_equals_graphs_built_by_loops(schema_name, builder_cls, seed):
    schema = EQUIVALENCE_SCHEMAS[schema_name]
    batch = random_utterances(np.random.default_rng(seed), 12)
    fast = builder_cls(schema, dims=DIMS).build_batch(batch)
    pooled = builder_cls is PooledGraphBuilder
    reference = dgl.batch([graph_by_loops(schema, feats, DIMS, pooled) for feats in batch])
    assert fast.batch_size == reference.batch_size == len(batch)
    assert fast.ntypes == reference.ntypes
    assert fast.canonical_etypes == reference.canonical_etypes
    for t in reference.ntypes:
        assert fast.batch_num_nodes(t).tolist() == reference.batch_num_nodes(t).tolist(), t
        assert fast.nodes[t].data["feat"].dtype == torch.float32
        assert torch.equal(fast.nodes[t].data["feat"], reference.nodes[t].data["feat"]), t
    for etype in reference.canonical_etypes:
        assert fast.batch_num_edges(etype).tolist() == reference.batch_num_edges(etype).tolist(), etype
        assert edges_per_graph(fast, etype) == edges_per_graph(reference, etype), etype


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
