"""A small registry of named graph builders (``graph.builder`` in the config)."""

from __future__ import annotations

from typing import Callable, TypeVar

from ..errors import UnknownNameError

__all__ = ["register_builder", "list_builders", "get_builder"]

_BUILDERS: dict[str, type] = {}
T = TypeVar("T", bound=type)


def register_builder(name: str) -> Callable[[T], T]:
    """Register a builder class under ``name``; a duplicate name raises."""

    def decorator(cls: T) -> T:
        if name in _BUILDERS:
            raise ValueError(f"graph builder {name!r} is already registered ({_BUILDERS[name].__name__})")
        _BUILDERS[name] = cls
        return cls

    return decorator


def list_builders() -> list[str]:
    """Names accepted by ``graph.builder``."""
    return sorted(_BUILDERS)


def get_builder(name: str) -> type:
    """The builder class registered as ``name``; an unknown name lists the choices."""
    if name not in _BUILDERS:
        raise UnknownNameError(f"graph.builder: unknown builder {name!r}; registered: {', '.join(list_builders())}")
    return _BUILDERS[name]
