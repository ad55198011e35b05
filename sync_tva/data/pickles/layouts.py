"""Pickle layouts: what each position of a feature pickle's tuple holds, read from ``layouts.yaml``.

The layouts are data, not code: adding a layout is adding an entry to the table. Every key of
every entry is checked when the package loads, so a malformed table fails at import with an
error that names the file, the layout and the key, never later inside a read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ...config import MODALITIES
from ...errors import ConfigError, UnknownNameError
from ...registry import Registry
from .. import labels as label_sets

__all__ = [
    "LAYOUTS",
    "LAYOUT_TABLE",
    "PickleLayout",
    "RECORD_FIELDS",
    "SPEAKER_ENCODINGS",
    "SPLIT_FIELDS",
    "UNUSED",
    "get_layout",
    "layouts_from_table",
    "list_layouts",
    "load_layout_table",
]

LAYOUT_TABLE = Path(__file__).with_name("layouts.yaml")

RECORD_FIELDS = ("ids", "speakers", "labels", "sentences")  # one entry per utterance, not features
SPLIT_FIELDS = ("train", "dev", "test")  # lists of dialogue ids
UNUSED = "unused"  # a position read past (the 3-class sentiment labels)
_REQUIRED_FIELDS = ("speakers", "labels", "train", "test")
SPEAKER_ENCODINGS = ("name", "one_hot")
_KEYS = ("name", "source", "fields", "modalities", "labels", "speakers", "uid", "dims")
_LABEL_SETS: dict[str, tuple[str, ...]] = {name: getattr(label_sets, name) for name in label_sets.__all__}


@dataclass(frozen=True)
class PickleLayout:
    """One entry of ``layouts.yaml`` (the table's header comment explains every key).

    ``fields`` names the tuple positions; ``modalities`` maps each modality to the feature
    fields averaged into its node; ``labels`` is the resolved label set; ``speakers`` is
    ``name`` or ``one_hot``; ``uid`` formats an utterance id from ``dialogue`` and ``utt``;
    ``dims`` documents the released widths (other widths in the same layout load as well).
    """

    name: str
    fields: tuple[str, ...]
    modalities: Mapping[str, tuple[str, ...]]
    labels: tuple[str, ...]
    speakers: str
    uid: str
    dims: Mapping[str, int]
    source: str

    @property
    def dialogue_fields(self) -> tuple[str, ...]:
        """The positions holding dicts keyed by dialogue id: every field but the split lists and ``unused``."""
        return tuple(f for f in self.fields if f not in SPLIT_FIELDS + (UNUSED,))

    def __repr__(self) -> str:
        return f"PickleLayout({self.name!r}, {len(self.fields)}-tuple, modalities={sorted(self.modalities)})"


# ----------------------------------------------------------------------------------------------
# Checking one table entry; every error says ``FILE: layout NAME: KEY: problem``.


def _names(value: Any, where: str, key: str) -> tuple[str, ...]:
    """A non-empty list of strings."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: {key}: expected a non-empty list of names, got {value!r}")
    return tuple(value)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    """A non-empty string."""
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key}: expected a non-empty string, got {value!r}")
    return value


def _fields(value: Any, modalities: Mapping[str, tuple[str, ...]], where: str) -> tuple[str, ...]:
    """Tuple positions: known names or feature fields of ``modalities``, each once (``unused`` may repeat)."""
    fields = _names(value, where, "fields")
    features = {f for group in modalities.values() for f in group}
    for pos, name in enumerate(fields):
        if name not in RECORD_FIELDS + SPLIT_FIELDS + (UNUSED,) and name not in features:
            raise ConfigError(
                f"{where}: fields[{pos}]: {name!r} is none of {RECORD_FIELDS + SPLIT_FIELDS + (UNUSED,)} "
                f"and no modality lists it; add it under modalities or fix the name"
            )
        if name != UNUSED and name in fields[:pos]:
            raise ConfigError(f"{where}: fields[{pos}]: {name!r} appears twice")
    missing = [f for f in _REQUIRED_FIELDS if f not in fields]
    if missing:
        raise ConfigError(f"{where}: fields: missing {missing}; every layout needs {list(_REQUIRED_FIELDS)}")
    return fields


def _modalities(value: Any, where: str) -> dict[str, tuple[str, ...]]:
    """Modality -> the feature fields averaged into its node."""
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(
            f"{where}: modalities: expected a mapping of modality to feature fields, got {value!r}"
        )
    out: dict[str, tuple[str, ...]] = {}
    for mod, group in value.items():
        if mod not in MODALITIES:
            raise ConfigError(
                f"{where}: modalities: unknown modality {mod!r}; choose from {list(MODALITIES)}"
            )
        out[mod] = _names(group, where, f"modalities.{mod}")
        reserved = [f for f in out[mod] if f in RECORD_FIELDS + SPLIT_FIELDS + (UNUSED,)]
        if reserved:
            raise ConfigError(f"{where}: modalities.{mod}: {reserved} are not feature fields")
    return out


def _dims(value: Any, modalities: Mapping[str, tuple[str, ...]], where: str) -> dict[str, int]:
    """One positive width per modality of the layout."""
    if not isinstance(value, Mapping) or set(value) != set(modalities):
        raise ConfigError(f"{where}: dims: expected a width for each of {sorted(modalities)}, got {value!r}")
    for mod, dim in value.items():
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ConfigError(f"{where}: dims.{mod}: expected a positive integer, got {dim!r}")
    return dict(value)


def _uid(entry: Mapping[str, Any], where: str) -> str:
    """A format string that uses only ``{dialogue}`` and ``{utt}``."""
    uid = _text(entry, "uid", where)
    try:
        uid.format(dialogue="d", utt="u")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{where}: uid: {uid!r} is not a format of {{dialogue}} and {{utt}} ({type(exc).__name__}: {exc})"
        ) from None
    return uid


def _choice(entry: Mapping[str, Any], key: str, choices: Any, where: str) -> str:
    """A string among ``choices``."""
    value = entry[key]
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{where}: {key}: {value!r} is not one of {sorted(choices)}")
    return value


def parse_layout(entry: Any, where: str) -> PickleLayout:
    """One checked table entry; ``where`` prefixes every error (``FILE: layout NAME``)."""
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping with keys {list(_KEYS)}, got {entry!r}")
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {list(_KEYS)}")
    missing = [k for k in _KEYS if k not in entry]
    if missing:
        raise ConfigError(f"{where}: {missing[0]}: missing; every layout needs {list(_KEYS)}")
    modalities = _modalities(entry["modalities"], where)
    return PickleLayout(
        name=_text(entry, "name", where),
        fields=_fields(entry["fields"], modalities, where),
        modalities=modalities,
        labels=_LABEL_SETS[_choice(entry, "labels", _LABEL_SETS, where)],
        speakers=_choice(entry, "speakers", SPEAKER_ENCODINGS, where),
        uid=_uid(entry, where),
        dims=_dims(entry["dims"], modalities, where),
        source=_text(entry, "source", where),
    )


def layouts_from_table(table: Any, source: str) -> Registry[PickleLayout]:
    """Every entry of a parsed layout table, checked; ``source`` names the table in errors."""
    if not isinstance(table, list) or not table:
        raise ConfigError(f"{source}: expected a non-empty list of layouts, got {type(table).__name__}")
    registry: Registry[PickleLayout] = Registry("pickle layout", "data.layout")
    for i, entry in enumerate(table):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        layout = parse_layout(entry, f"{source}: layout {name!r}" if name else f"{source}: layout #{i}")
        try:
            registry.register(layout.name)(layout)
        except ValueError:
            raise ConfigError(f"{source}: layout {layout.name!r}: name: listed twice") from None
    return registry


def load_layout_table(path: Path = LAYOUT_TABLE) -> Registry[PickleLayout]:
    """The layouts of a YAML table (by default the shipped ``layouts.yaml``)."""
    try:
        table = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return layouts_from_table(table, str(path))


# ----------------------------------------------------------------------------------------------
# The shipped layouts, looked up by ``data.layout``.

_REGISTRY = load_layout_table()
LAYOUTS: Mapping[str, PickleLayout] = MappingProxyType({n: _REGISTRY.get(n) for n in _REGISTRY.names()})


def list_layouts() -> list[str]:
    """Names accepted by ``data.layout``."""
    return _REGISTRY.names()


def get_layout(name: str | None) -> PickleLayout:
    """The layout called ``name``; a missing or unknown name lists the choices."""
    if name is None:
        raise ConfigError(
            f"data.layout: required with data.name=features_pickle; choose from {', '.join(list_layouts())}"
        )
    if name not in LAYOUTS:
        raise UnknownNameError(
            f"data.layout: unknown layout {name!r}; choose from {', '.join(list_layouts())}"
        )
    return LAYOUTS[name]
