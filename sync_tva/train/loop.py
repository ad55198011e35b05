"""The training loop as plain functions: ``train_one_epoch``, ``collect_logits``, ``evaluate``, ``fit``.

``fit`` checkpoints after every epoch (``last.pt``) and on every improvement of the dev
weighted F1 (``best.pt``), stops early after ``train.patience`` epochs without one, and
resumes from ``last.pt`` when the run directory already has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import config_to_dict
from ..graphs import UtteranceGraphBuilder, iterate_batches
from ..io import write_yaml
from ..records import Utterance
from .checkpoint import TrainState, load_checkpoint, restore, save_checkpoint
from .experiment import Experiment, checkpoint_extra
from .logging import RunLogger
from .losses import make_loss
from .metrics import Metrics, compute_metrics

__all__ = ["train_one_epoch", "collect_logits", "evaluate", "fit", "Logits"]


def train_one_epoch(exp: Experiment, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> float:
    """One pass over the training split in an order fixed by (seed, epoch); returns the mean loss."""
    cfg = exp.cfg.train
    exp.model.train()
    total, seen = 0.0, 0
    batches = iterate_batches(exp.data.train, exp.builder, cfg.batch_size, shuffle_seed=exp.cfg.seed * 100_003 + epoch)
    n_batches = -(-len(exp.data.train) // cfg.batch_size)
    for batch in tqdm(batches, total=n_batches, desc=f"epoch {epoch}", leave=False, unit="batch"):
        batch = batch.to(exp.device)
        loss = loss_fn(exp.model(batch.graph).logits, batch.labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(exp.model.parameters(), cfg.grad_clip)
        optimizer.step()
        total += float(loss) * len(batch.uids)
        seen += len(batch.uids)
    return total / max(seen, 1)


@dataclass
class Logits:
    """Per-utterance ids, true labels and logits [N, C], in input order."""

    uids: list[str]
    y_true: list[int]
    logits: torch.Tensor


@torch.no_grad()
def collect_logits(model: nn.Module, builder: UtteranceGraphBuilder, utterances: Sequence[Utterance], batch_size: int, device: torch.device) -> Logits:
    """The model's logits for ``utterances`` in eval mode (the caller's mode is restored)."""
    was_training = model.training
    model.eval()
    uids, y_true, logits = [], [], []
    try:
        for batch in iterate_batches(utterances, builder, batch_size):
            logits.append(model(batch.to(device).graph).logits.cpu())
            uids += batch.uids
            y_true += batch.labels.tolist()
    finally:
        model.train(was_training)
    out = torch.cat(logits) if logits else torch.zeros(0, 0)
    return Logits(uids=uids, y_true=y_true, logits=out)


def evaluate(exp: Experiment, utterances: Sequence[Utterance]) -> Metrics:
    """Metrics of the current model on ``utterances``."""
    out = collect_logits(exp.model, exp.builder, utterances, exp.cfg.train.batch_size, exp.device)
    y_pred = out.logits.argmax(dim=-1).tolist() if out.uids else []
    return compute_metrics(out.y_true, y_pred, exp.data.labels)


def fit(exp: Experiment, out: Path, logger: RunLogger) -> TrainState:
    """Train with early stopping on dev weighted F1; leave the best weights loaded in ``exp.model``.

    Writes ``OUT/config.yaml`` once the run is known to start afresh or to resume the same config.
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
        logger.info(f"resumed from {ckpt_dir / 'last.pt'} after epoch {state.epoch}")
    write_yaml(out / "config.yaml", config)  # only now: a refused resume must not overwrite the run's config
    epochs = tqdm(range(state.epoch + 1, cfg.epochs + 1), desc="training", unit="epoch", initial=state.epoch, total=cfg.epochs)
    for epoch in epochs:
        if state.stale_epochs >= cfg.patience:
            break
        train_loss = train_one_epoch(exp, loss_fn, optimizer, epoch)
        dev = evaluate(exp, exp.data.dev)
        improved = dev.weighted_f1 > state.best_metric
        state.epoch = epoch
        state.stale_epochs = 0 if improved else state.stale_epochs + 1
        if improved:
            state.best_metric, state.best_epoch = dev.weighted_f1, epoch
        record = {"epoch": epoch, "train_loss": train_loss, "dev_accuracy": dev.accuracy, "dev_weighted_f1": dev.weighted_f1, "dev_macro_f1": dev.macro_f1}
        state.history.append(record)
        if improved:
            save_checkpoint(ckpt_dir / "best.pt", exp.model, None, state, config, checkpoint_extra(exp))
        save_checkpoint(ckpt_dir / "last.pt", exp.model, optimizer, state, config, checkpoint_extra(exp))
        logger.epoch_end(exp, record, dev)
        epochs.set_postfix(loss=f"{train_loss:.3f}", dev_wf1=f"{dev.weighted_f1:.3f}", best=f"{state.best_metric:.3f}")
    epochs.close()
    if (ckpt_dir / "best.pt").is_file():
        exp.model.load_state_dict(load_checkpoint(ckpt_dir / "best.pt")["model"])
    return state
