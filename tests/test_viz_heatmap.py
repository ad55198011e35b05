"""sync_tva.viz.heatmap, the command's view choice and page selection, and the best epoch on curves.png.

Built on a hand-made UtteranceAttention (text 3 nodes, audio 2; an ``aligned`` A-T relation with
a missing pair and a ``full`` T-A relation), so no model is trained here.
"""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from sync_tva.cli.viz import page_utterances, split_relations, verdict
from sync_tva.records import Utterance
from sync_tva.train.logging import plot_curves
from sync_tva.viz import (
    UtteranceAttention,
    caf_matrix,
    dense_relations,
    draw_heatmaps,
    gat_matrix,
    msde_matrix,
)

# A-T (audio -> text), aligned: text:0 hears audio:0; text:1 hears both; text:2 hears audio:1.
ALIGNED = [(0, 0), (0, 1), (1, 1), (1, 2)]  # (src, dst)
HEAD_WEIGHTS = {0: [1.0, 0.0, 1.0, 1.0], 1: [1.0, 0.4, 0.6, 1.0]}  # per head, in ALIGNED order


def gat_rows(layer: int) -> list[tuple]:
    rows = []
    for head, weights in HEAD_WEIGHTS.items():
        rows += [(layer, head, "A-T", "audio", s, "text", d, e, w) for e, ((s, d), w) in enumerate(zip(ALIGNED, weights))]
        full = [(s, d) for d in range(2) for s in range(3)]  # T-A, full: every text node into every audio node
        rows += [(layer, head, "T-A", "text", s, "audio", d, e, [0.5, 0.3, 0.2][s]) for e, (s, d) in enumerate(full)]
    return rows


def make_ua(true: int = 1, predicted: int = 1) -> UtteranceAttention:
    nodes = pd.DataFrame(
        [
            ("text:0", "text", 0, "hello", 0.0, 0.2, 0.3),
            ("text:1", "text", 1, "there", 0.2, 0.4, 0.3),
            ("text:2", "text", 2, "you", 0.4, 0.6, 0.4),
            ("audio:0", "audio", 0, "0.00-0.30s", 0.0, 0.3, 0.5),
            ("audio:1", "audio", 1, "0.30-0.60s", 0.3, 0.6, 0.5),
        ],
        columns=["node", "modality", "index", "label", "start", "end", "pooling"],
    )
    gat = pd.DataFrame(gat_rows(0) + gat_rows(1), columns=["layer", "head", "relation", "src_type", "src", "dst_type", "dst", "edge_id", "attention"])
    msde = []
    for m, n in (("text", 3), ("audio", 2)):
        for h in range(2):
            w = np.full((n, n), 1.0 / n) if h == 0 else np.eye(n)
            msde += [(m, h, q, k, w[q, k]) for q in range(n) for k in range(n)]
    caf = [("text", h, "audio", k, [0.25, 0.75][k]) for h in range(2) for k in range(2)]
    caf += [("audio", h, "text", k, [0.2, 0.3, 0.5][k]) for h in range(2) for k in range(3)]
    return UtteranceAttention(
        uid="d0_u1",
        labels=("neutral", "joy", "anger"),
        true=true,
        predicted=predicted,
        probs=np.array([0.1, 0.83, 0.07]) if predicted == 1 else np.array([0.1, 0.2, 0.7]),
        nodes=nodes,
        gat=gat,
        msde=pd.DataFrame(msde, columns=["modality", "head", "query", "key", "attention"]),
        caf=pd.DataFrame(caf, columns=["query_modality", "head", "key_modality", "key", "attention"]),
        caf_gates=pd.DataFrame({"modality": ["text", "audio"], "gate": [0.6, 0.4]}),
    )


def test_gat_matrix_masks_missing_edges_apart_from_zero_weights():
    m = gat_matrix(make_ua(), "A-T", layer=-1, head=0)
    assert m.rows == ["hello", "there", "you"] and m.cols == ["0.00-0.30s", "0.30-0.60s"]
    assert m.values.shape == (3, 2)
    assert np.isnan(m.values[0, 1]) and np.isnan(m.values[2, 0])  # no edge: masked
    assert m.values[1, 0] == 0.0  # an edge of weight 0 is a value, not a mask
    assert m.values[1, 1] == 1.0 and "layer 1, head 0" in m.title
    mean = gat_matrix(make_ua(), "A-T", layer=0)
    assert mean.values[1].tolist() == pytest.approx([0.2, 0.8])
    np.testing.assert_allclose(np.nansum(mean.values, axis=1), 1.0)


def test_msde_and_caf_matrices():
    ua = make_ua()
    text = msde_matrix(ua, "text", head=1)
    assert text.values.tolist() == np.eye(3).tolist() and text.rows == text.cols == ["hello", "there", "you"]
    np.testing.assert_allclose(msde_matrix(ua, "audio").values, [[0.75, 0.25], [0.25, 0.75]])  # mean of uniform and eye
    caf = caf_matrix(ua)
    assert caf.rows == ["text summary", "audio summary"]
    assert caf.cols == ["T hello", "T there", "T you", "A 0.00-0.30s", "A 0.30-0.60s"]
    assert np.isnan(caf.values[0, :3]).all() and np.isnan(caf.values[1, 3:]).all()  # no query attends to itself
    np.testing.assert_allclose(np.nansum(caf.values, axis=1), 1.0)
    with pytest.raises(ValueError, match="MSDE head 5"):
        msde_matrix(ua, "text", head=5)


def test_dense_relations_and_the_commands_view_choice():
    ua = make_ua()
    assert dense_relations(ua) == ["A-T", "T-A"]  # A-T: 4 of 6 pairs, T-A: 6 of 6
    assert dense_relations(ua, threshold=0.7) == ["T-A"]
    assert split_relations(ua, "auto") == ([], ["A-T", "T-A"])
    sparse = dataclasses.replace(ua, gat=ua.gat[~((ua.gat["relation"] == "A-T") & (ua.gat["dst"] == 1))])  # 2 of 6
    assert split_relations(sparse, "auto") == (["A-T"], ["T-A"])
    assert split_relations(ua, "graph") == (["A-T", "T-A"], [])
    assert split_relations(ua, "heatmap") == ([], ["A-T", "T-A"])
    assert split_relations(ua, "both") == (["A-T", "T-A"], ["A-T", "T-A"])


def test_draw_heatmaps_shares_one_colour_scale_and_hatches_masked_cells(tmp_path):
    fig = draw_heatmaps(make_ua(), head=0)
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2 + 2 + 1  # two relations, MSDE text and audio, CAF
    assert len({id(im.norm) for im in images}) == 1 and images[0].norm.vmax == 1.0
    at = next(ax for ax in fig.axes if ax.get_title().startswith("GAT A-T"))
    assert at.patch.get_hatch() == "////"  # masked cells show this hatched background through
    assert at.get_images()[0].get_array().mask.sum() == 2
    assert "no edge (masked)" in [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    fig.savefig(tmp_path / "h.png")
    plt.close(fig)
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    only = draw_heatmaps(make_ua(), relations=["A-T"], msde=False, caf=False)
    assert len(only.axes[0].get_images()) == 1 and "mean of heads" in only.axes[0].get_title()
    plt.close(only)


def test_verdict_lines_say_right_or_wrong():
    assert verdict(make_ua()) == "d0_u1  true joy  predicted joy  right  p=0.83"
    assert verdict(make_ua(true=1, predicted=2)) == "d0_u1  true joy  predicted anger  wrong  p=0.70"


def test_page_takes_whole_dialogues_drawn_ones_first_in_split_order():
    def utt(dialogue: str, i: int) -> Utterance:
        return Utterance(uid=f"{dialogue}_{i}", dialogue=dialogue, speaker="A", label=0, features={})

    pool = [utt(d, i) for d, n in (("d1", 3), ("d2", 2), ("d3", 4)) for i in range(n)]
    chosen = [pool[-1]]  # from d3
    assert [u.uid for u in page_utterances(pool, chosen, limit=5)] == ["d1_0", "d1_1", "d1_2", "d3_0", "d3_1", "d3_2", "d3_3"]
    assert [u.dialogue for u in page_utterances(pool, chosen, limit=1)] == ["d3"] * 4
    assert len(page_utterances(pool, [], limit=100)) == len(pool)


def test_curves_mark_the_first_best_epoch():
    history = [
        {"epoch": e, "train_loss": 1.0 / e, "dev_accuracy": a, "dev_weighted_f1": f, "dev_macro_f1": f / 2}
        for e, a, f in ((1, 0.3, 0.2), (2, 0.5, 0.6), (3, 0.6, 0.6), (4, 0.4, 0.5))
    ]
    fig = plot_curves(history)
    for ax in fig.axes:
        marks = [line for line in ax.get_lines() if line.get_label() == "best epoch 2"]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [2, 2]
    assert "best epoch 2" in [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    plt.close(fig)


def test_command_rejects_an_empty_page_and_accepts_one_utterance(capsys):
    from sync_tva.cli.viz import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args(["--run", "r", "--html", "p.html", "--html-max", "0"])
    assert exc.value.code == 2 and "--html-max must be at least 1" in capsys.readouterr().err
    assert parse_args(["--run", "r", "--html", "p.html", "--html-max", "1"]).html_max == 1  # the smallest page is accepted
