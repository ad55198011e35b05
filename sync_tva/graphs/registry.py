"""The registry of named graph builders (``graph.builder`` in the config)."""

from __future__ import annotations

from typing import Callable

from ..registry import Registry

__all__ = ["register_builder", "list_builders", "get_builder"]

_BUILDERS: Registry[type] = Registry("builder", "graph.builder")


def register_builder(name: str) -> Callable[[type], type]:
    """Register a builder class under ``name``; a duplicate name raises."""
    return _BUILDERS.register(name)


def list_builders() -> list[str]:
    """Names accepted by ``graph.builder``."""
    return _BUILDERS.names()


def get_builder(name: str) -> type:
    """The builder class registered as ``name``; an unknown name lists the choices."""
    return _BUILDERS.get(name)
