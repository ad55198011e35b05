"""Prefetching workers build the same batches, in the same order, and training with them gives the same model."""

import pytest
import torch
from conftest import TINY

from sync_tva.config import load_config
from sync_tva.graphs import iterate_batches
from sync_tva.train.experiment import build_experiment
from sync_tva.train.loop import train_one_epoch
from sync_tva.train.losses import make_loss


def same_batch(a, b) -> None:
    assert a.uids == b.uids
    assert torch.equal(a.labels, b.labels)
    for g, h in ((a.graph, b.graph), (a.dialogue, b.dialogue)):
        assert (g is None) == (h is None)
        if g is None:
            continue
        assert g.canonical_etypes == h.canonical_etypes
        for etype in g.canonical_etypes:
            for x, y in zip(g.edges(etype=etype, order="eid"), h.edges(etype=etype, order="eid")):
                assert torch.equal(x, y), etype
        for t in g.ntypes:
            assert torch.equal(g.batch_num_nodes(t), h.batch_num_nodes(t))
            for key, value in g.nodes[t].data.items():
                assert torch.equal(value, h.nodes[t].data[key]), (t, key)


@pytest.mark.parametrize("context", [False, True])
@pytest.mark.parametrize("shard", [None, (1, 2)])
def test_workers_build_the_same_batches_in_order(context, shard):
    extra = ["model.name=sync_tva_context", "model.context.heads=2"] if context else []
    exp = build_experiment(load_config(None, TINY + extra + ["train.num_threads=1"]))
    ctx = exp.model.dialogue_builder()
    assert (ctx is not None) == context
    kwargs = dict(shuffle_seed=7, shard=shard, context=ctx)
    inline = list(iterate_batches(exp.data.train, exp.builder, 8, **kwargs))
    prefetched = list(iterate_batches(exp.data.train, exp.builder, 8, workers=2, **kwargs))
    assert len(inline) == len(prefetched) > 2
    for a, b in zip(inline, prefetched):
        same_batch(a, b)


def test_training_with_prefetch_gives_the_same_parameters():
    before = torch.get_num_threads()
    models = []
    try:
        for workers in (0, 1):
            cfg = load_config(None, TINY + ["train.num_threads=1", f"train.prefetch_workers={workers}"])
            exp = build_experiment(cfg)
            loss_fn = make_loss(cfg.train.loss, [u.label for u in exp.data.train], len(exp.data.labels))
            optimizer = torch.optim.AdamW(exp.model.parameters(), lr=cfg.train.lr)
            torch.manual_seed(0)  # dropout draws: the same stream in both runs
            for epoch in range(2):
                train_one_epoch(exp, loss_fn, optimizer, epoch)
            models.append(exp.model.state_dict())
    finally:
        torch.set_num_threads(before)
    for name, value in models[0].items():
        assert torch.equal(value, models[1][name]), name
