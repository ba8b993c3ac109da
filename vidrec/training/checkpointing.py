"""``LastCheckpoint``: ``last.ckpt`` rewritten at the end of every epoch (and every N steps if asked).

Lightning 2.6's ``ModelCheckpoint(save_last=True)`` refreshes ``last.ckpt`` only in a step
where it also saved a top-k checkpoint, so with ``save_top_k=0`` it is written only when
training ends, and a run killed in epoch 30 keeps nothing newer than its best epoch. This
callback writes it whenever an epoch ends, which is what ``fit --ckpt_path last.ckpt`` needs.

With ``every_n_train_steps`` it also rewrites it every that many training steps: a long epoch
(Kinetics on shards) that is preempted resumes from its middle. On a sharded feature store that
is exact (the checkpoint holds the loader's position: ``vidrec.data.stream_loader``); the per-file
cache reshuffles the interrupted epoch.
"""

from __future__ import annotations

from pytorch_lightning.callbacks import ModelCheckpoint

__all__ = ["LastCheckpoint"]


class LastCheckpoint(ModelCheckpoint):
    """Saves ``last.ckpt`` (only) at the end of every training epoch, after validation, and every
    ``every_n_train_steps`` training steps (0: only at epochs' ends)."""

    def __init__(self, dirpath: str | None = None, every_n_train_steps: int = 0):
        if every_n_train_steps < 0:
            raise ValueError(f"every_n_train_steps must be >= 0, got {every_n_train_steps}")
        # None when 0: the parent's defaults (and state key) of a checkpoint that saves per epoch.
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0, every_n_train_steps=every_n_train_steps or None)

    def _save_last_now(self, trainer) -> None:
        # The parent's own rules for when saving is off (sanity check, fast_dev_run, ...), except
        # that a step save at the epoch's last step does not stop this one: the epoch's end, after
        # validation, is newer.
        step_saved, self._last_global_step_saved = self._last_global_step_saved, -1
        if self._should_skip_saving_checkpoint(trainer):
            self._last_global_step_saved = step_saved
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_now(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._should_save_on_train_epoch_end(trainer):  # no validation this epoch
            self._save_last_now(trainer)
