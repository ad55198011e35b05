"""The registry of models (``model.name`` in the config): each entry is built from the schema and the config."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from torch import nn

from ..config import ModelConfig
from ..graphs.schema import GraphSchema
from ..registry import Registry

__all__ = ["ModelFactory", "register_model", "list_models", "build_model"]


class ModelFactory(Protocol):
    """What a registered model class looks like: built from the schema, never from a sample graph."""

    def __call__(self, schema: GraphSchema, in_dims: dict[str, int], n_classes: int, cfg: ModelConfig, **parts: Any) -> nn.Module: ...


_MODELS: Registry[ModelFactory] = Registry("model", "model.name")


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a model class under ``name``; a duplicate name raises."""
    return _MODELS.register(name)


def list_models() -> list[str]:
    """Names accepted by ``model.name``."""
    return _MODELS.names()


def build_model(schema: GraphSchema, in_dims: dict[str, int], n_classes: int, cfg: ModelConfig, **parts: Any) -> nn.Module:
    """A freshly initialised instance of the model ``cfg.name`` names (an unknown name lists the choices).

    ``parts`` are what a model's ``checkpoint_parts()`` returned when its checkpoint was written
    (plain data, e.g. the context model's dialogue schema), so it rebuilds without outside files.
    """
    return _MODELS.get(cfg.name)(schema, in_dims, n_classes, cfg, **parts)
