"""The built-in synthetic demo: MELD-like conversations where only the fusion of modalities tells the emotion.

Each utterance carries one cue symbol per modality (alphabet of 3). The emotion is
``(t + 2a + 4v) mod 7`` over the 27 symbol triples, so every value of any single modality
is compatible with all 7 emotions and any pair still leaves 3 candidates: a model must
combine text, audio and visual to be right. Cues sit on a contiguous stretch of nodes at
the same relative time in every modality (so aligned edges are meaningful); the other nodes
are noise. Classes follow MELD's training distribution.

Cueless turns (``data.demo.cueless_share`` > 0, off by default) make the conversation matter:
dialogues become two-party (speakers alternate), and a turn whose speaker's previous turn (two
turns back) carries its cues becomes, with that probability, a turn without any cue (every node
is noise) that repeats that previous turn's emotion. Only a model that reads the dialogue can
tell it; one hop over the dialogue reaches the answer (no chains of cueless turns).
"""

from __future__ import annotations

import numpy as np

from ..config import Config, DemoConfig
from ..records import DatasetSplits, Utterance
from .labels import MELD_LABELS
from .registry import register_dataset

__all__ = ["make_demo", "DEMO_CLASS_PRIOR", "cue_table"]

# MELD train counts (neutral, surprise, fear, sadness, joy, disgust, anger) as a class prior.
_MELD_TRAIN_COUNTS = np.array([4710, 1205, 268, 683, 1743, 271, 1109], dtype=np.float64)
DEMO_CLASS_PRIOR = _MELD_TRAIN_COUNTS / _MELD_TRAIN_COUNTS.sum()
_ALPHABET = 3
_PERSISTENCE = 0.3  # chance that a turn keeps the previous turn's emotion (prior stays stationary)
_SPEAKERS = ("Ana", "Ben", "Cleo", "Dev")
_CUE_SCALE = 0.5  # prototype entries relative to the noise standard deviation


def cue_table() -> np.ndarray:
    """``table[t, a, v]`` is the emotion index of the cue triple ``(t, a, v)``."""
    t, a, v = np.meshgrid(*(np.arange(_ALPHABET),) * 3, indexing="ij")
    return (t + 2 * a + 4 * v) % len(MELD_LABELS)


def _codes_per_class() -> list[np.ndarray]:
    table = cue_table()
    return [np.argwhere(table == c) for c in range(len(MELD_LABELS))]


def _node_features(
    rng: np.random.Generator, n: int, prototype: np.ndarray, centre: float, cfg: DemoConfig
) -> np.ndarray:
    """``[n, dim]`` Gaussian noise with the prototype added to nodes near relative time ``centre``."""
    x = rng.normal(0.0, cfg.noise, size=(n, prototype.shape[0])).astype(np.float32)
    pos = (np.arange(n) + 0.5) / n  # relative time of each node
    signal = np.abs(pos - centre) <= cfg.signal_fraction / 2
    x[signal] += prototype
    return x


def _spans(n: int, duration: float) -> np.ndarray:
    edges = np.linspace(0.0, duration, n + 1, dtype=np.float32)
    return np.stack([edges[:-1], edges[1:]], axis=1)


def _labels_for_dialogue(rng: np.random.Generator, turns: int) -> list[int]:
    labels = [int(rng.choice(len(DEMO_CLASS_PRIOR), p=DEMO_CLASS_PRIOR))]
    for _ in range(turns - 1):
        if rng.random() < _PERSISTENCE:
            labels.append(labels[-1])
        else:
            labels.append(int(rng.choice(len(DEMO_CLASS_PRIOR), p=DEMO_CLASS_PRIOR)))
    return labels


def _make_cueless(rng: np.random.Generator, utts: list[Utterance], share: float, noise: float) -> None:
    """Make ``utts`` a two-party dialogue where a ``share`` of eligible turns only repeat their speaker's previous emotion.

    Draws from ``rng`` only when the setting is on, so the default corpus stays as it was.
    """
    pair = rng.choice(len(_SPEAKERS), size=2, replace=False)
    cueless = [False] * len(utts)
    for i, utt in enumerate(utts):
        utt.speaker = _SPEAKERS[int(pair[i % 2])]
        if i >= 2 and not cueless[i - 2] and rng.random() < share:
            cueless[i] = True
            utt.label = utts[i - 2].label  # the same speaker's previous turn, which has its cues
            utt.features = {m: rng.normal(0.0, noise, size=x.shape).astype(np.float32) for m, x in utt.features.items()}
            utt.text = f"{utt.text.rsplit(' (', 1)[0]} ({MELD_LABELS[utt.label]}, no cue: from their earlier turn)"


def make_demo(cfg: DemoConfig, seed: int) -> DatasetSplits:
    """Generate the demo corpus deterministically from ``seed`` and split it by dialogue."""
    rng = np.random.default_rng(seed)
    dims = {"text": cfg.text_dim, "audio": cfg.audio_dim, "visual": cfg.visual_dim}
    ranges = {"text": cfg.text_nodes, "audio": cfg.audio_nodes, "visual": cfg.visual_nodes}
    # One prototype per (modality, symbol); its entries are half the noise level, so one cue node is
    # ambiguous but a pooled stretch of them is clear.
    prototypes = {m: rng.normal(0.0, _CUE_SCALE * cfg.noise, size=(_ALPHABET, d)).astype(np.float32) for m, d in dims.items()}
    codes = _codes_per_class()
    dialogues: list[list[Utterance]] = []
    for d in range(cfg.n_dialogues):
        turns = int(rng.integers(cfg.min_turns, cfg.max_turns + 1))
        utts = []
        for u, label in enumerate(_labels_for_dialogue(rng, turns)):
            triple = codes[label][rng.integers(len(codes[label]))]
            centre = float(rng.uniform(0.25, 0.75))
            duration = float(rng.uniform(1.0, 4.0))
            feats, spans = {}, {}
            for m, symbol in zip(("text", "audio", "visual"), triple):
                lo, hi = ranges[m]
                n = int(rng.integers(lo, hi + 1))
                feats[m] = _node_features(rng, n, prototypes[m][symbol], centre, cfg)
                spans[m] = _spans(n, duration)
            n_text = feats["text"].shape[0]
            utts.append(
                Utterance(
                    uid=f"dia{d}_utt{u}",
                    dialogue=f"dia{d}",
                    speaker=_SPEAKERS[int(rng.integers(len(_SPEAKERS)))],
                    label=label,
                    features=feats,
                    text=f"synthetic utterance {u} of dialogue {d} ({MELD_LABELS[label]})",
                    tokens=[f"w{i}" for i in range(n_text)],
                    spans=spans,
                )
            )
        if cfg.cueless_share > 0:
            _make_cueless(rng, utts, cfg.cueless_share, cfg.noise)
        dialogues.append(utts)
    return _split_dialogues(dialogues, cfg.split, rng)


def _split_dialogues(dialogues: list[list[Utterance]], split: list[float], rng: np.random.Generator) -> DatasetSplits:
    order = rng.permutation(len(dialogues))
    frac = np.asarray(split, dtype=np.float64) / np.sum(split)
    n_train = int(round(frac[0] * len(order)))
    n_dev = int(round(frac[1] * len(order)))
    parts = (order[:n_train], order[n_train : n_train + n_dev], order[n_train + n_dev :])
    train, dev, test = ([u for i in sorted(p) for u in dialogues[i]] for p in parts)
    return DatasetSplits(name="demo", labels=MELD_LABELS, train=train, dev=dev, test=test)


@register_dataset("demo")
def load_demo(cfg: Config) -> DatasetSplits:
    """The default data set: the synthetic corpus seeded by ``cfg.seed``."""
    return make_demo(cfg.data.demo, cfg.seed)
