"""Exceptions for bad input: each message says what is wrong, where, and how to fix it.

Commands print these without a traceback; anything else is a bug and keeps its traceback.
"""

__all__ = ["SyncTVAError", "ConfigError", "SchemaError", "DataError", "CheckpointError", "UnknownNameError"]


class SyncTVAError(Exception):
    """Base of every error caused by the user's input rather than by a bug."""


class ConfigError(SyncTVAError, ValueError):
    """A config file or override that does not fit the config tree."""


class SchemaError(SyncTVAError, ValueError):
    """A graph schema that is malformed; the message names the file and the key."""


class DataError(SyncTVAError, ValueError):
    """A data file or record that cannot be used; the message names the file and the utterance."""


class CheckpointError(SyncTVAError, ValueError):
    """A checkpoint that cannot be loaded safely or does not match the run."""


class UnknownNameError(SyncTVAError, KeyError):
    """A name missing from a registry; the message lists the registered names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""
