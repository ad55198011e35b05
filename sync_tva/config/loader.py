"""YAML files, ``base:`` inheritance and dotted overrides, converted strictly into a :class:`Config`.

Conversion follows the dataclass annotations: an unknown key or a value of the wrong type is a
:class:`ConfigError` naming the source, the dotted key and the closest valid key, so a typo
never silently falls back to a default. Ranges are checked by the schema as the Config is built.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
import warnings
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from ..errors import ConfigError
from .owners import derived_reason, written_fields
from .schema import Config

__all__ = [
    "RENAMED",
    "RENAMED_VALUES",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_override",
    "read_yaml",
]


# Old spelling -> the key that replaced it. Given alone, the old key sets the new one with a
# FutureWarning; given beside the new one it must agree with it (configs written before the
# rename carry both), and is then dropped. A renamed section moves key by key, and each file
# and override is renamed before they merge, so an old override (model.context.past=3) still
# overrides a new file's model.dialogue.past.
RENAMED = {
    "features.text.finetune.context_turns": "features.text.context_turns",  # one setting for fine-tuning and extraction
    "model.context": "model.dialogue",  # "context" meant five things; the conversation model is the dialogue model
    "data.demo.context": "data.demo.cueless_share",  # the demo's turns without cues, not a context setting
}

# Old value -> the value that replaced it, per key; read with a FutureWarning (checkpoints of
# earlier versions name the old model).
RENAMED_VALUES = {
    "model.name": {"sync_tva_context": "sync_tva_dialogue"},
}

# Config files renamed with the model: a missing ``X_context.yaml`` is read as ``X_dialogue.yaml``.
RENAMED_FILE_SUFFIXES = {"_context.yaml": "_dialogue.yaml"}


def _type_name(tp: Any) -> str:
    """``list[str]``, ``Optional[str]`` or ``int``, as the user would write the annotation."""
    if typing.get_origin(tp) is None:
        return getattr(tp, "__name__", str(tp))
    return str(tp).replace("typing.", "")


def _convert_union(value: Any, tp: Any, key: str) -> Any:
    """The first option of Union ``tp`` that accepts ``value``; otherwise every option's reason."""
    reasons = []
    for option in typing.get_args(tp):
        if option is type(None):
            if value is None:
                return None
            continue
        try:
            return _convert(value, option, key)
        except ConfigError as exc:
            reasons.append(f"as {_type_name(option)}: {exc}")
    raise ConfigError(f"{key} = {value!r} does not match {_type_name(tp)} ({'; '.join(reasons)})")


def _convert_literal(value: Any, tp: Any, key: str) -> Any:
    """``value`` itself when it is one of the Literal's choices; otherwise suggest the closest."""
    choices = typing.get_args(tp)
    if value not in choices:
        hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"{key} = {value!r} is not one of {list(choices)}{extra}")
    return value


def _convert_scalar(value: Any, tp: Any, key: str) -> Any:
    """Check a scalar, widening where YAML's reading differs from the intent (``1`` for a float)."""
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. a column named 0 or a path given as a number
    if tp in (int, float, str, bool) and type(value) is not tp:
        raise ConfigError(f"{key} must be {tp.__name__}, got {value!r} ({type(value).__name__})")
    return value


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp`` and convert it (mappings become dataclasses)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        return _build(tp, value, key)
    if origin in (Union, types.UnionType):
        return _convert_union(value, tp, key)
    if origin is Literal:
        return _convert_literal(value, tp, key)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    return _convert_scalar(value, tp, key)


def _build(cls: type, raw: dict, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``raw``, rejecting unknown keys with a suggestion and derived keys with what sets them."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in raw.items():
        dotted = f"{prefix}.{name}" if prefix else str(name)
        if name not in fields:
            valid = [f"{prefix}.{n}" if prefix else n for n in fields]
            hint = difflib.get_close_matches(dotted, valid, n=1, cutoff=0.5)
            extra = f"; did you mean {hint[0]!r}?" if hint else f"; valid keys: {', '.join(valid)}"
            raise ConfigError(f"unknown key {dotted!r}{extra}")
        converted = _convert(value, hints[name], dotted)
        why = derived_reason(fields[name])
        if why is None:
            kwargs[name] = converted
        elif converted != fields[name].default:  # at its default: written by an earlier version, dropped
            raise ConfigError(f"{dotted}: not a setting; it {why}")
    return cls(**kwargs)


def _pop_dotted(tree: dict, dotted: str) -> tuple[bool, Any]:
    """Remove ``a.b.c`` from ``tree``: ``(True, value)`` when it was there, else ``(False, None)``."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.get(part)
        if not isinstance(tree, dict):
            return False, None
    return (True, tree.pop(leaf)) if leaf in tree else (False, None)


def _leaves(value: Any, suffix: str = "") -> list[tuple[str, Any]]:
    """``(".a.b", leaf)`` for every leaf under a section (``[("", value)]`` for a plain value)."""
    if not isinstance(value, dict):
        return [(suffix, value)]
    return [leaf for key, child in value.items() for leaf in _leaves(child, f"{suffix}.{key}")]


def _disagreement(old: str, old_value: Any, new: str, new_value: Any) -> ConfigError:
    """The error for an old spelling given beside its new key with another value (files and overrides alike)."""
    return ConfigError(f"{old}={old_value!r} and {new}={new_value!r} disagree; they are one setting now: keep {new} only")


def _apply_renamed(raw: dict) -> None:
    """Move each old spelling of :data:`RENAMED` to its new key and each old value of :data:`RENAMED_VALUES` to its new one (in place).

    A disagreement between an old key and its new one is an error.
    """
    for old_root, new_root in RENAMED.items():
        found, value = _pop_dotted(raw, old_root)
        if not found:
            continue
        warned = False
        for suffix, leaf in _leaves(value):
            old, new = old_root + suffix, new_root + suffix
            has_new, current = _pop_dotted(raw, new)
            if has_new and current != leaf:
                raise _disagreement(old, leaf, new, current)
            if not has_new and not warned:
                warnings.warn(f"{old_root} is deprecated; it sets {new_root} (use that key)", FutureWarning, stacklevel=4)
                warned = True
            _set_dotted(raw, new, leaf)
    for key, renamed in RENAMED_VALUES.items():
        found, value = _pop_dotted(raw, key)
        if not found:
            continue
        if isinstance(value, str) and value in renamed:
            warnings.warn(f"{key}={value} is deprecated; it is {key}={renamed[value]} now", FutureWarning, stacklevel=4)
            value = renamed[value]
        _set_dotted(raw, key, value)


def config_from_dict(raw: dict, source: str) -> Config:
    """A Config from plain data (a file, overrides, the copy in a checkpoint); errors name ``source``."""
    try:
        raw = copy.deepcopy(raw)  # the caller's mapping (a checkpoint's) stays as it was
        _apply_renamed(raw)
        return _build(Config, raw, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def config_to_dict(cfg: Any) -> dict:
    """The config as plain YAML-ready data; ``config_from_dict`` turns it back into an equal Config.

    Keys the chosen data source or model does not read, and derived fields, are left out: they
    hold their defaults (the schema refuses anything else), so reading it back restores them.
    """
    return {
        f.name: config_to_dict(value) if dataclasses.is_dataclass(value) else copy.deepcopy(value)
        for f in written_fields(cfg)
        for value in (getattr(cfg, f.name),)
    }


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    """Set ``tree[a][b][c] = value`` for ``a.b.c``, creating sections on the way."""
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _is_braced_text(value: Any, raw: str) -> bool:
    """YAML reads ``{Clip}`` as the mapping ``{Clip: None}``; with no ``:`` typed, the text was meant."""
    if not isinstance(value, dict) or not value or ":" in raw:
        return False
    return all(v is None for v in value.values())


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``a.b=value``; the value is read as YAML so ``[text,audio]``, ``3`` and ``null`` work."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. train.epochs=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return key, raw  # not YAML: keep the literal string
    return key, raw if _is_braced_text(value, raw) else value


def _new_spelling(dotted: str) -> str | None:
    """``dotted`` under its new name when it is, or lies under, an old key of :data:`RENAMED`; else None."""
    for old, new in RENAMED.items():
        if dotted == old or dotted.startswith(f"{old}."):
            return new + dotted[len(old) :]
    return None


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Merge dotted overrides into a raw config dict (in place) and return it.

    An old key of :data:`RENAMED` sets its new one with a FutureWarning; given beside the new
    key it must agree with it and is dropped.
    """
    pairs = [parse_override(text) for text in overrides]
    given = dict(pairs)
    for key, value in pairs:
        new = _new_spelling(key)
        if new is not None:
            if new in given:
                if given[new] != value:
                    raise _disagreement(key, value, new, given[new])
                continue
            warnings.warn(f"{key} is deprecated; it sets {new} (use that key)", FutureWarning, stacklevel=3)
            key = new
        _set_dotted(raw, key, value)
    return raw


def _deep_merge(base: dict, extra: dict) -> dict:
    """``base`` updated in place by ``extra``, section by section rather than replacing sections."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _renamed_file(path: Path) -> Path:
    """``path``, or the file it was renamed to (with a FutureWarning) when only that one exists."""
    for old, new in RENAMED_FILE_SUFFIXES.items():
        if not path.exists() and path.name.endswith(old):
            renamed = path.with_name(path.name[: -len(old)] + new)
            if renamed.is_file():
                warnings.warn(f"{path} was renamed to {renamed}; read that file", FutureWarning, stacklevel=4)
                return renamed
    return path


def _read_with_bases(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """A config may name ``base: other.yaml`` (relative to itself) to inherit and override."""
    path = _renamed_file(path)
    if path.resolve() in chain:
        raise ConfigError(f"{path}: base: cycle {' -> '.join(str(p) for p in (*chain, path.resolve()))}")
    data = read_yaml(path)
    try:
        _apply_renamed(data)  # before merging: this file's old keys yield to a later file or override
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: {base!r} must be a file name, e.g. base: sync_tva_paper.yaml")
    return _deep_merge(_read_with_bases(path.parent / base, (*chain, path.resolve())), data)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file's values (``base:`` files first), then the overrides."""
    raw: dict = {}
    source = "defaults"
    if path is not None:
        raw = _read_with_bases(Path(path))
        source = str(path)
    if overrides:
        apply_overrides(raw, overrides)
        source = f"{source} + overrides" if path is not None else "overrides"
    return config_from_dict(raw, source)
