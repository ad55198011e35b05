"""The training loop as plain functions: ``train_one_epoch``, ``collect_logits``, ``evaluate``, ``fit``; the prediction record.

``fit`` checkpoints after every epoch (``last.pt``) and on every improvement of the dev
weighted F1 (``best.pt``), stops early after ``train.patience`` epochs without one, and
resumes from ``last.pt`` when the run directory already has it.

Under ``torchrun`` (a :class:`DistContext` with several ranks) the model trains in
DistributedDataParallel: every rank steps through the same seeded plan of global batches and
trains on its share of each; rank 0 alone evaluates dev (and tells the others the result),
writes checkpoints and logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import config_to_dict
from ..graphs import UtteranceGraphBuilder, iterate_batches, plan_utterances, shard_units
from ..io import write_yaml
from ..models import GraphModel, eval_mode
from ..records import Utterance
from .augment import drop_modalities
from .checkpoint import TrainState, load_checkpoint, restore, save_checkpoint
from .distributed import LOCAL, DistContext, loss_normaliser, touch_all, wrap_model
from .experiment import Experiment, TrainedModel, checkpoint_extra
from .logging import RunLogger
from .losses import make_loss
from .metrics import Metrics, compute_metrics

__all__ = ["train_one_epoch", "collect_logits", "evaluate", "fit", "Predictions"]


def train_one_epoch(
    exp: Experiment, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, *, model: nn.Module | None = None, dist: DistContext = LOCAL
) -> float:
    """One pass over the training split in an order fixed by (seed, epoch); returns the mean loss.

    ``model`` is ``exp.model`` or its DDP wrapper. Each rank weights its mean loss by its share
    of the global batch's normaliser times the world size (DDP averages gradients), so the
    update equals the single-process update on the global batch. A rank whose share is empty
    runs a borrowed unit with weight 0: it must still join the gradient all-reduce.
    """
    cfg = exp.cfg.train
    model = model if model is not None else exp.model
    model.train()
    seed = exp.cfg.seed * 100_003 + epoch
    context = exp.model.dialogue_builder()  # a model that reads the conversation trains on whole dialogues
    plan = plan_utterances(exp.data.train, cfg.batch_size, context=context, shuffle_seed=seed)  # planned once: every rank's share
    train = drop_modalities(exp.data.train, cfg.modality_dropout, seed) if cfg.modality_dropout > 0 else exp.data.train
    own = iterate_batches(train, exp.builder, cfg.batch_size, plan=plan, shard=dist.shard, context=context, workers=cfg.prefetch_workers)
    total = 0.0
    for planned in tqdm(plan, desc=f"epoch {epoch}", leave=False, unit="batch", disable=not dist.is_main):
        mine = shard_units(planned, dist.rank, dist.world_size)
        if mine:
            batch = next(own).to(exp.device)
        else:  # this rank's share is empty
            batch = next(iterate_batches(train, exp.builder, cfg.batch_size, plan=[planned[:1]], context=context)).to(exp.device)
        everyone = torch.tensor([exp.data.train[i].label for unit in planned for i in unit], device=exp.device)
        share = loss_normaliser(loss_fn, batch.labels) / loss_normaliser(loss_fn, everyone) if mine else torch.zeros((), device=exp.device)
        loss = loss_fn(model(batch.graph, dialogue=batch.dialogue).logits, batch.labels)
        scaled = loss * (share * dist.world_size)
        if dist.is_distributed:
            scaled = scaled + touch_all(exp.model)  # every parameter in every rank's graph: see wrap_model
        optimizer.zero_grad(set_to_none=True)
        scaled.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(exp.model.parameters(), cfg.grad_clip)
        optimizer.step()
        total += float(loss * share) * len(everyone)
    return dist.all_reduce_sum([total])[0] / max(len(exp.data.train), 1)


@dataclass
class Predictions:
    """Per-utterance ids, true labels and logits [N, C], in input order: the one prediction record."""

    uids: list[str]
    y_true: list[int]
    logits: torch.Tensor

    @property
    def probs(self) -> torch.Tensor:
        """Class probabilities [N, C]."""
        return torch.softmax(self.logits, dim=-1)

    @property
    def y_pred(self) -> list[int]:
        """The most probable class of each utterance."""
        return self.logits.argmax(dim=-1).tolist() if self.uids else []


@torch.no_grad()
def collect_logits(model: GraphModel, builder: UtteranceGraphBuilder, utterances: Sequence[Utterance], batch_size: int, device: torch.device) -> Predictions:
    """The model's logits for ``utterances`` in eval mode (the caller's mode is restored)."""
    uids, y_true, logits = [], [], []
    with eval_mode(model):
        for batch in iterate_batches(utterances, builder, batch_size, context=model.dialogue_builder()):  # input order kept
            batch = batch.to(device)
            logits.append(model(batch.graph, dialogue=batch.dialogue).logits.cpu())
            uids += batch.uids
            y_true += batch.labels.tolist()
    out = torch.cat(logits) if logits else torch.zeros(0, 0)
    return Predictions(uids=uids, y_true=y_true, logits=out)


def evaluate(trained: TrainedModel, utterances: Sequence[Utterance]) -> Metrics:
    """Metrics of the current model on ``utterances``."""
    out = collect_logits(trained.model, trained.builder, utterances, trained.cfg.train.batch_size, trained.device)
    return compute_metrics(out.y_true, out.y_pred, trained.labels)


def fit(exp: Experiment, out: Path, logger: RunLogger | None, dist: DistContext = LOCAL) -> TrainState:
    """Train with early stopping on dev weighted F1; leave the best weights loaded in ``exp.model``.

    Writes ``OUT/config.yaml`` once the run is known to start afresh or to resume the same config.
    Under DDP every rank resumes from ``last.pt``; only rank 0 (which gets the ``logger``; the
    others get None) evaluates, writes and ends with the best weights loaded.
    """
    cfg = exp.cfg.train
    ckpt_dir = out / "checkpoints"
    config = config_to_dict(exp.cfg)
    optimizer = torch.optim.AdamW(exp.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = make_loss(cfg.loss, [u.label for u in exp.data.train], len(exp.data.labels), focal_gamma=cfg.focal_gamma)
    loss_fn = loss_fn.to(exp.device)
    state = TrainState()
    if cfg.resume and (ckpt_dir / "last.pt").is_file():
        state = restore(ckpt_dir / "last.pt", exp.model, optimizer, config)
        if dist.is_main:
            logger.info(f"resumed from {ckpt_dir / 'last.pt'} after epoch {state.epoch}")
    if dist.is_main:
        write_yaml(out / "config.yaml", config)  # only now: a refused resume must not overwrite the run's config
    model = wrap_model(exp.model, dist)  # after restoring: DDP starts every rank from rank 0's weights
    epochs = tqdm(range(state.epoch + 1, cfg.epochs + 1), desc="training", unit="epoch", initial=state.epoch, total=cfg.epochs, disable=not dist.is_main)
    for epoch in epochs:
        if state.stale_epochs >= cfg.patience:
            break
        train_loss = train_one_epoch(exp, loss_fn, optimizer, epoch, model=model, dist=dist)
        # Rank 0 evaluates the whole dev set once and tells the others: dev is small next to an
        # epoch of training, the metrics are exactly the single-process ones, and every rank then
        # takes the same early-stopping decision.
        dev = dist.broadcast(evaluate(exp, exp.data.dev) if dist.is_main else None)
        improved = dev.weighted_f1 > state.best_metric
        state.epoch = epoch
        state.stale_epochs = 0 if improved else state.stale_epochs + 1
        if improved:
            state.best_metric, state.best_epoch = dev.weighted_f1, epoch
        record = {"epoch": epoch, "train_loss": train_loss, "dev_accuracy": dev.accuracy, "dev_weighted_f1": dev.weighted_f1, "dev_macro_f1": dev.macro_f1}
        state.history.append(record)
        if not dist.is_main:
            continue
        if improved:
            save_checkpoint(ckpt_dir / "best.pt", exp.model, None, state, config, checkpoint_extra(exp))
        save_checkpoint(ckpt_dir / "last.pt", exp.model, optimizer, state, config, checkpoint_extra(exp))
        logger.epoch_end(exp, record, dev)
        epochs.set_postfix(loss=f"{train_loss:.3f}", dev_wf1=f"{dev.weighted_f1:.3f}", best=f"{state.best_metric:.3f}")
    epochs.close()
    if dist.is_main and (ckpt_dir / "best.pt").is_file():
        exp.model.load_state_dict(load_checkpoint(ckpt_dir / "best.pt")["model"])
    dist.barrier()  # no rank leaves (and, with --seeds, starts the next run) before rank 0's checkpoints are written
    return state
