"""The commands' old import path of :mod:`sync_tva.distributed`, where every torch.distributed helper now lives.

Kept only while ``cli/run.py`` and ``cli/extract.py`` import ``distributed``, ``env_shard`` and
``DistContext`` from here; once they import :mod:`sync_tva.distributed`, delete this module.
"""

from ..distributed import DistContext, distributed, env_shard

__all__ = ["DistContext", "distributed", "env_shard"]
