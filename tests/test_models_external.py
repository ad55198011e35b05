"""A model registered from outside the package trains, resumes, predicts, is drawn and explored: the contract is GraphModel alone."""

from __future__ import annotations

import json

import dgl
import pytest
import torch
from conftest import TINY
from dgl import DGLHeteroGraph
from torch import nn

from sync_tva.config import ModelConfig
from sync_tva.graphs import GraphSchema
from sync_tva.graphs.dialogue import NODE_TYPE, dialogue_schema_from_dict, load_dialogue_schema
from sync_tva.inference import load_model, predict
from sync_tva.models import AttentionMaps, GraphModel, HeteroGAT, ModelOutput, register_model
from sync_tva.predictor import Predictor
from sync_tva.run import main as run_main
from sync_tva.viz.__main__ import main as viz_main
from sync_tva.viz.explorer import page_data


@register_model("test_external_mean_gat")
class MeanGAT(GraphModel):
    """A projection per modality, the package's HeteroGAT, mean pooling and a linear classifier."""

    def __init__(self, schema: GraphSchema, in_dims: dict[str, int], n_classes: int, cfg: ModelConfig):
        super().__init__()
        schema = schema.restrict(cfg.modalities)
        self.modalities = list(schema.node_types)
        self.project = nn.ModuleDict({m: nn.Linear(in_dims[m], cfg.hidden) for m in self.modalities})
        self.gat = HeteroGAT(schema, cfg.hidden, cfg.gat_layers, num_heads=cfg.gat_heads)
        self.classifier = nn.Linear(cfg.hidden * len(self.modalities), n_classes)

    def encode(self, g: DGLHeteroGraph, return_attention: bool) -> tuple[torch.Tensor, AttentionMaps | None]:
        """Utterance vectors [B, M * hidden] (modalities' mean nodes) and, when asked, the maps viz draws."""
        h = {m: self.project[m](g.nodes[m].data["feat"]) for m in self.modalities}
        h, gat = self.gat(g, h, return_attention=return_attention)
        counts = {m: g.batch_num_nodes(m) for m in self.modalities}
        with g.local_scope():
            for m in self.modalities:
                g.nodes[m].data["h"] = h[m]
            pooled = torch.cat([dgl.mean_nodes(g, "h", ntype=m) for m in self.modalities], dim=-1)
        if not return_attention:
            return pooled, None
        uniform = {m: torch.repeat_interleave(1.0 / counts[m].clamp(min=1), counts[m]).unsqueeze(1) for m in self.modalities}
        none = {m: None for m in self.modalities}
        return pooled, AttentionMaps(gat=gat, msde=none, msde_gates=none, pooling=uniform, caf=None)

    def forward(self, g: DGLHeteroGraph, *, dialogue: DGLHeteroGraph | None = None, return_attention: bool = False) -> ModelOutput:
        pooled, maps = self.encode(g, return_attention)
        return ModelOutput(logits=self.classifier(pooled), attention=maps)


@register_model("test_external_dialogue_gat")
class DialogueMeanGAT(MeanGAT):
    """MeanGAT whose utterance vectors attend over their dialogue (the package's HeteroGAT on the context graph)."""

    needs_dialogue = True

    def __init__(self, schema: GraphSchema, in_dims: dict[str, int], n_classes: int, cfg: ModelConfig, *, turns: dict | None = None):
        super().__init__(schema, in_dims, n_classes, cfg)
        given = load_dialogue_schema("dialogue") if turns is None else dialogue_schema_from_dict(turns, "checkpoint: turns")
        self.dialogue_schema = given.resolve(past=2, future=1, speakers=True)
        self.turns = HeteroGAT(self.dialogue_schema.graph_schema(), self.classifier.in_features, 1, num_heads=cfg.gat_heads)

    def checkpoint_parts(self) -> dict:
        return {"turns": self.dialogue_schema.to_dict()}

    def forward(self, g: DGLHeteroGraph, *, dialogue: DGLHeteroGraph | None = None, return_attention: bool = False) -> ModelOutput:
        pooled, maps = self.encode(g, return_attention)
        h, context = self.turns(dialogue, {NODE_TYPE: pooled}, return_attention=return_attention)
        if maps is not None:
            maps.context = context
        return ModelOutput(logits=self.classifier(h[NODE_TYPE]), attention=maps)


def test_register_model_refuses_a_class_outside_the_contract():
    with pytest.raises(TypeError, match="not a subclass of sync_tva.models.GraphModel"):
        register_model("test_external_plain_module")(nn.Linear)


def _train(out, name: str, epochs: int, capsys) -> str:
    """``python -m sync_tva.run`` in this process (where the model is registered); its stdout and stderr."""
    args = ["--out", str(out), *TINY, f"model.name={name}", "train.num_threads=1", f"train.epochs={epochs}"]
    assert run_main(args) == 0
    done = capsys.readouterr()
    return done.out + done.err


@pytest.mark.parametrize("model", [MeanGAT, DialogueMeanGAT])
def test_external_model_trains_resumes_predicts_draws_and_explores(tmp_path, capsys, model):
    run = tmp_path / "run"
    name = "test_external_dialogue_gat" if model.needs_dialogue else "test_external_mean_gat"
    _train(run, name, 1, capsys)
    assert "resumed from" in _train(run, name, 2, capsys)
    assert [h["epoch"] for h in torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state"]["history"]] == [1, 2]
    assert 0 <= json.loads((run / "metrics.json").read_text())["test"]["accuracy"] <= 1

    trained = load_model(run)
    assert type(trained.model) is model  # rebuilt from the checkpoint alone (checkpoint_parts given back)
    test = trained.load_split("test")
    out = predict(trained, test)
    assert out.uids == [u.uid for u in test] and out.probs.shape == (len(test), len(trained.labels))
    result = Predictor(trained).predict_utterances(test[:3], attention=True)
    assert [p.uid for p in result] == [u.uid for u in test[:3]] and result.attention[0].maps.gat

    page = tmp_path / "page.html"
    assert viz_main(["--run", str(run), "--out", str(tmp_path / "drawn"), "--n", "2", "--html", str(page), "--html-max", "10"]) == 0
    drawn = capsys.readouterr().out.split()
    assert sum(p.endswith(".png") for p in drawn) >= 2 and str(page) in drawn
    data = page_data(page)
    assert data["utterances"] and data["layers"] == 2 and data["utterances"][0]["gat"]["attention"]
    heard = [link for u in data["utterances"] for link in (u["context"] or [])]
    assert bool(heard) == model.needs_dialogue  # a dialogue model's page holds the turns each utterance attended to
