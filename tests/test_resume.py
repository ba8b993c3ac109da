"""Crashes and resume: last.ckpt after every epoch, a resumed run equal to an uninterrupted one,
and a longer resumed run that stretches the learning-rate schedule instead of restarting it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from pytorch_lightning import Callback

from vidrec.training.checkpointing import LastCheckpoint
from vidrec.training.cli import cli_main

pytestmark = pytest.mark.slow


class StopAfter(Callback):
    """Ends fit after ``epochs`` epochs, as a killed run would: last.ckpt is all that is left."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


class LastCheckpointEpochs(Callback):
    """Records, at the start of each epoch, which epoch the last.ckpt on disk holds."""

    def __init__(self):
        self.seen: list[int | None] = []

    def on_train_epoch_start(self, trainer, pl_module):
        found = sorted(Path(trainer.default_root_dir).rglob("last.ckpt"))
        self.seen.append(torch.load(found[0], weights_only=True)["epoch"] if found else None)


class LastCheckpointSteps(Callback):
    """Records, as each training step starts and when fit ends, the training step the last.ckpt in
    ``folder`` was written at and how many validation batches its epoch had run by then."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.seen: list[tuple[int, int] | None] = []

    def _read(self) -> None:
        path = self.folder / "last.ckpt"
        if not path.is_file():
            self.seen.append(None)
            return
        ckpt = torch.load(path, weights_only=True)
        self.seen.append((ckpt["global_step"], ckpt["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"]["total"]["completed"]))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._read()

    def on_fit_end(self, trainer, pl_module):
        self._read()


class LearningRates(Callback):
    def __init__(self):
        self.lrs: dict[int, float] = {}

    def on_train_epoch_start(self, trainer, pl_module):
        self.lrs[trainer.current_epoch] = trainer.optimizers[0].param_groups[0]["lr"]


def _fit(debug_args, root: Path, data: Path, epochs: int, ckpt: Path | None = None, callbacks=()):
    cli = cli_main([*debug_args(root, data), "--trainer.max_epochs", str(epochs)], run=False)
    for c in callbacks:
        cli.trainer.callbacks.append(c)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=str(ckpt) if ckpt else None)
    return cli


def _last(root: Path) -> Path:
    found = sorted(root.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    assert found, f"no last.ckpt under {root}"
    return found[-1]


def test_last_checkpoint_is_written_after_every_epoch(debug_args, tiny_dataset, tmp_path):
    seen = LastCheckpointEpochs()
    _fit(debug_args, tmp_path / "run", tiny_dataset, 3, callbacks=[seen])
    # epoch 0 starts with nothing; epoch k starts with the checkpoint of epoch k-1
    assert seen.seen == [None, 0, 1]


def test_last_checkpoint_every_n_train_steps_too(debug_args, tiny_dataset, tmp_path):
    folder = tmp_path / "steps"
    seen = LastCheckpointSteps(folder)
    cli = _fit(debug_args, tmp_path / "run", tiny_dataset, 2, callbacks=[LastCheckpoint(str(folder), every_n_train_steps=2), seen])
    assert cli.trainer.num_training_batches == 3
    val = seen.seen[3][1]
    assert val > 0
    # before steps 0..5, then at the end: written after step 2 (before validation), after epoch
    # 0's validation (step 3), after step 4, and at the end of epoch 1 after its validation, though
    # its last step (6) was a step to save at too
    assert seen.seen == [None, None, (2, 0), (3, val), (4, 0), (4, 0), (6, val)]


def test_resumed_run_equals_uninterrupted_run(debug_args, tiny_dataset, tmp_path):
    _fit(debug_args, tmp_path / "full", tiny_dataset, 4)
    _fit(debug_args, tmp_path / "part", tiny_dataset, 4, callbacks=[StopAfter(2)])
    interrupted = _last(tmp_path / "part")
    _fit(debug_args, tmp_path / "part", tiny_dataset, 4, ckpt=interrupted)

    full = torch.load(_last(tmp_path / "full"), weights_only=True)["state_dict"]
    resumed = torch.load(_last(tmp_path / "part"), weights_only=True)["state_dict"]
    assert full.keys() == resumed.keys()
    # Same data order, dropout masks and optimizer state: bit-identical weights on the CPU.
    for key in full:
        assert torch.equal(full[key], resumed[key]), key


def test_resuming_with_more_epochs_stretches_the_cosine_schedule(debug_args, tiny_dataset, tmp_path):
    _fit(debug_args, tmp_path / "run", tiny_dataset, 2)
    lrs = LearningRates()
    _fit(debug_args, tmp_path / "run", tiny_dataset, 4, ckpt=_last(tmp_path / "run"), callbacks=[lrs])
    base = 0.003  # configs/debug.yaml
    # Epochs 2 and 3 follow a cosine over 4 epochs: no epoch at learning rate 0, no climb.
    for epoch in (2, 3):
        assert lrs.lrs[epoch] == pytest.approx(base * (1 + math.cos(math.pi * epoch / 4)) / 2, rel=1e-6)
    assert lrs.lrs[3] < lrs.lrs[2]


def test_resumed_fit_keeps_its_checkpoint_folder_and_its_best(debug_args, tiny_dataset, tmp_path, monkeypatch):
    """Each CSV logger version had its own checkpoints/ folder: resumed from version_0's last.ckpt,
    the run wrote to version_1 and Lightning, seeing another folder, forgot the best so far.
    The root is relative, as in the shipped configs (runs/custom): Lightning compares folders as text."""
    import warnings

    from vidrec.training.cli import cli_main

    monkeypatch.chdir(tmp_path)
    args = ["fit", *debug_args(Path("runs"), tiny_dataset), "--trainer.limit_train_batches", "2"]
    first = cli_main([*args, "--trainer.max_epochs", "2"])
    folder = Path(first.trainer.checkpoint_callback.dirpath)
    assert folder.parent.name == "version_0"
    best_before = float(first.trainer.checkpoint_callback.best_model_score)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = cli_main([*args, "--trainer.max_epochs", "4", "--ckpt_path", str(folder / "last.ckpt")])
    assert not [w for w in caught if "dirpath has changed" in str(w.message)]
    assert resumed.trainer.logger.version == 1  # the logs get a new version; the checkpoints do not
    assert {Path(cb.dirpath) for cb in resumed.trainer.checkpoint_callbacks} == {folder}
    assert not list((folder.parent.parent / "version_1").rglob("*.ckpt"))
    assert sorted(p.name for p in folder.glob("last*.ckpt")) == ["last.ckpt"]  # rewritten, not last-v1.ckpt beside it
    kept = resumed.trainer.checkpoint_callback
    assert len(list(folder.glob("best-*.ckpt"))) == 1 and Path(kept.best_model_path).parent == folder
    assert float(kept.best_model_score) >= best_before  # val/top1, higher is better: never worse than before
    assert torch.load(folder / "last.ckpt", weights_only=True)["epoch"] == 3


def test_a_checkpoint_copied_elsewhere_or_another_root_leaves_the_folders_alone(debug_args, tiny_dataset, tmp_path):
    import shutil

    from vidrec.training.resume_folder import keep_checkpoint_folder

    cli = _fit(debug_args, tmp_path / "run", tiny_dataset, 1)
    last = str(_last(tmp_path / "run"))
    copy = shutil.copy(last, tmp_path / "run" / "copied.ckpt")  # under the root, but not where it was written
    same_root = cli_main([*debug_args(tmp_path / "run", tiny_dataset)], run=False)
    assert keep_checkpoint_folder(same_root.trainer, copy) is None
    assert all(cb.dirpath is None for cb in same_root.trainer.checkpoint_callbacks)
    other_root = cli_main([*debug_args(tmp_path / "again", tiny_dataset)], run=False)  # the user sends this run elsewhere
    assert keep_checkpoint_folder(other_root.trainer, last) is None
    assert all(cb.dirpath is None for cb in other_root.trainer.checkpoint_callbacks)
    assert keep_checkpoint_folder(same_root.trainer, last) == Path(cli.trainer.checkpoint_callback.dirpath).resolve()
