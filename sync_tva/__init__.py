"""sync_tva: the Sync-TVA model (arXiv 2507.21395) for multimodal emotion recognition, on DGL heterographs."""

import os
import warnings

# DGL prints a notice on every import unless a backend is chosen; we only support PyTorch.
os.environ.setdefault("DGLBACKEND", "pytorch")
with warnings.catch_warnings():
    # graphbolt/torchdata deprecation notices are not the user's concern; filter only this import.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torchdata.*")
    import dgl  # noqa: F401

__version__ = "0.1.0"
__all__ = ["__version__"]
