"""torch.distributed on the CPU (gloo, 2 processes): DDP steps equal single-process steps; torchrun runs and extraction.

Every multi-process test has a generous hang guard: a collective that never completes must
fail the test, not stall the suite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from conftest import TINY

from sync_tva.config import load_config
from sync_tva.distributed import LOCAL, DistContext, distributed, env_shard, loss_normaliser, wrap_model
from sync_tva.testing import FAST, built_once, make_meld_tree, make_text_model
from sync_tva.train.experiment import build_experiment
from sync_tva.train.loop import train_one_epoch
from sync_tva.train.losses import make_loss

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD = 300  # seconds; a healthy 2-process case here takes well under a minute
NO_DROPOUT = ["model.dropout=0", "model.attn_dropout=0", "train.num_threads=1"]
RUN_ARGS = [*TINY, *NO_DROPOUT, "train.epochs=3", "train.batch_size=8"]
# (name, train utterances, batch size, loss, utterances that keep their audio nodes; None = all)
CASES = [
    ("unequal shares, weighted loss", 7, 7, "weighted_ce", None),
    ("an empty share", 3, 2, "ce", None),  # the second batch has one utterance: rank 0's share is empty
    ("a share without audio", 4, 4, "focal", {0}),  # MSDE skips its audio attention on one rank
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_epoch(case: tuple, ctx: DistContext) -> dict[str, torch.Tensor]:
    """Parameters after one epoch of ``case`` (one or two SGD steps) from the seeded initialisation.

    SGD, not Adam: Adam's first step is about ``lr * sign(grad)``, which turns the rounding
    noise of a near-zero gradient into a full step and would hide what is being compared.
    """
    _, n_train, batch_size, loss, keep_audio = case
    cfg = load_config(None, [*TINY, *NO_DROPOUT, f"train.batch_size={batch_size}", f"train.loss={loss}"])
    exp = build_experiment(cfg)
    train = exp.data.train[:n_train]
    if keep_audio is not None:
        train = [u if i in keep_audio else replace(u, features={**u.features, "audio": u.features["audio"][:0]}) for i, u in enumerate(train)]
    exp.data = replace(exp.data, train=train)
    loss_fn = make_loss(loss, [u.label for u in train], len(exp.data.labels))
    optimizer = torch.optim.SGD(exp.model.parameters(), lr=0.5)
    train_one_epoch(exp, loss_fn, optimizer, epoch=1, model=wrap_model(exp.model, ctx), dist=ctx)
    return {k: v.detach().clone() for k, v in exp.model.state_dict().items()}


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    with distributed(torch.device("cpu")) as ctx:
        assert ctx.is_distributed and ctx.rank == rank
        results = [_one_epoch(case, ctx) for case in CASES]
        if ctx.is_main:
            torch.save(results, out)


def _spawn(fn, args: tuple, nprocs: int) -> None:
    """``mp.spawn`` with a deadline: a hung collective fails the test instead of stalling it."""
    context = mp.start_processes(fn, args=args, nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + HANG_GUARD
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for proc in context.processes:
                proc.kill()
            pytest.fail(f"distributed workers still running after {HANG_GUARD} s: a hung collective")


@pytest.mark.slow  # two spawned interpreters: 30-80 s on the shared CPU
def test_two_ranks_step_like_one_process_on_the_global_batch(tmp_path):
    out = tmp_path / "ddp.pt"
    _spawn(_worker, (_free_port(), str(out)), nprocs=2)
    for case, ddp in zip(CASES, torch.load(out)):
        single = _one_epoch(case, LOCAL)
        init = build_experiment(load_config(None, [*TINY, *NO_DROPOUT])).model.state_dict()
        moved = [k for k in single if not torch.equal(single[k], init[k])]
        assert moved, f"{case[0]}: the step changed nothing, so the comparison would prove nothing"
        for key in single:
            torch.testing.assert_close(ddp[key], single[key], rtol=1e-5, atol=1e-6, msg=lambda m, c=case[0], k=key: f"{c}: {k}: {m}")


def test_single_process_context_is_a_no_op_and_env_is_checked(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert env_shard() is None
    with distributed(torch.device("cpu")) as ctx:
        assert not ctx.is_distributed and ctx.is_main and ctx.shard is None
        assert ctx.all_reduce_sum([1.5, 2.0]) == [1.5, 2.0] and ctx.broadcast({"a": 1}) == {"a": 1}
        ctx.barrier()
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(Exception, match="WORLD_SIZE"):
        env_shard()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert env_shard() == (1, 2)


def test_loss_normaliser_makes_shares_add_up():
    """Weighted shares of the per-rank mean losses add up to the global mean loss."""
    torch.manual_seed(0)
    logits, labels = torch.randn(9, 4), torch.tensor([0, 1, 1, 2, 3, 3, 3, 0, 2])
    for loss_fn in (make_loss("ce", labels.tolist(), 4), make_loss("weighted_ce", labels.tolist(), 4), make_loss("focal", labels.tolist(), 4)):
        whole = loss_fn(logits, labels)
        parts = sum(
            loss_fn(logits[s], labels[s]) * loss_normaliser(loss_fn, labels[s]) / loss_normaliser(loss_fn, labels)
            for s in (slice(0, 5), slice(5, 9))
        )
        torch.testing.assert_close(parts, whole)


def _torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
            "--master_port", str(_free_port()), *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and "tensorboard" not in p.parts}


@pytest.mark.slow
def test_torchrun_run_writes_one_complete_run_matching_single_process(tmp_path):
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    done = subprocess.run(_torchrun("-m", "sync_tva.run", "--out", str(ddp), *RUN_ARGS), cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=HANG_GUARD)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best epoch") == 1  # rank 0 alone reports
    subprocess.run([sys.executable, "-m", "sync_tva.run", "--out", str(single), *RUN_ARGS], cwd=ROOT, env=_env(),
                   capture_output=True, text=True, timeout=HANG_GUARD, check=True)
    # The same files, none half-written (atomic writes leave no dot-files) and one event file.
    assert _files(ddp) == _files(single) >= {"config.yaml", "metrics.json", "history.json", "checkpoints/best.pt", "checkpoints/last.pt"}
    assert not [p for p in ddp.rglob(".*")] and len(list((ddp / "tensorboard").iterdir())) == 1
    # Without dropout both runs take the same steps up to the order of float sums: losses agree to
    # 1e-5 relative; metrics may differ only by an argmax flipped by rounding (stated tolerance 0.05).
    h_ddp, h_single = (json.loads((r / "history.json").read_text()) for r in (ddp, single))
    assert [h["epoch"] for h in h_ddp] == [1, 2, 3]
    np.testing.assert_allclose([h["train_loss"] for h in h_ddp], [h["train_loss"] for h in h_single], rtol=1e-5)
    m_ddp, m_single = (json.loads((r / "metrics.json").read_text()) for r in (ddp, single))
    for split in ("dev", "test"):
        for key in ("accuracy", "weighted_f1", "macro_f1"):
            assert abs(m_ddp[split][key] - m_single[split][key]) <= 0.05, (split, key)


@pytest.mark.slow
def test_torchrun_folds_run_each_fold_as_one_distributed_run(tmp_path):
    """Under torchrun the folds run one after another, each a DDP run that rank 0 alone writes and reports."""
    args = ["--folds", "speaker:2", *RUN_ARGS[:-2], "train.epochs=1", "train.batch_size=8"]
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    done = subprocess.run(_torchrun("-m", "sync_tva.run", "--out", str(ddp), *args), cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=HANG_GUARD)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best epoch") == 2  # one report per fold, from rank 0 only
    subprocess.run([sys.executable, "-m", "sync_tva.run", "--out", str(single), *args], cwd=ROOT, env=_env(),
                   capture_output=True, text=True, timeout=HANG_GUARD, check=True)
    assert _files(ddp) == _files(single) >= {"summary.json", "fold-0/fold.json", "fold-1/metrics.json", "fold-1/checkpoints/best.pt"}
    folds = [json.loads((ddp / f"fold-{i}" / "fold.json").read_text()) for i in (0, 1)]
    assert folds == [json.loads((single / f"fold-{i}" / "fold.json").read_text()) for i in (0, 1)]
    assert not set(folds[0]["groups"]) & set(folds[1]["groups"])


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of the torchrun worker with ``RANK=rank`` among the launcher's children."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    for pid in children:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    return None


@pytest.mark.slow
def test_killed_rank_makes_the_rerun_resume_from_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    cmd = _torchrun("-m", "sync_tva.run", "--out", str(out), *TINY, *NO_DROPOUT, "train.epochs=8", "train.patience=8")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + HANG_GUARD
    last = out / "checkpoints" / "last.pt"
    while not last.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    victim = _rank_pid(proc.pid, 1)
    assert victim is not None, "no rank 1 worker found"
    os.kill(victim, signal.SIGKILL)
    assert proc.wait(timeout=HANG_GUARD) != 0  # torchrun stops the other rank and fails
    assert not (out / "metrics.json").exists()
    killed_after = json.loads((out / "history.json").read_text())[-1]["epoch"] if (out / "history.json").exists() else None
    assert killed_after is None  # history.json is written at the end only
    done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=HANG_GUARD)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = [line for line in done.stdout.splitlines() if "resumed from" in line]
    assert len(resumed) == 1 and str(last) in resumed[0], done.stdout[-2000:]
    epoch = int(resumed[0].rsplit("after epoch", 1)[1])
    assert 1 <= epoch < 8
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, 9))  # each epoch once: the rerun did only the rest


@pytest.fixture(scope="module")
def meld(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.getbasetemp()
    tree = built_once(base, "meld36", lambda d: make_meld_tree(d, per_split=12, corrupt=("train", "dia1_utt2"), missing=("dev", "dia0_utt1")))
    return tree, built_once(base, "text_model", make_text_model)


def _store_content(store: Path) -> dict[str, object]:
    """Every file of a store by relative path: arrays of feature files, parsed JSON of the rest."""
    content: dict[str, object] = {}
    for file in sorted(p for p in store.rglob("*") if p.is_file()):
        key = str(file.relative_to(store))
        if file.suffix == ".npz":
            with np.load(file) as data:
                content[key] = {k: data[k].tolist() for k in data.files}
        elif file.name == "failures.jsonl":
            content[key] = sorted(file.read_text().splitlines())
        else:
            content[key] = json.loads(file.read_text())
    return content


@pytest.mark.slow
def test_torchrun_extraction_gives_the_single_process_store(meld, tmp_path):
    tree, text_model = meld
    args = ["--config", str(ROOT / "configs" / "meld.yaml"), f"data.root={tree}", f"features.text.model={text_model}", *FAST]
    ddp = subprocess.run(_torchrun("-m", "sync_tva.extract", *args, f"features.store={tmp_path / 'ddp'}"), cwd=ROOT,
                         env=_env(), capture_output=True, text=True, timeout=HANG_GUARD)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "sync_tva.extract", *args, f"features.store={tmp_path / 'single'}"],
                            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=HANG_GUARD, check=True)
    totals = [json.loads(line) for line in ddp.stdout.splitlines() if line.startswith("{")]
    assert totals == [json.loads(single.stdout.strip().splitlines()[-1])] == [{"extracted": 34, "cached": 0, "failed": 2}]
    assert "(rank 1 of 2)" in ddp.stderr  # both ranks worked
    ddp_store, single_store = _store_content(tmp_path / "ddp"), _store_content(tmp_path / "single")
    assert ddp_store.keys() == single_store.keys() and len(ddp_store["failures.jsonl"]) == 2
    for key, value in single_store.items():
        if key.endswith(".npz"):
            # Float tolerance: a rank batches other clips together, and CPU kernels choose by batch shape.
            np.testing.assert_allclose(np.asarray(ddp_store[key]["feat"]), np.asarray(value["feat"]), rtol=1e-4, atol=1e-4, err_msg=key)
            assert ddp_store[key]["tokens"] == value["tokens"], key
        else:
            assert ddp_store[key] == value, key
