"""Dialogue graphs: one node per utterance, typed relations to the turns around it.

Beyond the paper (its own future work): the utterances of one dialogue form a graph whose
relations are a direction in time (past, future, self) and a speaker condition (same, other,
any). The relation vocabulary is declared once in YAML (``schemas/dialogue/*.yaml``, loaded by
name or path); how far each direction reaches comes from the config
(``model.dialogue.past``/``future``) through :meth:`DialogueSchema.resolve`, so ``future: 0``
gives an online model that never looks ahead. :class:`DialogueGraphBuilder` writes the edge
lists of a whole batch of dialogues at once with index arithmetic, never a loop over edges::

    schema = load_dialogue_schema("dialogue").resolve(past=4, future=2, speakers=True)
    g = DialogueGraphBuilder(schema).build_batch([["Ana", "Ben", "Ana"], ["Cleo"]])
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Sequence

import dgl
import numpy as np
import torch

from ..errors import SchemaError
from .schema import SCHEMA_DIR, EdgeSpec, GraphSchema, read_schema_yaml

__all__ = [
    "NODE_TYPE",
    "DialogueRelation",
    "DialogueSchema",
    "DialogueGraphBuilder",
    "load_dialogue_schema",
    "list_dialogue_schemas",
    "dialogue_schema_from_dict",
]

NODE_TYPE = "utterance"  # the one node type of a dialogue graph
DIALOGUE_SCHEMA_DIR = SCHEMA_DIR / "dialogue"
_DIRECTIONS = ("past", "future", "self")
_SPEAKERS = ("same", "other", "any")


@dataclass(frozen=True)
class DialogueRelation:
    """Utterances ``window`` turns away in ``direction`` (and matching ``speaker``) send to an utterance."""

    name: str
    direction: Literal["past", "future", "self"]
    speaker: Literal["same", "other", "any"] = "any"
    window: int | None = None  # turns reached; set by DialogueSchema.resolve (self: 0)

    @property
    def canonical(self) -> tuple[str, str, str]:
        return (NODE_TYPE, self.name, NODE_TYPE)


@dataclass(frozen=True)
class DialogueSchema:
    """The relations of a dialogue graph; :meth:`resolve` gives them their windows."""

    name: str
    relations: tuple[DialogueRelation, ...]
    source: str = "<memory>"

    @property
    def canonical_etypes(self) -> list[tuple[str, str, str]]:
        return [r.canonical for r in self.relations]

    def resolve(self, *, past: int, future: int, speakers: bool) -> "DialogueSchema":
        """The schema with windows set: a direction with window 0 is dropped, and ``speakers=False``
        merges each direction's relations into one named after the direction (any speaker)."""
        windows = {"past": past, "future": future, "self": 0}
        kept: list[DialogueRelation] = []
        for rel in self.relations:
            if rel.direction != "self" and windows[rel.direction] == 0:
                continue
            if not speakers and rel.direction != "self":
                rel = replace(rel, name=rel.direction, speaker="any")
            rel = replace(rel, window=windows[rel.direction])
            if rel not in kept:
                kept.append(rel)
        if not kept:
            raise SchemaError(
                f"{self.source}: model.dialogue.past={past} and future={future} leave no relation of schema "
                f"{self.name!r}; raise a window, or set model.dialogue.layers=0 for the per-utterance model"
            )
        return replace(self, relations=tuple(kept))

    def to_dict(self) -> dict[str, Any]:
        """The mapping :func:`dialogue_schema_from_dict` reads (windows are not in it: they come from the config)."""
        relations = {r.name: {"direction": r.direction} | ({"speaker": r.speaker} if r.direction != "self" else {}) for r in self.relations}
        return {"name": self.name, "relations": relations}

    def graph_schema(self) -> GraphSchema:
        """The same relations as an (edge-pattern-free) :class:`GraphSchema`, so graph layers build from it."""
        edges = tuple(EdgeSpec(name=r.name, src=NODE_TYPE, dst=NODE_TYPE) for r in self.relations)
        return GraphSchema(name=self.name, node_types=(NODE_TYPE,), edges=edges, source=self.source)

    def __repr__(self) -> str:
        rels = ", ".join(f"{r.name}:{r.direction}/{r.speaker}/{r.window}" for r in self.relations)
        return f"DialogueSchema({self.name!r}, relations=[{rels}])"


def dialogue_schema_from_dict(data: Any, source: str = "<memory>") -> DialogueSchema:
    """Validate a dialogue-schema mapping; every error names ``source`` and the key."""
    if not isinstance(data, dict):
        raise SchemaError(f"{source}: expected a mapping with keys name, relations")
    extra = sorted(set(data) - {"name", "relations", "description"})
    if extra:
        raise SchemaError(f"{source}: unknown keys {extra}; allowed: ['description', 'name', 'relations']")
    relations = data.get("relations")
    if not isinstance(relations, dict) or not relations:
        raise SchemaError(f"{source}: relations: expected a non-empty mapping of relation name to spec")
    out = []
    for name, spec in relations.items():
        key = f"relations.{name}"
        if not isinstance(spec, dict):
            raise SchemaError(f"{source}: {key}: expected a mapping, got {spec!r}")
        unknown = sorted(set(spec) - {"direction", "speaker"})
        if unknown:
            raise SchemaError(f"{source}: {key}: unknown keys {unknown}; allowed: ['direction', 'speaker']")
        direction, speaker = spec.get("direction"), spec.get("speaker", "any")
        if direction not in _DIRECTIONS:
            raise SchemaError(f"{source}: {key}.direction: {direction!r} is not one of {list(_DIRECTIONS)}")
        if speaker not in _SPEAKERS:
            raise SchemaError(f"{source}: {key}.speaker: {speaker!r} is not one of {list(_SPEAKERS)}")
        if direction == "self" and speaker != "any":
            raise SchemaError(f"{source}: {key}.speaker: a self relation has no other speaker; leave speaker out")
        out.append(DialogueRelation(name=str(name), direction=direction, speaker=speaker))
    return DialogueSchema(name=str(data.get("name", Path(source).stem)), relations=tuple(out), source=source)


def list_dialogue_schemas() -> list[str]:
    """Names of the dialogue schemas that ship with the package."""
    return sorted(p.stem for p in DIALOGUE_SCHEMA_DIR.glob("*.yaml"))


def load_dialogue_schema(name_or_path: str | Path) -> DialogueSchema:
    """A dialogue schema by shipped name (``dialogue``) or by path to a YAML file."""
    data, source = read_schema_yaml(name_or_path, DIALOGUE_SCHEMA_DIR, "dialogue schema", "model.dialogue.schema")
    return dialogue_schema_from_dict(data, source=source)


def _relation_edges(
    rel: DialogueRelation, turn: np.ndarray, length: np.ndarray, speaker: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Global ``(src, dst)`` of one relation over the batch, sorted by destination (so by dialogue)."""
    n = turn.shape[0]
    if rel.direction == "self":
        src = dst = np.arange(n, dtype=np.int64)
    else:
        reach = min(rel.window, int(length.max()) - 1) if n else 0  # no dialogue has turns further away
        step = np.tile(np.arange(1, reach + 1, dtype=np.int64), n)  # [n * reach]: 1..reach per destination
        dst = np.repeat(np.arange(n, dtype=np.int64), reach)
        if rel.direction == "past":
            keep = turn[dst] >= step  # clipped at the dialogue's first turn
            src = dst - step
        else:
            keep = turn[dst] + step < length[dst]  # clipped at its last turn
            src = dst + step
        src, dst = src[keep], dst[keep]
    if rel.speaker != "any":
        same = speaker[src] == speaker[dst]
        src, dst = (src[same], dst[same]) if rel.speaker == "same" else (src[~same], dst[~same])
    return src, dst


class DialogueGraphBuilder:
    """Batched dialogue graphs from each dialogue's speakers in turn order (one node per utterance).

    The result is a batched ``DGLHeteroGraph`` with the single node type ``utterance`` and every
    relation of the resolved schema (possibly empty): graph ``b`` of the batch is dialogue ``b``,
    and node ``i`` is the ``i``-th utterance of the flattened batch. No edge joins two dialogues.
    """

    def __init__(self, schema: DialogueSchema):
        unresolved = [r.name for r in schema.relations if r.window is None]
        if unresolved:
            raise SchemaError(f"{schema.source}: relations {unresolved} have no window; build from schema.resolve(...)")
        self.schema = schema

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.schema!r})"

    def build_batch(self, dialogues: Sequence[Sequence[str]]) -> dgl.DGLHeteroGraph:
        """One batched dialogue graph; ``dialogues[b]`` lists dialogue ``b``'s speakers in turn order."""
        sizes = np.array([len(d) for d in dialogues], dtype=np.int64)
        graph_of = np.repeat(np.arange(len(sizes)), sizes)  # [N] dialogue of every node
        first = np.cumsum(sizes) - sizes
        turn = np.arange(int(sizes.sum()), dtype=np.int64) - first[graph_of]  # [N] position in its dialogue
        codes: dict[str, int] = {}
        speaker = np.array([codes.setdefault(s, len(codes)) for d in dialogues for s in d], dtype=np.int64)
        data, counts = {}, {}
        for rel in self.schema.relations:
            src, dst = _relation_edges(rel, turn, sizes[graph_of], speaker)
            data[rel.canonical] = (torch.from_numpy(src), torch.from_numpy(dst))
            counts[rel.canonical] = torch.from_numpy(np.bincount(graph_of[dst], minlength=len(sizes)))
        g = dgl.heterograph(data, num_nodes_dict={NODE_TYPE: int(sizes.sum())})
        g.set_batch_num_nodes({NODE_TYPE: torch.from_numpy(sizes)})
        g.set_batch_num_edges(counts)
        return g
