"""Keys that only some data sources or models read, and fields the code sets rather than the user.

``data.*`` and ``model.*`` are chosen by name (``data.name``, ``model.name``). A field declared
``owned_by(("csv",), default=None)`` is read only when its section's ``name`` is one of its
owners; under any other name it must keep its default, else a :class:`ConfigError` names the
key and the source or model it belongs to. Holding the default is allowed, so a config written by
an earlier version (which carried every key) still loads; :func:`~.loader.config_to_dict` leaves
such keys out, so a written config holds only what its source and model read.

A ``derived`` field is set by the code (a trained run's fine-tuned encoder folder) or mirrors
another key. It is never written, and a config that gives it a value other than its default is
an error saying what sets it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, field
from typing import Any

from ..errors import ConfigError

__all__ = ["check_owned", "derived", "derived_reason", "owned_by", "owners_of", "reads", "written_fields"]

_OWNERS = "owners"  # dataclass field metadata: the names whose section reads the field
_DERIVED = "derived"  # dataclass field metadata: what sets the field instead of the user


def owned_by(owners: tuple[str, ...], *, default: Any = MISSING, default_factory: Any = MISSING) -> Any:
    """A dataclass field read only when its section's ``name`` is one of ``owners``."""
    return field(default=default, default_factory=default_factory, metadata={_OWNERS: owners})


def derived(default: Any, why: str) -> Any:
    """A dataclass field the code sets (``why`` says how); never read from a config nor written."""
    return field(default=default, metadata={_DERIVED: why})


def derived_reason(f: dataclasses.Field) -> str | None:
    """What sets a derived field, or None for a field the user sets."""
    return f.metadata.get(_DERIVED)


def owners_of(f: dataclasses.Field) -> tuple[str, ...] | None:
    """The names that read field ``f``, or None when every name does."""
    return f.metadata.get(_OWNERS)


def reads(section: Any, name: str) -> bool:
    """Whether the name ``section`` chose reads its field ``name`` (a field without owners is read by every name)."""
    owners = owners_of(section.__dataclass_fields__[name])
    return owners is None or section.name in owners


def written_fields(section: Any) -> list[dataclasses.Field]:
    """The fields a written config holds: read by the section's chosen name, not derived."""
    return [f for f in dataclasses.fields(section) if reads(section, f.name) and derived_reason(f) is None]


def _first_change(value: Any, default: Any, key: str) -> tuple[str, Any] | None:
    """The dotted key and value of the first leaf of ``value`` that differs from ``default``."""
    if dataclasses.is_dataclass(value) and type(value) is type(default):
        for f in dataclasses.fields(value):
            change = _first_change(getattr(value, f.name), getattr(default, f.name), f"{key}.{f.name}")
            if change is not None:
                return change
        return None
    return None if value == default else (key, value)


def check_owned(section: Any, prefix: str, defaults: Any) -> None:
    """Refuse a key that the section's chosen ``name`` does not read, unless it still holds its value in ``defaults``."""
    for f in dataclasses.fields(section):
        if reads(section, f.name):
            continue
        change = _first_change(getattr(section, f.name), getattr(defaults, f.name), f"{prefix}.{f.name}")
        if change is not None:
            key, value = change
            names = owners_of(f)
            owners = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
            fix = f"set {prefix}.name to one of those" if len(names) > 1 else f"set {prefix}.name={names[0]}"
            raise ConfigError(
                f"{key}: {value!r} is a key of {prefix}.name={owners}; {prefix}.name={section.name} does not read it "
                f"(remove it, or {fix})"
            )
