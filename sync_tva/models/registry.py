"""The registry of models (``model.name`` in the config): each entry is a :class:`~sync_tva.models.base.GraphModel` subclass."""

from __future__ import annotations

from typing import Any, Callable

from ..config import ModelConfig
from ..graphs.schema import GraphSchema
from ..registry import Registry
from .base import GraphModel

__all__ = ["register_model", "list_models", "build_model"]

_MODELS: Registry[type[GraphModel]] = Registry("model", "model.name")


def register_model(name: str) -> Callable[[type[GraphModel]], type[GraphModel]]:
    """Register a model class under ``name``; a duplicate name, or a class that is not a ``GraphModel``, raises."""
    register = _MODELS.register(name)

    def decorator(cls: type[GraphModel]) -> type[GraphModel]:
        if not (isinstance(cls, type) and issubclass(cls, GraphModel)):
            raise TypeError(
                f"model {name!r}: {getattr(cls, '__qualname__', cls)!r} is not a subclass of sync_tva.models.GraphModel; "
                "every registered model inherits the model contract (needs_dialogue, checkpoint_parts, forward)"
            )
        return register(cls)

    return decorator


def list_models() -> list[str]:
    """Names accepted by ``model.name``."""
    return _MODELS.names()


def build_model(schema: GraphSchema, in_dims: dict[str, int], n_classes: int, cfg: ModelConfig, **parts: Any) -> GraphModel:
    """A freshly initialised instance of the model ``cfg.name`` names (an unknown name lists the choices).

    ``parts`` are what a model's ``checkpoint_parts()`` returned when its checkpoint was written
    (plain data, e.g. the dialogue model's context schema), so it rebuilds without outside files.
    """
    return _MODELS.get(cfg.name)(schema, in_dims, n_classes, cfg, **parts)
