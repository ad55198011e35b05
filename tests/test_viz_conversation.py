"""The conversation view draws a dialogue's graph from a real forward pass of the dialogue model."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from conftest import TINY  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from sync_tva.config import load_config  # noqa: E402
from sync_tva.errors import DataError  # noqa: E402
from sync_tva.train.experiment import build_experiment  # noqa: E402
from sync_tva.viz.conversation import draw_conversation, extract_conversation  # noqa: E402
from sync_tva.viz.draw import save_figure  # noqa: E402

DIALOGUE = ["model.name=sync_tva_dialogue", "model.dialogue.heads=2", "model.dialogue.past=2", "model.dialogue.future=1"]


@pytest.fixture(scope="module")
def exp():
    return build_experiment(load_config(None, TINY + DIALOGUE + ["data.demo.cueless_share=0.5"]))


def test_one_marker_per_utterance_and_one_arc_per_dialogue_edge(exp, tmp_path):
    dialogue = exp.data.dialogues("test")[0]
    conv = extract_conversation(exp, dialogue)
    assert conv.uids == [u.uid for u in dialogue] and len(conv.predicted) == len(dialogue)
    assert set(conv.edges["relation"]) <= {"past-same", "past-other", "future-same", "future-other", "self"}
    last = conv.edges[(conv.edges["layer"] == 1) & (conv.edges["src"] != conv.edges["dst"])]
    n = len(dialogue)
    assert len(last) == sum(min(t, 2) + min(n - 1 - t, 1) for t in range(n))  # past 2, future 1, self left out
    fig = draw_conversation(conv)
    ax = fig.axes[0]
    markers = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert markers == n
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == len(last)
    assert {t.get_text() for t in ax.get_legend().get_texts()} <= set(conv.edges["relation"])  # relation legend on top
    paths = save_figure(fig, tmp_path / "dialogue")
    assert all(p.stat().st_size > 0 for p in paths)


def test_refuses_two_dialogues_and_per_utterance_models(exp):
    two = exp.data.dialogues("test")[:2]
    with pytest.raises(DataError, match="one dialogue"):
        extract_conversation(exp, two[0] + two[1])
    plain = build_experiment(load_config(None, TINY))
    with pytest.raises(ValueError, match="reads no conversation"):
        extract_conversation(plain, two[0])
