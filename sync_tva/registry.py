"""Small, loud registries: register by decorator, a duplicate name raises, an unknown name lists the choices."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind; ``key`` is the config key that selects one (for error messages)."""

    def __init__(self, kind: str, key: str):
        self.kind, self.key = kind, key
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering its target under ``name``."""

        def decorator(entry: T) -> T:
            if name in self._entries:
                owner = getattr(self._entries[name], "__module__", "?")
                raise ValueError(f"{self.kind} {name!r} is already registered (by {owner})")
            self._entries[name] = entry
            return entry

        return decorator

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> T:
        """The entry called ``name``."""
        if name not in self._entries:
            raise UnknownNameError(f"{self.key}: unknown {self.kind} {name!r}; registered: {', '.join(self.names())}")
        return self._entries[name]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
