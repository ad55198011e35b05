"""The fused GAT layer against the per-relation reference, and the whole model against a dense reference."""

import dgl
import pytest
import torch
from conftest import random_features

from sync_tva.config import ModelConfig, load_config
from sync_tva.errors import ConfigError
from sync_tva.graphs import UtteranceGraphBuilder, load_schema, schema_from_dict
from sync_tva.models import AttentionPooling, HeteroGAT, HeteroGATLayer, SyncTVA
from sync_tva.models.dense_reference import dense_logits
from sync_tva.models.fused_gat import FusedHeteroGATLayer

DIMS = {"text": 6, "audio": 4, "visual": 5}
HIDDEN, HEADS = 8, 2

# Directed A-T only (audio only sends), an aligned T-V both ways, and edges inside text.
CUSTOM = {
    "name": "custom",
    "node_types": ["text", "audio", "visual"],
    "directed": True,
    "relations": {"A-T": {"src": "audio", "dst": "text"}, "T-V": {"src": "text", "dst": "visual", "pattern": "aligned", "window": 0.3}},
    "intra": {"text": {"pattern": "aligned", "window": 0.2}},
}

BATCHES = {
    "mixed": [
        {"text": 5, "audio": 3, "visual": 2},
        {"text": 2, "audio": 0, "visual": 4},  # no audio: A-V, V-A, A-T, T-A empty here
        {"text": 7, "audio": 4, "visual": 0},  # no visual
        {"text": 1, "audio": 1, "visual": 1},  # single node per modality
        {"text": 1},  # single text node, nothing else: intra text has no edge
    ],
    "no_visual_at_all": [{"text": 3, "audio": 2}, {"text": 1, "audio": 4}],  # a modality with zero nodes in the batch
}


def schema_named(name: str):
    return schema_from_dict(CUSTOM) if name == "custom" else load_schema(name)


def batch(rng, schema, counts):
    return UtteranceGraphBuilder(schema, dims=DIMS).build_batch([random_features(rng, c, DIMS) for c in counts])


def layer_pair(schema, seed: int = 0):
    """A per-relation and a fused layer with the same, non-trivial weights (biases and norms perturbed)."""
    torch.manual_seed(seed)
    reference = HeteroGATLayer(schema, HIDDEN, num_heads=HEADS, dropout=0.0)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.3 * torch.randn_like(p))
    fused = FusedHeteroGATLayer(schema, HIDDEN, num_heads=HEADS, dropout=0.0)
    fused.load_state_dict(reference.state_dict())
    return reference, fused


@pytest.mark.parametrize("schema_name", ["utterance", "aligned", "custom"])
def test_same_parameter_names_and_initial_values(schema_name):
    schema = schema_named(schema_name)
    torch.manual_seed(3)
    reference = HeteroGATLayer(schema, HIDDEN, num_heads=HEADS).state_dict()
    torch.manual_seed(3)
    fused = FusedHeteroGATLayer(schema, HIDDEN, num_heads=HEADS).state_dict()
    assert list(fused) == list(reference)
    for name in reference:  # same shapes, same draws in the same order: GATConv's xavier-normal statistics
        assert torch.equal(fused[name], reference[name]), name


@pytest.mark.parametrize("schema_name", ["utterance", "aligned", "custom"])
@pytest.mark.parametrize("batch_name", sorted(BATCHES))
def test_fused_layer_equals_per_relation_layer(rng, schema_name, batch_name):
    schema = schema_named(schema_name)
    g = batch(rng, schema, BATCHES[batch_name])
    reference, fused = layer_pair(schema)
    h = {t: torch.randn(g.num_nodes(t), HIDDEN) for t in schema.node_types}
    inputs = [{t: x.clone().requires_grad_() for t, x in h.items()} for _ in range(2)]
    upstream = {t: torch.randn(g.num_nodes(t), HIDDEN) for t in schema.node_types}  # a loss that weighs every output
    results = []
    for layer, x in zip((reference, fused), inputs):
        out, attention = layer(g, x, return_attention=True)
        loss = sum((out[t] * upstream[t]).sum() for t in out)
        layer.zero_grad()
        loss.backward()
        results.append((out, attention, {n: p.grad for n, p in layer.named_parameters()}))
    (out_r, att_r, grad_r), (out_f, att_f, grad_f) = results
    for t in schema.node_types:
        torch.testing.assert_close(out_f[t], out_r[t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(inputs[1][t].grad, inputs[0][t].grad, atol=1e-5, rtol=1e-5)
    assert list(att_f) == list(att_r)  # every relation, in the graph's order
    for etype, a in att_r.items():
        assert att_f[etype].shape == a.shape == (g.num_edges(etype), HEADS, 1)
        torch.testing.assert_close(att_f[etype], a, atol=1e-6, rtol=1e-5)
    assert set(grad_f) == set(grad_r)
    for name, grad in grad_r.items():
        other = grad_f[name]
        if grad is None:  # a relation without edges gives no gradient to its attention vectors
            assert other is None or torch.count_nonzero(other) == 0, name
        else:
            torch.testing.assert_close(other, grad, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("schema_name", ["utterance", "aligned"])
def test_stacks_agree_and_share_state_dicts(rng, schema_name):
    schema = load_schema(schema_name)
    g = batch(rng, schema, BATCHES["mixed"])
    torch.manual_seed(1)
    reference = HeteroGAT(schema, HIDDEN, 2, num_heads=HEADS, dropout=0.0, impl="per_relation")
    fused = HeteroGAT(schema, HIDDEN, 2, num_heads=HEADS, dropout=0.0, impl="fused")
    fused.load_state_dict(reference.state_dict())
    assert all(isinstance(layer, FusedHeteroGATLayer) for layer in fused.layers)
    h = {t: torch.randn(g.num_nodes(t), HIDDEN) for t in schema.node_types}
    out_r, att_r = reference(g, h, return_attention=True)
    out_f, att_f = fused(g, h, return_attention=True)
    for t in h:
        torch.testing.assert_close(out_f[t], out_r[t], atol=1e-5, rtol=1e-5)
    for layer_r, layer_f in zip(att_r, att_f, strict=True):
        for etype in layer_r:
            torch.testing.assert_close(layer_f[etype], layer_r[etype], atol=1e-6, rtol=1e-5)


def test_fused_layer_carries_non_receiving_types_and_handles_edgeless_graphs(rng):
    schema = schema_from_dict(CUSTOM)
    g = batch(rng, schema, BATCHES["mixed"])
    _, fused = layer_pair(schema)
    h = {t: torch.randn(g.num_nodes(t), HIDDEN) for t in schema.node_types}
    out, _ = fused(g, h)
    assert out["audio"] is h["audio"]  # audio only sends
    assert not torch.allclose(out["text"], h["text"])
    single = load_schema("utterance").restrict(["text"])  # no relation at all: the builder's placeholder only
    g1 = batch(rng, single, [{"text": 3}])
    layer = FusedHeteroGATLayer(single, HIDDEN, num_heads=HEADS)
    x = {"text": torch.randn(3, HIDDEN)}
    out, attention = layer(g1, x, return_attention=True)
    assert out["text"] is x["text"] and attention == {}


def test_attention_dropout_keeps_the_layout_and_drops(rng):
    schema = load_schema("utterance")
    g = batch(rng, schema, BATCHES["mixed"])
    layer = FusedHeteroGATLayer(schema, HIDDEN, num_heads=HEADS, dropout=0.0, attn_dropout=0.5).train()
    h = {t: torch.randn(g.num_nodes(t), HIDDEN) for t in schema.node_types}
    _, attention = layer(g, h, return_attention=True)
    dropped = torch.cat([a.flatten() for a in attention.values()])
    assert (dropped == 0).float().mean() > 0.3  # about half the coefficients dropped, the rest scaled by 2
    assert dropped.max() > 1.0


def model_cfg(**overrides) -> ModelConfig:
    base = dict(hidden=HIDDEN, heads=HEADS, gat_layers=2, normalize="none")
    return ModelConfig(**{**base, **overrides})


@pytest.mark.parametrize(
    "schema_name, overrides",
    [
        ("utterance", {}),
        ("utterance", {"gat_impl": "per_relation"}),
        ("aligned", {}),
        ("custom", {"caf": False}),
        ("utterance", {"msde": False, "gat_layers": 1}),
    ],
)
def test_model_forward_equals_dense_reference(rng, schema_name, overrides):
    schema = schema_named(schema_name)
    torch.manual_seed(0)
    model = SyncTVA(schema, DIMS, n_classes=5, cfg=model_cfg(**overrides)).eval()
    with torch.no_grad():  # move every parameter off its initial value (zero biases, unit norms)
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    for counts in BATCHES.values():
        g = batch(rng, schema, counts)
        with torch.no_grad():
            logits = model(g).logits
        reference = dense_logits(model, g)
        assert logits.shape == reference.shape == (len(counts), 5)
        torch.testing.assert_close(logits, reference, atol=1e-4, rtol=1e-4)


def test_dense_reference_refuses_training_mode(rng):
    model = SyncTVA(load_schema("utterance"), DIMS, n_classes=3, cfg=model_cfg())
    with pytest.raises(ValueError, match="eval"):
        dense_logits(model, batch(rng, load_schema("utterance"), BATCHES["mixed"]))


def test_gat_impl_switch():
    schema = load_schema("utterance")
    assert load_config(None, []).model.gat_impl == "fused"
    per_relation = SyncTVA(schema, DIMS, 3, model_cfg(gat_impl="per_relation"))
    fused = SyncTVA(schema, DIMS, 3, model_cfg())
    assert all(type(layer) is HeteroGATLayer for layer in per_relation.gat.layers)
    assert all(type(layer) is FusedHeteroGATLayer for layer in fused.gat.layers)
    fused.load_state_dict(per_relation.state_dict())  # checkpoints of either load into the other
    with pytest.raises(ConfigError, match="gat_impl"):
        load_config(None, ["model.gat_impl=sparse"])
    with pytest.raises(ValueError, match="unknown GAT implementation"):
        HeteroGAT(schema, HIDDEN, 1, num_heads=HEADS, impl="sparse")


def test_attention_pooling_equals_dgl_readout(rng):
    """Pooling now runs on segment ops; DGL's own readout over the same scores is the reference."""
    g = batch(rng, load_schema("utterance"), BATCHES["mixed"])
    pool = AttentionPooling(HIDDEN)
    for ntype in ("audio", "visual"):  # both have utterances without nodes
        h = torch.randn(g.num_nodes(ntype), HIDDEN)
        summary, weights = pool(g, h, ntype)
        with g.local_scope():
            g.nodes[ntype].data["h"], g.nodes[ntype].data["s"] = h, pool.score(h)
            g.nodes[ntype].data["w"] = dgl.softmax_nodes(g, "s", ntype=ntype)
            torch.testing.assert_close(weights, g.nodes[ntype].data["w"])
            torch.testing.assert_close(summary, dgl.sum_nodes(g, "h", weight="w", ntype=ntype))
