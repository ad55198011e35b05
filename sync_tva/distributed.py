"""torch.distributed in one place: the process group, each rank's device, shards of work, DDP and the few collectives.

It sits in the foundation because both extraction (``features``: each rank extracts its shard, rank 0
fine-tunes) and training (``train``: DDP) use it.

``torchrun --nproc_per_node N -m sync_tva.run ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. :func:`distributed`
turns that environment into a :class:`DistContext` (NCCL on GPUs, gloo on the CPU; rank ``r``
on ``cuda:LOCAL_RANK``); without it, the context is a single process and every helper is a no-op.
Across machines, the run directory and the feature store must be on a filesystem every node sees.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .errors import ConfigError

__all__ = [
    "DistContext",
    "LOCAL",
    "distributed",
    "env_shard",
    "group_shard",
    "in_shard",
    "local_gpu",
    "loss_normaliser",
    "parse_shard",
    "touch_all",
    "wrap_model",
]

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a distributed run; ``world_size == 1`` is a plain single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # Every tensor this context handed to a collective, kept until the process ends. torch 2.2's
    # gloo worker threads may drop the last reference to a finished collective's tensors while
    # destroy_process_group holds the GIL and joins them; freeing a tensor that Python created
    # needs the GIL, so that would deadlock (pytorch#56297). A few bytes per epoch.
    _sent: list[torch.Tensor] = field(default_factory=list, repr=False, compare=False)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and logs."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def shard(self) -> tuple[int, int] | None:
        """``(rank, world_size)`` for sharding work, None for a single process."""
        return (self.rank, self.world_size) if self.is_distributed else None

    def all_reduce_sum(self, values: Sequence[float]) -> list[float]:
        """The element-wise sum of ``values`` over all ranks (float64, on the backend's device)."""
        if not self.is_distributed:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        self._sent.append(tensor)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``obj`` on every rank (any picklable object; the ranks are one trusted job)."""
        if not self.is_distributed:
            return obj
        payload = pickle.dumps(obj) if self.rank == src else b""
        size = torch.tensor([len(payload)], dtype=torch.long, device=self.device)
        self._sent.append(size)
        dist.broadcast(size, src=src)
        data = torch.zeros(int(size.item()), dtype=torch.uint8)
        if self.rank == src:
            data = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
        data = data.to(self.device)
        self._sent.append(data)
        dist.broadcast(data, src=src)
        return obj if self.rank == src else pickle.loads(data.cpu().numpy().tobytes())

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.is_distributed:
            dist.barrier(device_ids=[self.device.index] if self.device.type == "cuda" else None)


LOCAL = DistContext()  # the single-process context


def _env_ranks() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` from the torchrun environment, None outside torchrun."""
    present = [k for k in _ENV if k in os.environ]
    if not present:
        return None
    if len(present) < len(_ENV):
        missing = sorted(set(_ENV) - set(present))
        raise ConfigError(f"distributed environment: {present} are set but {missing} are not; launch with torchrun")
    try:
        rank, world, local = (int(os.environ[k]) for k in _ENV)
    except ValueError:
        raise ConfigError(f"distributed environment: {', '.join(f'{k}={os.environ[k]!r}' for k in _ENV)} are not integers") from None
    if not (0 <= rank < world and 0 <= local <= rank):
        raise ConfigError(f"distributed environment: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local} are inconsistent")
    return rank, world, local


def env_shard() -> tuple[int, int] | None:
    """``(RANK, WORLD_SIZE)`` under torchrun with more than one process, else None (no process group needed)."""
    ranks = _env_ranks()
    return (ranks[0], ranks[1]) if ranks is not None and ranks[1] > 1 else None


def group_shard() -> tuple[int, int] | None:
    """``(rank, world_size)`` inside a torch.distributed run of several processes, else None."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size()
    return None


def local_gpu(device: torch.device) -> torch.device:
    """Under torchrun every process takes its own GPU: ``cuda`` becomes ``cuda:LOCAL_RANK`` (a given index is kept)."""
    local = os.environ.get("LOCAL_RANK")
    return torch.device("cuda", int(local)) if device.type == "cuda" and device.index is None and local is not None else device


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` (0-based ``i < n``) to ``(i, n)``; None stays None."""
    if text is None:
        return None
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ConfigError(f"shard {text!r}: expected i/n with integers, e.g. 0/4") from None
    if not 0 <= i < n:
        raise ConfigError(f"shard {text!r}: need 0 <= i < n (shards are numbered from 0)")
    return i, n


def in_shard(split: str, uid: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``uid`` belongs to ``shard``: a stable hash, so every machine agrees without talking."""
    if shard is None:
        return True
    digest = hashlib.sha1(f"{split}/{uid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


@contextmanager
def distributed(device: torch.device, *, timeout: timedelta = timedelta(minutes=30)) -> Iterator[DistContext]:
    """Join the torchrun process group for the duration of the block (a single process gets world size 1 on ``device``).

    ``device`` is the resolved ``train.device``/``features.device``: CUDA selects NCCL and
    ``cuda:LOCAL_RANK``; the CPU selects gloo. ``timeout`` bounds every collective, so a dead
    peer ends the run instead of hanging it.
    """
    ranks = _env_ranks()
    if ranks is None or ranks[1] == 1:
        yield DistContext(device=device)
        return
    rank, world, local = ranks
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} GPUs are visible; lower --nproc_per_node")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout)
    try:
        yield DistContext(rank=rank, world_size=world, local_rank=local, device=device)
    finally:
        dist.destroy_process_group()


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """``model`` in DistributedDataParallel when the run has several ranks, else ``model`` itself.

    No ``find_unused_parameters``: MSDE skips its self-attention for a modality absent from a
    whole batch, so the loop adds :func:`touch_all` to each rank's loss instead; every parameter is
    then in every rank's graph and DDP's reducer sees each one once per step, without the
    extra graph traversal that ``find_unused_parameters=True`` costs on every step.
    """
    if not ctx.is_distributed:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def touch_all(model: nn.Module) -> torch.Tensor:
    """A zero that depends on every trainable parameter: added to a loss, each gets a (zero) gradient."""
    return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0


def loss_normaliser(loss_fn: nn.Module, labels: torch.Tensor) -> torch.Tensor:
    """What ``loss_fn``'s mean divides by for these labels: the summed class weights of a weighted
    cross-entropy, else the number of utterances.

    A rank's share of a global batch's loss is its mean loss times its normaliser over the
    global batch's, so that the ranks' losses add up to the single-process loss of that batch.
    """
    weight = getattr(loss_fn, "weight", None)
    if isinstance(loss_fn, nn.CrossEntropyLoss) and weight is not None:
        return weight.to(labels.device)[labels].sum()
    return torch.tensor(float(len(labels)), device=labels.device)
