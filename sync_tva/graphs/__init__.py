"""Graph schemas and builders: utterances to DGL heterographs."""

from .batching import (
    Batch,
    Plan,
    Unit,
    batch_units,
    iterate_batches,
    make_batch,
    plan_batches,
    plan_utterances,
    planned_utterances,
    shard_units,
    single_units,
)
from .builder import PLACEHOLDER_ETYPE, PooledGraphBuilder, UtteranceGraphBuilder, edge_index
from .dialogue import (
    DialogueGraphBuilder,
    DialogueRelation,
    DialogueSchema,
    list_dialogue_schemas,
    load_dialogue_schema,
)
from .registry import get_builder, list_builders, register_builder
from .schema import EdgeSpec, GraphSchema, SchemaError, list_schemas, load_schema, schema_from_dict

__all__ = [
    "Batch",
    "iterate_batches",
    "make_batch",
    "plan_batches",
    "plan_utterances",
    "planned_utterances",
    "batch_units",
    "Plan",
    "shard_units",
    "single_units",
    "Unit",
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
    "DialogueRelation",
    "DialogueSchema",
    "DialogueGraphBuilder",
    "load_dialogue_schema",
    "list_dialogue_schemas",
    "register_builder",
    "list_builders",
    "get_builder",
]
