"""Graph schemas and builders: utterances to DGL heterographs."""

from .batching import Batch, iterate_batches
from .builder import PLACEHOLDER_ETYPE, PooledGraphBuilder, UtteranceGraphBuilder, edge_index
from .registry import get_builder, list_builders, register_builder
from .schema import EdgeSpec, GraphSchema, SchemaError, list_schemas, load_schema, schema_from_dict

__all__ = [
    "Batch",
    "iterate_batches",
    "EdgeSpec",
    "GraphSchema",
    "SchemaError",
    "load_schema",
    "list_schemas",
    "schema_from_dict",
    "UtteranceGraphBuilder",
    "PooledGraphBuilder",
    "edge_index",
    "PLACEHOLDER_ETYPE",
    "register_builder",
    "list_builders",
    "get_builder",
]
