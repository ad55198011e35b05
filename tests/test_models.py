import itertools

import pytest
import torch
from conftest import random_features
from dgl.nn import HeteroGraphConv

from sync_tva.config import ModelConfig
from sync_tva.graphs import UtteranceGraphBuilder, load_schema, schema_from_dict
from sync_tva.models import (
    CAF,
    MSDE,
    AttentionPooling,
    HeteroGAT,
    HeteroGATLayer,
    SyncTVA,
    build_model,
    list_models,
)
from sync_tva.train.losses import FocalLoss, make_loss

DIMS = {"text": 6, "audio": 4, "visual": 5}
HIDDEN = 8


def make_batch(rng, counts_list, schema=None):
    schema = schema or load_schema("utterance")
    builder = UtteranceGraphBuilder(schema, dims=DIMS)
    return builder.build_batch([random_features(rng, c, DIMS) for c in counts_list])


COUNTS = [
    {"text": 5, "audio": 3, "visual": 2},
    {"text": 2, "audio": 0, "visual": 4},  # missing audio
    {"text": 7, "audio": 4, "visual": 0},  # missing visual
    {"text": 1, "audio": 1, "visual": 1},
]


def in_sums(attention, dst, n_dst):
    """[n_dst, heads] sum of attention over each destination's incoming edges."""
    return torch.zeros(n_dst, attention.shape[1]).index_add_(0, dst, attention[:, :, 0])


# ---- MSDE ------------------------------------------------------------------------------------


def test_msde_shapes_and_empty_utterances():
    msde = MSDE(6, HIDDEN, num_heads=2, dropout=0.0)
    counts = torch.tensor([3, 0, 5, 0])
    out, att = msde(torch.randn(8, 6), counts, return_attention=True)
    assert out.shape == (8, HIDDEN) and torch.isfinite(out).all()
    assert att.attention.shape == (2, 2, 5, 5)  # only the 2 utterances that have nodes
    # attention rows of real nodes sum to 1 over real keys
    assert torch.allclose(att.attention[0, :, :3, :3].sum(-1), torch.ones(2, 3), atol=1e-5)
    assert 0 < float(att.gate.min()) and float(att.gate.max()) < 1
    assert msde(torch.randn(8, 6), counts)[1] is None  # nothing computed or kept unless asked


def test_msde_is_local_to_each_utterance():
    """Changing one utterance's nodes must not change another utterance's output."""
    torch.manual_seed(0)
    msde = MSDE(6, HIDDEN, num_heads=2, dropout=0.0).eval()
    x, counts = torch.randn(7, 6), torch.tensor([3, 4])
    y = x.clone()
    y[3:] += 10
    assert torch.allclose(msde(x, counts)[0][:3], msde(y, counts)[0][:3], atol=1e-6)
    assert not torch.allclose(msde(x, counts)[0][3:], msde(y, counts)[0][3:])


def test_msde_with_no_nodes_at_all():
    out, att = MSDE(6, HIDDEN, num_heads=2)(torch.randn(0, 6), torch.tensor([0, 0]), return_attention=True)
    assert out.shape == (0, HIDDEN) and att.attention is None and att.gate.shape == (0, HIDDEN)


# ---- hetero GAT ------------------------------------------------------------------------------


def test_gat_attention_sums_to_one_per_destination_and_head(rng):
    schema = load_schema("aligned")
    g = make_batch(rng, COUNTS, schema)
    gat = HeteroGAT(schema, HIDDEN, 2, num_heads=2, dropout=0.0)
    h = {t: torch.randn(g.num_nodes(t), HIDDEN) for t in g.ntypes}
    out, attention = gat(g, h, return_attention=True)
    assert {t: out[t].shape for t in out} == {t: (g.num_nodes(t), HIDDEN) for t in g.ntypes}
    assert len(attention) == 2
    for layer in attention:
        assert set(layer) == set(schema.canonical_etypes)
        for etype, att in layer.items():
            src, dst = g.edges(etype=etype)
            assert att.shape == (len(src), 2, 1)
            sums = in_sums(att, dst, g.num_nodes(etype[2]))
            has_in = g.in_degrees(etype=etype) > 0
            assert torch.allclose(sums[has_in], torch.ones(int(has_in.sum()), 2), atol=1e-5)
            assert torch.all(sums[~has_in] == 0)


@pytest.mark.parametrize("schema_name", ["utterance", "aligned"])
def test_layer_equals_dgl_hetero_graph_conv(rng, schema_name):
    """Second implementation: DGL's own HeteroGraphConv over the same GATConv modules, summed."""
    schema = load_schema(schema_name)
    g = make_batch(rng, COUNTS, schema)
    layer = HeteroGATLayer(schema, HIDDEN, num_heads=2, dropout=0.0).eval()
    h = {t: torch.randn(g.num_nodes(t), HIDDEN) for t in g.ntypes}
    ours, _ = layer(g, h)
    reference = HeteroGraphConv({etype: layer.conv(etype) for etype in schema.canonical_etypes}, aggregate="sum")(g, h)
    for ntype in g.ntypes:
        expected = layer.norms[ntype](h[ntype] + torch.nn.functional.elu(reference[ntype].flatten(1)))
        assert torch.allclose(ours[ntype], expected, atol=1e-6)


def test_node_type_that_only_sends_is_carried_through(rng):
    schema = schema_from_dict(
        {"node_types": ["text", "audio"], "directed": True, "relations": {"A-T": {"src": "audio", "dst": "text"}}}
    )
    g = make_batch(rng, [{"text": 3, "audio": 2}], schema)
    layer = HeteroGATLayer(schema, HIDDEN, num_heads=2, dropout=0.0)
    h = {"text": torch.randn(3, HIDDEN), "audio": torch.randn(2, HIDDEN)}
    out, _ = layer(g, h)
    assert torch.equal(out["audio"], h["audio"])
    assert not torch.allclose(out["text"], h["text"])


def test_zero_gat_layers_is_identity(rng):
    g = make_batch(rng, COUNTS)
    h = {t: torch.randn(g.num_nodes(t), HIDDEN) for t in g.ntypes}
    out, attention = HeteroGAT(load_schema("utterance"), HIDDEN, 0)(g, h, return_attention=True)
    assert all(out[t] is h[t] for t in h) and attention == []


# ---- pooling and CAF -------------------------------------------------------------------------


def test_attention_pooling_sums_to_one_and_zero_for_missing(rng):
    g = make_batch(rng, COUNTS)
    pool = AttentionPooling(HIDDEN)
    h = torch.randn(g.num_nodes("audio"), HIDDEN)
    out, weights = pool(g, h, "audio")
    assert out.shape == (4, HIDDEN) and weights.shape == (g.num_nodes("audio"), 1)
    assert torch.all(out[1] == 0)  # utterance 1 has no audio
    sums = torch.zeros(4).index_add_(0, torch.repeat_interleave(torch.arange(4), g.batch_num_nodes("audio")), weights[:, 0])
    assert torch.allclose(sums[g.batch_num_nodes("audio") > 0], torch.ones(3), atol=1e-6)


def test_caf_gates_ignore_missing_modalities():
    mods = ["text", "audio", "visual"]
    caf = CAF(mods, HIDDEN, num_heads=2, dropout=0.0)
    counts = {"text": torch.tensor([2, 3, 0]), "audio": torch.tensor([1, 0, 0]), "visual": torch.tensor([2, 2, 0])}
    nodes = {m: torch.randn(int(c.sum()), HIDDEN) for m, c in counts.items()}
    summaries = {m: torch.randn(3, HIDDEN) for m in mods}
    fused, att = caf(summaries, nodes, counts, return_attention=True)
    assert fused.shape == (3, HIDDEN) and torch.isfinite(fused).all()
    gates = att.gates
    assert torch.allclose(gates[:2].sum(1), torch.ones(2), atol=1e-6)
    assert gates[1, 1] == 0  # utterance 1 has no audio
    assert torch.all(gates[2] == 0) and torch.all(fused[2] == 0)  # utterance 2 has nothing
    cross = att.cross["text"]  # keys: audio block then visual block
    assert cross.shape == (3, 2, 1 + 2)
    assert torch.allclose(cross[:2].sum(-1), torch.ones(2, 2), atol=1e-5)


# ---- full model ------------------------------------------------------------------------------


def small_cfg(**changes):
    # Inputs here are unit Gaussians; the fitted normaliser has tests of its own (test_models_normalization.py).
    base = dict(hidden=HIDDEN, heads=2, gat_layers=2, dropout=0.0, normalize="none")
    return ModelConfig(**{**base, **changes})


def test_gradients_reach_every_parameter(rng):
    torch.manual_seed(0)
    g = make_batch(rng, COUNTS)
    model = SyncTVA(load_schema("utterance"), DIMS, 7, small_cfg())
    model(g).logits.pow(2).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


def test_return_attention_collects_every_block(rng):
    g = make_batch(rng, COUNTS)
    out = SyncTVA(load_schema("utterance"), DIMS, 7, small_cfg()).eval()(g, return_attention=True)
    maps = out.attention
    assert len(maps.gat) == 2 and all(len(layer) == 6 for layer in maps.gat)
    assert set(maps.msde) == set(maps.pooling) == {"text", "audio", "visual"}
    assert maps.caf.gates.shape == (4, 3)
    assert all(a.shape[:2] == (g.num_edges(e), 2) for layer in maps.gat for e, a in layer.items())


def test_no_module_keeps_attention_between_calls(rng):
    """Attention is a return value: a forward pass must not leave tensors behind on any module."""
    model = SyncTVA(load_schema("utterance"), DIMS, 7, small_cfg()).eval()
    before = {name: set(vars(m)) for name, m in model.named_modules()}
    model(make_batch(rng, COUNTS), return_attention=True)
    model.train()(make_batch(rng, COUNTS))
    after = {name: set(vars(m)) for name, m in model.named_modules()}
    assert after == before


def test_model_registry_builds_the_named_model():
    assert "sync_tva" in list_models()
    model = build_model(load_schema("utterance"), DIMS, 7, small_cfg(name="sync_tva"))
    assert isinstance(model, SyncTVA)
    with pytest.raises(KeyError, match="model.name: unknown model 'nope'; registered: .*sync_tva"):
        build_model(load_schema("utterance"), DIMS, 7, small_cfg(name="nope"))


SUBSETS = [list(s) for r in (1, 2, 3) for s in itertools.combinations(["text", "audio", "visual"], r)]


@pytest.mark.parametrize("modalities", SUBSETS, ids=lambda s: "+".join(s))
@pytest.mark.parametrize("switches", [{}, {"msde": False}, {"caf": False}, {"gat_layers": 0}], ids=["full", "no-msde", "no-caf", "no-gat"])
def test_ablations_and_modality_subsets_train(rng, modalities, switches):
    torch.manual_seed(0)
    schema = load_schema("utterance").restrict(modalities)
    g = make_batch(rng, [{m: c[m] for m in modalities} for c in COUNTS], schema)
    model = SyncTVA(load_schema("utterance"), DIMS, 7, small_cfg(modalities=modalities, **switches))
    logits = model(g).logits
    assert logits.shape == (4, 7) and torch.isfinite(logits).all()
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    # Every block the switches leave on must learn: a parameter without gradient is a dead block.
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"
    blocks = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert ("caf" in blocks) == switches.get("caf", True)
    assert ("gat" in blocks) == (switches.get("gat_layers", 2) > 0 and len(modalities) > 1)


def test_model_rejects_missing_feature_width():
    with pytest.raises(ValueError, match=r"no feature width for modalities \['visual'\]"):
        SyncTVA(load_schema("utterance"), {"text": 6, "audio": 4}, 7, small_cfg())


def test_model_repr_names_components():
    text = repr(SyncTVA(load_schema("utterance"), DIMS, 7, small_cfg()))
    assert "in_dim=6, hidden=8, num_heads=2" in text and "FusedHeteroGATLayer" in text and "modalities=['text'" in text


# ---- losses ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ce", "weighted_ce", "focal"])
def test_losses_are_finite_and_differentiable(name):
    loss_fn = make_loss(name, [0, 0, 0, 1, 2], 3)
    logits = torch.randn(5, 3, requires_grad=True)
    loss = loss_fn(logits, torch.tensor([0, 1, 2, 0, 0]))
    loss.backward()
    assert torch.isfinite(loss) and logits.grad.abs().sum() > 0


def test_focal_with_gamma_zero_is_cross_entropy():
    logits, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    assert torch.allclose(FocalLoss(gamma=0.0)(logits, target), torch.nn.functional.cross_entropy(logits, target))


def test_focal_down_weights_easy_examples():
    logits = torch.tensor([[5.0, 0.0], [0.0, 0.2]])
    target = torch.tensor([0, 0])
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    focal = torch.stack([FocalLoss(2.0)(logits[i : i + 1], target[i : i + 1]) for i in range(2)])
    assert (focal / ce)[0] < (focal / ce)[1]


def test_weighted_ce_weights_rare_classes_up():
    loss_fn = make_loss("weighted_ce", [0] * 8 + [1] * 2, 2)
    assert loss_fn.weight[1] > loss_fn.weight[0]
    assert torch.allclose(loss_fn.weight, torch.tensor([10 / 16, 10 / 4]))
