"""sync_tva.viz: attention tables, GraphML, drawings, edge ablation, the command and TensorBoard images.

One tiny run is trained per module (a few seconds) and shared by every test.
"""

from __future__ import annotations

import collections
import dataclasses
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from conftest import TINY, run_command
from matplotlib.offsetbox import AnnotationBbox
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sync_tva.config import load_config
from sync_tva.inference import load_run
from sync_tva.records import Utterance
from sync_tva.train.experiment import Experiment, build_experiment
from sync_tva.viz import (
    draw_attention,
    edge_influence,
    extract_attention,
    read_graphml,
    relation_influence,
    save_figure,
    select_edges,
    write_graphml,
)
from sync_tva.viz.__main__ import main
from sync_tva.viz.draw import node_positions

TINY_RUN = [
    "train.epochs=2",
    "data.demo.n_dialogues=30",
    "model.hidden=16",
    "model.heads=2",
    "train.num_threads=1",  # a busy 2-core machine trains many times slower with more threads
]
GROUP = ["layer", "head", "relation", "dst"]  # one attention distribution per group


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return run_command(tmp_path_factory.mktemp("viz") / "run", *TINY_RUN)


@pytest.fixture(scope="module")
def exp(run_dir) -> Experiment:
    return load_run(run_dir)


def without(utt, modality: str):
    """A copy of ``utt`` whose ``modality`` has 0 nodes (and no spans)."""
    features = dict(utt.features)
    features[modality] = np.zeros((0, utt.features[modality].shape[1]), dtype=np.float32)
    spans = {m: s for m, s in utt.spans.items() if m != modality}
    return dataclasses.replace(utt, uid=f"{utt.uid}_no_{modality}", features=features, spans=spans)


def with_faces(utt: Utterance, seed: int = 0) -> Utterance:
    """A copy of ``utt`` whose visual nodes carry random 48x48 thumbnails and face boxes, as a run made from video has."""
    rng = np.random.default_rng(seed)
    n = len(utt.features["visual"])
    corner = rng.uniform(0.0, 0.4, size=(n, 2))
    boxes = np.concatenate([corner, corner + 0.5], axis=1).astype(np.float32)
    thumbs = rng.integers(0, 256, size=(n, 48, 48, 3), dtype=np.uint8)
    return dataclasses.replace(utt, uid=f"{utt.uid}_faces", boxes={"visual": boxes}, thumbs={"visual": thumbs})


def thumbnail_boxes(fig: plt.Figure) -> list[AnnotationBbox]:
    """The thumbnails a drawing shows, panel by panel in drawing order."""
    return [a for ax in fig.axes for a in ax.get_children() if isinstance(a, AnnotationBbox)]


def graphml_sums(path: Path) -> dict[tuple, float]:
    """Attention into each (destination, relation, head, layer) of a GraphML file read back by networkx."""
    sums: dict[tuple, float] = collections.defaultdict(float)
    for _, dst, data in read_graphml(path).edges(data=True):
        sums[(dst, data["relation"], data["head"], data["layer"])] += data["attention"]
    return sums


def test_gat_attention_into_every_destination_sums_to_one(exp):
    ua = extract_attention(exp, exp.data.test[:1])[0]
    cfg = exp.cfg.model
    assert sorted(ua.gat["layer"].unique()) == list(range(cfg.gat_layers))
    assert sorted(ua.gat["head"].unique()) == list(range(cfg.gat_heads))
    assert set(ua.gat["relation"]) == {e.name for e in exp.schema.edges}
    sums = ua.gat.groupby(GROUP)["attention"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-5)
    # Full edges: every destination node of every relation receives attention.
    n = ua.nodes["modality"].value_counts()
    expected = sum(n[e.dst] for e in exp.schema.edges) * cfg.gat_layers * cfg.gat_heads
    assert len(sums) == expected


def test_msde_caf_and_gates_are_distributions(exp):
    ua = extract_attention(exp, exp.data.test[:1])[0]
    np.testing.assert_allclose(ua.msde.groupby(["modality", "head", "query"])["attention"].sum(), 1.0, atol=1e-5)
    np.testing.assert_allclose(ua.caf.groupby(["query_modality", "head"])["attention"].sum(), 1.0, atol=1e-5)
    assert ua.caf_gates["gate"].sum() == pytest.approx(1.0, abs=1e-5)
    assert ua.nodes.groupby("modality")["pooling"].sum().to_numpy() == pytest.approx(1.0, abs=1e-5)


def test_batch_extraction_equals_one_utterance_at_a_time(exp):
    utts = [exp.data.test[0], without(exp.data.test[1], "audio"), exp.data.test[2]]
    together = extract_attention(exp, utts)
    for utt, joint in zip(utts, together):
        alone = extract_attention(exp, [utt])[0]
        for table in ("nodes", "gat", "msde", "caf", "caf_gates"):
            pd.testing.assert_frame_equal(getattr(joint, table), getattr(alone, table), check_dtype=False, atol=1e-5)


def test_edge_ids_index_the_single_utterance_graph(exp):
    utt = exp.data.test[0]
    ua = extract_attention(exp, [utt])[0]
    g = exp.builder.build(utt.features)
    for etype in g.canonical_etypes:
        rows = ua.gat[(ua.gat["relation"] == etype[1]) & (ua.gat["layer"] == 0) & (ua.gat["head"] == 0)]
        src, dst = g.edges(etype=etype)
        assert (src[rows["edge_id"].to_numpy()].numpy() == rows["src"].to_numpy()).all()
        assert (dst[rows["edge_id"].to_numpy()].numpy() == rows["dst"].to_numpy()).all()


def test_nodes_are_labelled_with_tokens_and_time_spans(exp):
    utt = exp.data.test[0]
    nodes = extract_attention(exp, [utt])[0].nodes
    assert nodes[nodes["modality"] == "text"]["label"].tolist() == utt.tokens
    audio = nodes[nodes["modality"] == "audio"]
    assert audio["start"].to_numpy() == pytest.approx(utt.spans["audio"][:, 0])
    assert audio["label"].iloc[0].endswith("s")


def test_graphml_reads_back_with_attention_summing_to_one(exp, tmp_path):
    ua = extract_attention(exp, exp.data.test[:1])[0]
    path = write_graphml(ua, tmp_path / "u.graphml")
    graph = read_graphml(path)
    assert graph.is_directed() and graph.number_of_edges() == len(ua.gat)
    assert graph.nodes["text:0"]["label"] == exp.data.test[0].tokens[0]
    sums = graphml_sums(path)
    assert len(sums) == len(ua.gat.groupby(GROUP))
    assert min(sums.values()) == pytest.approx(1.0, abs=1e-5) and max(sums.values()) == pytest.approx(1.0, abs=1e-5)


def test_select_edges_keeps_the_strongest_per_destination(exp):
    ua = extract_attention(exp, exp.data.test[:1])[0]
    top = select_edges(ua, layer=-1, head=1, top_k=2)
    assert top.groupby(["relation", "dst"]).size().max() == 2
    full = select_edges(ua, layer=-1, head=1)
    best = full.groupby(["relation", "dst"])["attention"].max()
    assert (top.groupby(["relation", "dst"])["attention"].max() == best).all()
    mean = select_edges(ua, layer=0)
    assert set(mean["head"]) == {-1}
    np.testing.assert_allclose(mean.groupby(["relation", "dst"])["attention"].sum(), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="head 7"):
        select_edges(ua, head=7)


@pytest.mark.parametrize("missing", ["audio", "visual"])
def test_drawings_and_graphml_for_an_utterance_with_a_missing_modality(exp, tmp_path, missing):
    ua = extract_attention(exp, [without(exp.data.test[0], missing)])[0]
    assert missing not in set(ua.nodes["modality"])
    assert missing not in set(ua.gat["src_type"]) | set(ua.gat["dst_type"]) | set(ua.msde["modality"])
    np.testing.assert_allclose(ua.gat.groupby(GROUP)["attention"].sum(), 1.0, atol=1e-5)
    fig = draw_attention(ua, top_k=3, modalities=list(exp.schema.node_types))
    assert f"{missing}\n(no nodes)" in [t.get_text() for ax in fig.axes for t in ax.texts]  # an empty band
    paths = save_figure(fig, tmp_path / "combined")
    paths += save_figure(draw_attention(ua, per_relation=True), tmp_path / "panels", formats=("png",))
    graphml = write_graphml(ua, tmp_path / "u.graphml")
    assert [p.suffix for p in paths] == [".png", ".svg", ".png"]
    assert all(p.stat().st_size > 5000 for p in paths)
    assert (tmp_path / "combined.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "combined.svg").read_text()
    modalities = {d["modality"] for _, d in read_graphml(graphml).nodes(data=True)}
    assert missing not in modalities and len(modalities) == 2


def test_relation_and_edge_ablation_report_probability_changes(exp):
    utt = exp.data.test[0]
    ua = extract_attention(exp, [utt])[0]
    by_relation = relation_influence(exp, utt, ua)
    assert set(by_relation["relation"]) == set(ua.gat["relation"])
    assert by_relation["delta"].is_monotonic_increasing
    intact = (by_relation["p_predicted"] - by_relation["delta"]).to_numpy()
    assert intact == pytest.approx(float(ua.probs[ua.predicted]), abs=1e-4)  # the same model output as extraction
    edges = edge_influence(exp, utt, ua, candidates=5)
    assert len(edges) == 5 and edges["delta"].is_monotonic_increasing
    assert edges["delta"].abs().max() > 0  # removing an attended edge changes the output


def _intact(table: pd.DataFrame) -> np.ndarray:
    """The predicted class's probability before any removal, from every row of an ablation table."""
    return (table["p_predicted"] - table["delta"]).to_numpy()


def test_ablation_on_a_dialogue_model_reads_the_utterance_in_its_dialogue():
    exp = build_experiment(load_config(None, TINY + ["model.name=sync_tva_context", "model.context.heads=2", "train.num_threads=1"]))
    turns = [u for u in exp.data.test if u.dialogue == exp.data.test[0].dialogue]
    utt = turns[1]
    ua = extract_attention(exp, turns)[1]
    by_relation = relation_influence(exp, utt, ua, turns=turns)
    assert set(by_relation["relation"]) == set(ua.gat["relation"])
    assert _intact(by_relation) == pytest.approx(float(ua.probs[ua.predicted]), abs=1e-4)  # the dialogue, as extraction saw it
    edges = edge_influence(exp, utt, ua, candidates=5, turns=turns)
    assert len(edges) == 5 and _intact(edges) == pytest.approx(float(ua.probs[ua.predicted]), abs=1e-4)
    alone = extract_attention(exp, [utt])[0]
    assert _intact(relation_influence(exp, utt, alone)) == pytest.approx(float(alone.probs[alone.predicted]), abs=1e-4)
    assert abs(float(alone.probs[ua.predicted]) - float(ua.probs[ua.predicted])) > 1e-6  # the dialogue changes the output


def test_command_writes_png_svg_and_graphml(run_dir, tmp_path):
    out = tmp_path / "attention"
    done = subprocess.run(
        [sys.executable, "-m", "sync_tva.viz", "--run", str(run_dir), "--out", str(out), "--n", "2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [Path(line) for line in done.stdout.split()]
    assert printed and all(p.is_file() and p.parent == out for p in printed)
    graphml = [p for p in printed if p.suffix == ".graphml"]
    assert len(graphml) == 2 and len([p for p in printed if p.suffix == ".png"]) == 4
    for path in graphml:
        assert all(abs(s - 1.0) < 1e-5 for s in graphml_sums(path).values())


def test_command_draws_named_utterances(run_dir, exp, tmp_path, capsys):
    uid = exp.data.dev[1].uid
    assert main(["--run", str(run_dir), "--split", "dev", "--utterance", uid, "--out", str(tmp_path), "--head", "0"]) == 0
    assert (tmp_path / f"{uid}.png").is_file() and (tmp_path / f"{uid}.graphml").is_file()
    assert str(tmp_path / f"{uid}.svg") in capsys.readouterr().out


@pytest.mark.parametrize("option, value, message", [("--layer", "5", "GAT layers"), ("--layer", "-9", "GAT layers"), ("--head", "7", "GAT heads")])
def test_command_refuses_a_layer_or_head_the_model_lacks(run_dir, tmp_path, capsys, option, value, message):
    assert main(["--run", str(run_dir), "--out", str(tmp_path / "out"), option, value]) == 2
    err = capsys.readouterr().err
    assert f"{option} {value}" in err and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before anything was drawn


def test_command_error_for_an_unknown_utterance_lists_valid_ids(run_dir, exp, capsys):
    assert main(["--run", str(run_dir), "--utterance", "no_such_utt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown utterance id(s) ['no_such_utt'] in split 'test'")
    assert exp.data.test[0].uid in err and "Traceback" not in err


def test_training_logs_the_attention_drawing_per_epoch(run_dir):
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert {"dev/attention", "dev/confusion_matrix"} <= set(events.Tags()["images"])
    assert [image.step for image in events.Images("dev/attention")] == [1, 2]


def test_drawings_show_each_visual_nodes_thumbnail_under_it(exp):
    utt = with_faces(exp.data.test[0])
    thumbs = utt.thumbs["visual"]
    ua = extract_attention(exp, [utt])[0]
    np.testing.assert_array_equal(ua.thumbs["visual"], thumbs)
    np.testing.assert_array_equal(ua.boxes["visual"], utt.boxes["visual"])
    fig = draw_attention(ua, top_k=3)
    shown = thumbnail_boxes(fig)
    assert len(shown) == len(thumbs)
    pos = node_positions(ua.nodes)
    for i, box in enumerate(shown):
        assert np.array_equal(box.offsetbox.get_data(), thumbs[i])  # the very pixels
        assert box.xy == pos[f"visual:{i}"] and box.xybox[1] < 0  # anchored at its node, below it
    spans = ua.nodes.loc[ua.nodes["modality"] == "visual", "label"]
    assert set(spans) <= {t.get_text() for ax in fig.axes for t in ax.texts}  # span labels kept
    plt.close(fig)
    panels = draw_attention(ua, per_relation=True)
    visible = [ax for ax in panels.axes if ax.get_visible()]
    assert len(thumbnail_boxes(panels)) == len(thumbs) * len(visible)
    plt.close(panels)


def test_drawings_without_thumbnails_show_none(exp):
    plain = extract_attention(exp, [exp.data.test[0], without(with_faces(exp.data.test[1]), "visual")])
    assert [(ua.thumbs, ua.boxes) for ua in plain] == [({}, {}), ({}, {})]  # none, or none per node: left out
    for ua in plain:
        fig = draw_attention(ua, top_k=3, modalities=list(exp.schema.node_types))
        assert thumbnail_boxes(fig) == []
        plt.close(fig)
