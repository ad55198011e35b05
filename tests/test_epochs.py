"""What both training loops share (sync_tva.epochs): the optimiser-group rule and the loop state's epochs."""

from __future__ import annotations

from conftest import TINY, fit_run
from torch import nn
from transformers import AutoModel

from sync_tva.config import load_config
from sync_tva.epochs import TrainState, parameter_groups
from sync_tva.io import load_torch
from sync_tva.train import build_experiment


def names_in(model: nn.Module, group: dict) -> set[str]:
    ids = {id(p) for p in group["params"]}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def test_graph_model_decays_matrices_only():
    model = build_experiment(load_config(None, [*TINY, "data.demo.n_dialogues=6"])).model
    decayed, kept = (names_in(model, g) for g in parameter_groups(model, 0.01))
    assert decayed | kept == {name for name, _ in model.named_parameters()} and not decayed & kept
    leaf = {name.rsplit(".", 1)[-1] for name in kept}
    assert {"attn_l", "attn_r", "bias", "weight", "in_proj_bias"} <= leaf  # attention vectors, biases, LayerNorm weights
    assert all(".norm" in name for name in kept if name.endswith(".weight"))  # the only undecayed weights are norms'
    assert any(name.endswith("fc.weight") for name in decayed) and all(model.get_parameter(n).ndim >= 2 for n in decayed)


def test_text_encoder_keeps_the_one_dimensional_rule(text_model):
    """Fine-tuning's groups before the shared rule: 1-d parameters undecayed; the shared rule must give the same."""
    encoder = AutoModel.from_pretrained(text_model)
    decayed, kept = (names_in(encoder, g) for g in parameter_groups(encoder, 0.01))
    assert kept == {name for name, p in encoder.named_parameters() if p.ndim < 2} and decayed


def test_a_norm_module_is_never_decayed_whatever_its_shape():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.GroupNorm(2, 4))
    model[1].weight = nn.Parameter(model[1].weight.detach().reshape(2, 2))  # a 2-d norm weight still is a norm's
    decayed, kept = (names_in(model, g) for g in parameter_groups(model, 0.1))
    assert decayed == {"0.weight"} and kept == {"0.bias", "1.weight", "1.bias", "2.weight", "2.bias"}


def test_fit_writes_the_two_groups(tmp_path):
    fit_run(tmp_path, ["train.epochs=1", "train.weight_decay=0.05"])
    groups = load_torch(tmp_path / "checkpoints" / "last.pt")["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]


def test_epochs_run_after_the_last_finished_one_and_stop_on_patience():
    state = TrainState()
    seen = []
    for epoch, metric in zip(state.epochs(10, patience=2), [0.5, 0.7, 0.6, 0.6, 0.9]):
        seen.append((epoch, state.record(epoch, metric, {"epoch": epoch})))
    assert seen == [(1, True), (2, True), (3, False), (4, False)]  # two epochs without improvement: stop before 5
    assert (state.best_epoch, state.best_metric, state.stale_epochs) == (2, 0.7, 2)
    resumed = TrainState(epoch=3, best_metric=0.7, best_epoch=2, stale_epochs=1)
    assert list(resumed.epochs(5)) == [4, 5]  # no patience: every remaining epoch
