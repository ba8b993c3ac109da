"""``LastCheckpoint``: ``last.ckpt`` rewritten at the end of every epoch.

Lightning 2.6's ``ModelCheckpoint(save_last=True)`` refreshes ``last.ckpt`` only in a step
where it also saved a top-k checkpoint, so with ``save_top_k=0`` it is written only when
training ends, and a run killed in epoch 30 keeps nothing newer than its best epoch. This
callback writes it whenever an epoch ends, which is what ``fit --ckpt_path last.ckpt`` needs.
"""

from __future__ import annotations

from pytorch_lightning.callbacks import ModelCheckpoint

__all__ = ["LastCheckpoint"]


class LastCheckpoint(ModelCheckpoint):
    """Saves ``last.ckpt`` (only) at the end of every training epoch, after validation."""

    def __init__(self, dirpath: str | None = None):
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0)

    def _save_last_now(self, trainer) -> None:
        # The parent's own rules for when saving is off (sanity check, fast_dev_run, ...).
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_now(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._should_save_on_train_epoch_end(trainer):  # no validation this epoch
            self._save_last_now(trainer)
