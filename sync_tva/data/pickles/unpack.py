"""From a loaded pickle payload to named fields: tuple length, item kinds and the split id lists.

Nothing here looks inside a dialogue; :mod:`.build` does that. A file read with the wrong
layout usually fails here, so these errors suggest the layouts that would fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import DataError
from .layouts import LAYOUTS, SPLIT_FIELDS, UNUSED, PickleLayout

__all__ = ["Fields", "check_split_ids", "unpack"]

Fields = dict[str, Any]  # field name -> dict keyed by dialogue id, or a list of dialogue ids for a split


def _wrong_length(payload: Any, layout: PickleLayout, source: str) -> DataError:
    """The error for a payload that is not a tuple of the layout's length, naming the layouts that fit."""
    is_tuple = isinstance(payload, (tuple, list))
    found = f"a {len(payload)}-tuple" if is_tuple else f"a {type(payload).__name__}"
    fits = [n for n, lay in LAYOUTS.items() if is_tuple and len(lay.fields) == len(payload)]
    hint = f"; layouts of that length: {', '.join(fits)}" if fits else ""
    return DataError(
        f"{source}: data.layout={layout.name} expects a {len(layout.fields)}-tuple "
        f"({', '.join(layout.fields)}), found {found}{hint}"
    )


def unpack(payload: Any, layout: PickleLayout, source: str) -> Fields:
    """Name the tuple's items after the layout's fields, checking the length and the item kinds."""
    if not isinstance(payload, (tuple, list)) or len(payload) != len(layout.fields):
        raise _wrong_length(payload, layout, source)
    fields = dict(zip(layout.fields, payload))
    for pos, name in enumerate(layout.fields):
        value = fields[name]
        if name in SPLIT_FIELDS:
            if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
                raise DataError(
                    f"{source}: item {pos} ({name} ids) must be a list of dialogue ids, got {type(value).__name__}; "
                    f"is data.layout={layout.name} the file's layout? See docs/pickles.md"
                )
            fields[name] = list(value)
        elif name != UNUSED and not isinstance(value, Mapping):
            raise DataError(
                f"{source}: item {pos} ({name}) must be a dict keyed by dialogue id, got {type(value).__name__}; "
                f"is data.layout={layout.name} the file's layout? See docs/pickles.md"
            )
    return fields


def check_split_ids(fields: Fields, layout: PickleLayout, source: str) -> None:
    """Every split id is in every per-dialogue dict, and no dialogue is in two splits."""
    seen: dict[Any, str] = {}
    for split in (s for s in SPLIT_FIELDS if s in fields):
        for dialogue in fields[split]:
            if dialogue in seen:
                raise DataError(
                    f"{source}: dialogue {dialogue!r} is in both the {seen[dialogue]} and the {split} id lists"
                )
            seen[dialogue] = split
            for name in layout.dialogue_fields:
                if dialogue not in fields[name]:
                    raise DataError(
                        f"{source}: dialogue {dialogue!r} from the {split} id list is missing from {name}"
                    )
