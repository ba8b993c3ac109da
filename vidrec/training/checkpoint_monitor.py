"""Checkpoint monitors that the model will log.

Every shipped config but the caption ones picks ``best.ckpt`` by ``val/top1``. Trained on
captions alone (MSVD, an MSR-VTT-style list without labels, a folder of captioned clips) the
model has no action head and never logs ``val/top1``, and Lightning stopped after the first
epoch's training with "could not find the monitored key". The same happens to ``val/cider``
on labels alone. Such a monitor is switched, with a warning, to ``val/loss``: the validation
loss of whatever heads the model has, logged whenever a validation clip has a label or
captions for them. An EarlyStopping on such a monitor is switched the same way (Lightning
stopped the run with "Early stopping conditioned on metric ... which is not available"), and
loses its stopping and divergence thresholds, which were values of the other metric.

Call it before a resumed fit restores the callbacks (the LightningModule's ``setup``): their
saved state is keyed by monitor and mode, and is only found under the switched key.
"""

from __future__ import annotations

from typing import Collection

import torch
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_warn

__all__ = ["FALLBACK_MONITOR", "monitor_what_is_logged"]

FALLBACK_MONITOR = "val/loss"


def monitor_what_is_logged(trainer: Trainer, logged: Collection[str], why: str) -> None:
    """Point every ModelCheckpoint and EarlyStopping whose ``val/`` monitor is not in ``logged``
    at ``val/loss`` (min).

    ``why`` says what the model lacks, for the warning. Monitors of other stages (``train/...``)
    are left alone: the model does not decide those. A switched callback that would then be
    another one's twin (same type, monitor, mode and, for checkpoints, schedule) is left out
    instead: Lightning keys each callback's saved state by those, so twins would restore each
    other's state (a checkpoint's best file, which it then deletes on the next improvement; an
    EarlyStopping's patience and count).
    """
    for callback in list(trainer.callbacks):
        if not isinstance(callback, (ModelCheckpoint, EarlyStopping)):
            continue
        monitor = getattr(callback, "monitor", None)
        if not monitor or not monitor.startswith("val/") or monitor in logged:
            continue
        kind = type(callback).__name__
        if isinstance(callback, ModelCheckpoint):
            callback.monitor, callback.mode = FALLBACK_MONITOR, "min"
            callback.kth_value = torch.tensor(float("inf"))  # what ModelCheckpoint starts from in "min" mode
            chosen = "checkpoints are chosen"
        else:
            dropped = [name for name in ("stopping_threshold", "divergence_threshold") if getattr(callback, name) is not None]
            _switch_early_stopping(callback)
            chosen = "training stops" + (f" (its {' and '.join(dropped)}, values of {monitor!r}, are dropped)" if dropped else "")
        if any(other is not callback and type(other) is type(callback) and other.state_key == callback.state_key
               for other in trainer.callbacks):
            trainer.callbacks.remove(callback)
            rank_zero_warn(
                f"{kind} monitors {monitor!r}, which this model never logs ({why}), and another {kind} already "
                f"watches {FALLBACK_MONITOR!r}: this one ({_settings(callback)}) is left out"
            )
            continue
        rank_zero_warn(
            f"{kind} monitors {monitor!r}, which this model never logs ({why}): "
            f"{chosen} by {FALLBACK_MONITOR!r} (lower is better) instead. To choose another, "
            f"set the callback's monitor to one of: {', '.join(sorted(logged))}"
        )


def _switch_early_stopping(callback: EarlyStopping) -> None:
    """Monitor ``val/loss`` (min), as EarlyStopping's constructor would have set it up."""
    given = callback.min_delta * (1 if callback.mode == "max" else -1)  # stored signed by mode: the value given
    callback.monitor, callback.mode = FALLBACK_MONITOR, "min"
    callback.min_delta = -given  # an improvement must lower the loss by it
    callback.best_score = torch.tensor(float("inf"))
    callback.stopping_threshold = callback.divergence_threshold = None  # values of the metric it no longer reads


def _settings(callback) -> str:
    """What a left-out callback was set to do, for the warning."""
    if isinstance(callback, ModelCheckpoint):
        return f"filename={callback.filename!r}, save_top_k={callback.save_top_k}, save_last={callback.save_last}"
    return f"patience={callback.patience}"
