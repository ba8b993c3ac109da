"""Checkpoint monitors that the model will log.

Every shipped config but the caption ones picks ``best.ckpt`` by ``val/top1``. Trained on
captions alone (MSVD, an MSR-VTT-style list without labels, a folder of captioned clips) the
model has no action head and never logs ``val/top1``, and Lightning stopped after the first
epoch's training with "could not find the monitored key". The same happens to ``val/cider``
on labels alone. Such a monitor is switched, with a warning, to ``val/loss``: the validation
loss of whatever heads the model has, logged whenever a validation clip has a label or
captions for them.

Call it before a resumed fit restores the callbacks (the LightningModule's ``setup``): their
saved state is keyed by monitor and mode, and is only found under the switched key.
"""

from __future__ import annotations

from typing import Collection

import torch
from pytorch_lightning import Trainer
from pytorch_lightning.utilities import rank_zero_warn

__all__ = ["FALLBACK_MONITOR", "monitor_what_is_logged"]

FALLBACK_MONITOR = "val/loss"


def monitor_what_is_logged(trainer: Trainer, logged: Collection[str], why: str) -> None:
    """Point every ModelCheckpoint whose ``val/`` monitor is not in ``logged`` at ``val/loss`` (min).

    ``why`` says what the model lacks, for the warning. Monitors of other stages (``train/...``)
    are left alone: the model does not decide those.
    """
    for callback in trainer.checkpoint_callbacks:
        monitor = getattr(callback, "monitor", None)
        if not monitor or not monitor.startswith("val/") or monitor in logged:
            continue
        rank_zero_warn(
            f"ModelCheckpoint monitors {monitor!r}, which this model never logs ({why}): "
            f"checkpoints are chosen by {FALLBACK_MONITOR!r} (lower is better) instead. To choose another, "
            f"set the callback's monitor to one of: {', '.join(sorted(logged))}"
        )
        callback.monitor, callback.mode = FALLBACK_MONITOR, "min"
        callback.kth_value = torch.tensor(float("inf"))  # what ModelCheckpoint starts from in "min" mode
