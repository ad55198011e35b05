"""Graph schemas: which node types an utterance graph has and how modalities are wired.

A schema is declared once in YAML (``sync_tva/graphs/schemas/*.yaml``, also reachable as the
top-level ``graphs/`` folder) and every layer is built from it, never from a sample graph::

    name: utterance
    node_types: [text, audio, visual]
    directed: false              # true: only src -> dst; false: each relation also dst -> src
    relations:
      V-A: {src: visual, dst: audio, pattern: full}
      T-V: {src: text, dst: visual, pattern: aligned, window: 0.2}
    intra:                       # optional edges inside one modality
      text: {pattern: aligned, window: 0.1}

``full`` joins every source node to every destination node; ``aligned`` joins nodes whose
relative positions in the utterance, ``(i + 0.5) / n``, differ by at most ``window``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from ..config import MODALITIES
from ..errors import SchemaError

__all__ = ["EdgeSpec", "GraphSchema", "SchemaError", "load_schema", "list_schemas", "SCHEMA_DIR"]

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
CanonicalEType = tuple[str, str, str]
_PATTERNS = ("full", "aligned")


@dataclass(frozen=True)
class EdgeSpec:
    """One edge type: ``src`` nodes send to ``dst`` nodes under relation ``name``."""

    name: str
    src: str
    dst: str
    pattern: Literal["full", "aligned"] = "full"
    window: float = 1.0  # only for aligned: largest difference of relative positions

    @property
    def canonical(self) -> CanonicalEType:
        return (self.src, self.name, self.dst)

    @property
    def intra(self) -> bool:
        return self.src == self.dst


@dataclass(frozen=True)
class GraphSchema:
    """Node types and edge types of an utterance graph (reverse edges already expanded)."""

    name: str
    node_types: tuple[str, ...]
    edges: tuple[EdgeSpec, ...]
    source: str = "<memory>"

    @property
    def canonical_etypes(self) -> list[CanonicalEType]:
        return [e.canonical for e in self.edges]

    def restrict(self, node_types: list[str] | tuple[str, ...]) -> "GraphSchema":
        """The schema over a subset of node types: edges touching a dropped type go."""
        unknown = [t for t in node_types if t not in self.node_types]
        if unknown:
            raise SchemaError(
                f"{self.source}: node types {unknown} are not in this schema's node_types {list(self.node_types)}"
            )
        keep = tuple(t for t in self.node_types if t in node_types)
        edges = tuple(e for e in self.edges if e.src in keep and e.dst in keep)
        return replace(self, node_types=keep, edges=edges)

    def in_edges(self, ntype: str) -> list[EdgeSpec]:
        """Edge types whose destination is ``ntype``."""
        return [e for e in self.edges if e.dst == ntype]

    def to_state(self) -> dict[str, Any]:
        """The expanded schema as plain data (stored in checkpoints, so a run never needs its YAML again)."""
        return {"name": self.name, "node_types": list(self.node_types), "edges": [asdict(e) for e in self.edges], "source": self.source}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "GraphSchema":
        """Inverse of :meth:`to_state`."""
        edges = tuple(EdgeSpec(**e) for e in state["edges"])
        return cls(name=state["name"], node_types=tuple(state["node_types"]), edges=edges, source=state["source"])

    def __repr__(self) -> str:
        rels = ", ".join(f"{e.src}-[{e.name}:{e.pattern}]->{e.dst}" for e in self.edges)
        return f"GraphSchema({self.name!r}, node_types={list(self.node_types)}, edges=[{rels}])"


def _reverse_name(name: str) -> str:
    """``V-A`` reverses to ``A-V``; any other name gets a ``rev-`` prefix."""
    parts = name.split("-")
    return f"{parts[1]}-{parts[0]}" if len(parts) == 2 and all(parts) else f"rev-{name}"


def _edge_from_spec(spec: Any, name: str, src: str, dst: str, key: str, source: str) -> EdgeSpec:
    pattern = spec.get("pattern", "full")
    if pattern not in _PATTERNS:
        raise SchemaError(f"{source}: {key}.pattern: {pattern!r} is not one of {list(_PATTERNS)}")
    window = spec.get("window", 1.0 if pattern == "full" else None)
    if pattern == "aligned":
        if window is None:
            raise SchemaError(f"{source}: {key}.window: required for pattern 'aligned' (a number in (0, 1])")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= 1:
            raise SchemaError(f"{source}: {key}.window: {window!r} must be a number in (0, 1]")
    return EdgeSpec(name=name, src=src, dst=dst, pattern=pattern, window=float(window))


def _check_keys(spec: Any, allowed: set[str], key: str, source: str) -> None:
    if not isinstance(spec, dict):
        raise SchemaError(f"{source}: {key}: expected a mapping, got {spec!r}")
    extra = sorted(set(spec) - allowed)
    if extra:
        raise SchemaError(f"{source}: {key}: unknown keys {extra}; allowed: {sorted(allowed)}")


def _check_type(ntype: Any, node_types: tuple[str, ...], key: str, source: str) -> str:
    if ntype not in MODALITIES:
        raise SchemaError(f"{source}: {key}: unknown node type {ntype!r}; choose from {list(MODALITIES)}")
    if ntype not in node_types:
        raise SchemaError(f"{source}: {key}: node type {ntype!r} is not declared in node_types {list(node_types)}")
    return ntype


def schema_from_dict(data: Any, source: str = "<memory>") -> GraphSchema:
    """Validate a schema mapping and expand reverse edges."""
    _check_keys(data, {"name", "node_types", "directed", "relations", "intra", "description"}, "schema", source)
    node_types = data.get("node_types")
    if not isinstance(node_types, list) or not node_types:
        raise SchemaError(f"{source}: node_types: expected a non-empty list, got {node_types!r}")
    for i, t in enumerate(node_types):
        if t not in MODALITIES:
            raise SchemaError(f"{source}: node_types[{i}]: unknown node type {t!r}; choose from {list(MODALITIES)}")
    node_types = tuple(node_types)
    directed = data.get("directed", False)
    if not isinstance(directed, bool):
        raise SchemaError(f"{source}: directed: expected true or false, got {directed!r}")
    edges: list[EdgeSpec] = []
    relations = data.get("relations") or {}
    if not isinstance(relations, dict):
        raise SchemaError(f"{source}: relations: expected a mapping of relation name to spec")
    for name, spec in relations.items():
        key = f"relations.{name}"
        _check_keys(spec, {"src", "dst", "pattern", "window", "reverse"}, key, source)
        src = _check_type(spec.get("src"), node_types, f"{key}.src", source)
        dst = _check_type(spec.get("dst"), node_types, f"{key}.dst", source)
        if src == dst:
            raise SchemaError(f"{source}: {key}: src and dst are both {src!r}; put edges inside a modality under intra")
        edge = _edge_from_spec(spec, str(name), src, dst, key, source)
        edges.append(edge)
        if not directed:
            edges.append(replace(edge, name=str(spec.get("reverse", _reverse_name(str(name)))), src=dst, dst=src))
    intra = data.get("intra") or {}
    if not isinstance(intra, dict):
        raise SchemaError(f"{source}: intra: expected a mapping of node type to spec")
    for ntype, spec in intra.items():
        key = f"intra.{ntype}"
        _check_keys(spec, {"pattern", "window"}, key, source)
        ntype = _check_type(ntype, node_types, key, source)
        edges.append(_edge_from_spec(spec, f"{ntype}-{ntype}", ntype, ntype, key, source))
    names = [e.name for e in edges]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SchemaError(f"{source}: relations: edge type names {dupes} are used twice (set 'reverse' to rename)")
    return GraphSchema(name=str(data.get("name", Path(source).stem)), node_types=node_types, edges=tuple(edges), source=source)


def list_schemas() -> list[str]:
    """Names of the schemas that ship with the package."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))


def read_schema_yaml(name_or_path: str | Path, folder: Path, kind: str, key: str) -> tuple[Any, str]:
    """The YAML mapping of a shipped schema (a name in ``folder``) or of a file; errors name the ``kind`` and ``key``."""
    path = Path(name_or_path)
    if not path.suffix:
        path = folder / f"{name_or_path}.yaml"
        if not path.is_file():
            shipped = sorted(p.stem for p in folder.glob("*.yaml"))
            raise SchemaError(f"unknown {kind} {str(name_or_path)!r} ({key}); shipped: {shipped}, or give a path")
    if not path.is_file():
        raise SchemaError(f"{kind} file not found: {path} ({key})")
    try:
        return yaml.safe_load(path.read_text()), str(path)
    except yaml.YAMLError as exc:
        raise SchemaError(f"{path}: not valid YAML: {exc}") from None


def load_schema(name_or_path: str | Path) -> GraphSchema:
    """Load a schema by shipped name (``utterance``) or by path to a YAML file."""
    data, source = read_schema_yaml(name_or_path, SCHEMA_DIR, "graph schema", "graph.schema")
    return schema_from_dict(data, source=source)
