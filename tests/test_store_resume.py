"""Resuming a fit on a sharded feature store (``--data.feature_store shards``) mid-epoch: the
resumed run sees the rest of the interrupted epoch's clips, each once, in the order the
uninterrupted run saw them, reshuffles the next epoch as it did, and (one process) ends with the
same weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pytorch_lightning import Callback

from vidrec.training.checkpointing import LastCheckpoint
from vidrec.training.cli import cli_main

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

EPOCHS = 3


class Preempted(Exception):
    """What a killed run leaves behind: the checkpoint it wrote, nothing more."""


class SeenClips(Callback):
    """The clip indices of every batch trained on, per epoch; also appended to ``out/rank<R>.jsonl``."""

    def __init__(self, out: str | None = None):
        self.epochs: dict[int, list[int]] = {}
        self.out = out

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        seen = batch["index"] + batch["skipped_index"]
        self.epochs.setdefault(trainer.current_epoch, []).extend(seen)
        if self.out:  # line by line: a killed process keeps what it saw
            with open(Path(self.out) / f"rank{trainer.global_rank}.jsonl", "a") as f:
                f.write(json.dumps([trainer.current_epoch, seen]) + "\n")


class DieAfter(Callback):
    """Kills the run once training step ``step`` is done (and checkpointed: callbacks that save run
    before the next step starts), as a preemption would."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Preempted(f"killed after step {self.step}")


def _fit(debug_args, root: Path, data: Path, workers: int, callbacks=(), ckpt: Path | None = None, extra=()):
    args = [
        *debug_args(root, data), "--trainer.max_epochs", str(EPOCHS), "--data.cache_dir", str(root.parent / "cache"),
        "--data.feature_store", "shards", "--data.num_workers", str(workers), "--data.batch_size", "3", *extra,
    ]
    cli = cli_main(args, run=False)
    cli.trainer.callbacks.extend(callbacks)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=str(ckpt) if ckpt else None)
    return cli


def _weights(root: Path) -> dict[str, torch.Tensor]:
    last = max(root.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)  # the resumed run's, in a new version folder
    return torch.load(last, weights_only=True)["state_dict"]


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_on_shards_equals_the_uninterrupted_run(tmp_path, tiny_dataset, debug_args, workers):
    # Extract the stores first: extraction draws random numbers, so the run that extracts would differ.
    _fit(debug_args, tmp_path / "extract", tiny_dataset, workers, extra=["--trainer.max_steps", "1"])
    full_seen = SeenClips()
    full = _fit(debug_args, tmp_path / "full", tiny_dataset, workers, [full_seen])
    steps = full.trainer.num_training_batches
    clips = len(full.datamodule.datasets["train"].records)
    for epoch in range(EPOCHS):  # one process: every clip once per epoch, in a new order each epoch
        assert sorted(full_seen.epochs[epoch]) == list(range(clips)), epoch
    assert full_seen.epochs[0] != full_seen.epochs[1] != full_seen.epochs[2]

    # Killed two steps into epoch 1 (another epoch than the first: the epoch's order must come back
    # too), right after last.ckpt was written there.
    before = SeenClips()
    saves = LastCheckpoint(dirpath=str(tmp_path / "steps"), every_n_train_steps=steps + 2)
    with pytest.raises(Preempted):
        _fit(debug_args, tmp_path / "part", tiny_dataset, workers, [before, saves, DieAfter(steps + 2)])
    after = SeenClips()
    _fit(debug_args, tmp_path / "part", tiny_dataset, workers, [after], ckpt=tmp_path / "steps" / "last.ckpt")

    assert before.epochs[1] == full_seen.epochs[1][: 2 * 3]
    assert sorted(after.epochs) == [1, 2]
    assert before.epochs[1] + after.epochs[1] == full_seen.epochs[1]  # the rest of the epoch, each clip once
    assert after.epochs[2] == full_seen.epochs[2]  # the next epoch reshuffled as without the kill

    full_weights, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert full_weights.keys() == resumed.keys()
    for key in full_weights:  # the same batches, caption draws, dropout masks and optimizer state
        assert torch.equal(full_weights[key], resumed[key]), key


def _seen(out: Path, rank: int) -> dict[int, list[int]]:
    epochs: dict[int, list[int]] = {}
    for line in (out / f"rank{rank}.jsonl").read_text().splitlines():
        epoch, seen = json.loads(line)
        epochs.setdefault(epoch, []).extend(seen)
    return epochs


def test_ddp_resume_mid_epoch_on_shards(tmp_path, tiny_dataset, monkeypatch):
    # Two processes under Lightning's DDP: the checkpoint holds rank 0's position, and each rank
    # resumes its own share of the epoch from it (every rank has taken as many batches).
    from tests.test_ddp import _ddp_fit

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the subprocesses import this module's callbacks

    def fit(name: str, *extra: str) -> None:
        out = tmp_path / name
        out.mkdir(exist_ok=True)
        proc = _ddp_fit(
            tmp_path, out / "run", tiny_dataset / "train.jsonl", tiny_dataset / "val.jsonl",
            "--data.cache_dir", str(tmp_path / "cache"), "--data.feature_store", "shards", "--data.batch_size", "2",
            "--trainer.max_epochs", "2", "--trainer.callbacks+=tests.test_store_resume.SeenClips",
            f"--trainer.callbacks.out={out}", *extra, timeout=300,
        )
        if "--trainer.callbacks+=tests.test_store_resume.DieAfter" in extra:
            assert proc.returncode != 0 and "killed after step" in proc.stderr, proc.stderr[-4000:]
        else:
            assert proc.returncode == 0, proc.stderr[-4000:]

    fit("full")
    steps = len(_seen(tmp_path / "full", 0)[0]) // 2
    fit("before", "--trainer.callbacks+=vidrec.training.checkpointing.LastCheckpoint",
        f"--trainer.callbacks.dirpath={tmp_path / 'steps'}", f"--trainer.callbacks.every_n_train_steps={steps + 1}",
        "--trainer.callbacks+=tests.test_store_resume.DieAfter", f"--trainer.callbacks.step={steps + 1}")
    fit("after", "--ckpt_path", str(tmp_path / "steps" / "last.ckpt"))

    for rank in (0, 1):
        full, before, after = (_seen(tmp_path / name, rank) for name in ("full", "before", "after"))
        assert len(before[1]) == 2 and sorted(after) == [1]
        assert before[1] + after[1] == full[1], rank
    shares = [set(_seen(tmp_path / "full", r)[1]) for r in (0, 1)]
    assert not shares[0] & shares[1]  # the ranks' shares of the epoch: disjoint
    # Each rank resumes its own random state and its own place in the stream, and the workers'
    # seed comes from the loader's own generator: the same weights, bit for bit, as never stopped.
    full, resumed = _weights(tmp_path / "full" / "run"), _weights(tmp_path / "after" / "run")
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key
