"""Typed, strict configuration tree: YAML loading, dotted ``key=value`` overrides, validation.

Every experiment is a YAML file over the dataclasses of :mod:`.schema`; :mod:`.loader` reads
files and overrides into them. An unknown or misspelt key, a value of the wrong type or out of
range, or a key the chosen data source or model does not read (:mod:`.owners`) is a
:class:`ConfigError` that names the source and the dotted key.
"""

from ..errors import ConfigError
from .loader import apply_overrides, config_from_dict, config_to_dict, load_config, parse_override, read_yaml
from .schema import (
    MODALITIES,
    RESULT_NEUTRAL_KEYS,
    AudioFeaturesConfig,
    ColumnsConfig,
    Config,
    ContextConfig,
    DataConfig,
    DemoConfig,
    FeaturesConfig,
    FinetuneConfig,
    GraphConfig,
    ModelConfig,
    TextFeaturesConfig,
    TrainConfig,
    VisualFeaturesConfig,
)

__all__ = [
    "MODALITIES",
    "RESULT_NEUTRAL_KEYS",
    "AudioFeaturesConfig",
    "ColumnsConfig",
    "Config",
    "ConfigError",
    "ContextConfig",
    "DataConfig",
    "DemoConfig",
    "FeaturesConfig",
    "FinetuneConfig",
    "GraphConfig",
    "ModelConfig",
    "TextFeaturesConfig",
    "TrainConfig",
    "VisualFeaturesConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_override",
    "read_yaml",
]
