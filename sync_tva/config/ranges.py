"""Numeric ranges declared next to a config default, and the check that names the offending key.

A field declared as ``hidden: int = bounded(64, POSITIVE)`` carries its rule in the dataclass
field's metadata, so the rule sits beside the default and :class:`Section` checks every such
field without per-section code. Rules that span several fields live in ``check_rules``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["Bound", "Section", "bounded"]


@dataclass(frozen=True)
class Bound:
    """An interval a numeric value must lie in: ``low`` always, ``high`` optional, either end strict."""

    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies inside; written as positive tests so NaN never passes."""
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def rule(self, name: str) -> str:
        """The rule as the user reads it, e.g. ``0 <= dropout < 1`` or ``hidden > 0``."""
        if self.high is None:
            return f"{name} {'>' if self.low_open else '>='} {self.low:g}"
        low_op, high_op = ("<" if self.low_open else "<="), ("<" if self.high_open else "<=")
        return f"{self.low:g} {low_op} {name} {high_op} {self.high:g}"

    def check(self, key: str, value: float) -> None:
        """Raise a ConfigError ``KEY: VALUE must satisfy RULE`` when ``value`` lies outside."""
        if not self.holds(value):
            raise ConfigError(f"{key}: {value!r} must satisfy {self.rule(key.rsplit('.', 1)[-1])}")


POSITIVE = Bound(low=0, low_open=True)  # widths, head counts, rates, sizes
NON_NEGATIVE = Bound(low=0)  # 0 switches the feature off (clipping, decay, limits)
AT_LEAST_ONE = Bound(low=1)  # counts of things that must happen at least once
AT_LEAST_TWO = Bound(low=2)  # counts that define a spread (a standard deviation needs two)
DROPOUT = Bound(low=0, high=1, high_open=True)  # a drop probability of 1 would zero every feature
OPEN_UNIT = Bound(low=0, high=1, low_open=True, high_open=True)  # a share leaving both sides non-empty
UNIT = Bound(low=0, high=1)  # a share where both ends make sense


def bounded(default: Any, bound: Bound) -> Any:
    """A dataclass field with ``default`` whose value :meth:`Section.validate` checks against ``bound``."""
    return field(default=default, metadata={"bound": bound})


class Section:
    """Base of every config section: declared ranges, then nested sections, then cross-field rules."""

    def validate(self, prefix: str) -> None:
        """Raise a ConfigError naming the dotted key (under ``prefix``) of the first value out of range."""
        for f in dataclasses.fields(self):  # every subclass is a dataclass
            key = f"{prefix}.{f.name}" if prefix else f.name
            value = getattr(self, f.name)
            if isinstance(value, Section):
                value.validate(key)
            elif "bound" in f.metadata:
                f.metadata["bound"].check(key, value)
        self.check_rules(prefix)

    def check_rules(self, prefix: str) -> None:
        """Rules that span several fields; runs after every field passed its own range."""
