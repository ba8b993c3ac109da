"""A resumed fit keeps writing checkpoints where the interrupted one did.

Without this, every logger version (W&B run, CSV/TensorBoard version_N) gets its own
``checkpoints/`` folder: a run resumed from ``.../version_0/checkpoints/last.ckpt`` wrote to
``version_1/checkpoints``, and Lightning, seeing another folder, dropped the best-so-far record
("The dirpath has changed"). The first validation after resuming then saved a new
``best-*.ckpt`` however bad, and the run's best model sat in the old folder beside it.
"""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning import Trainer

from vidrec.checkpoint import CheckpointError, read_checkpoint

__all__ = ["keep_checkpoint_folder"]


def keep_checkpoint_folder(trainer: Trainer, ckpt_path: str | None) -> Path | None:
    """Before ``trainer.fit(ckpt_path=...)``: point every ModelCheckpoint whose folder is still
    to be chosen at the folder the checkpoints of the resumed run were written to, when
    ``ckpt_path`` is one of them and that folder lies under this run's output root
    (``default_root_dir`` or the logger's ``save_dir``). Returns that folder, or None when
    nothing changed.

    A checkpoint copied elsewhere, a URL, or a resumed run given another output root leaves
    the folders as Lightning chooses them: the user asked for them to go elsewhere.
    """
    if not ckpt_path or "://" in str(ckpt_path) or not Path(ckpt_path).is_file():
        return None
    folder = Path(ckpt_path).resolve().parent
    roots = [trainer.default_root_dir, *(logger.save_dir for logger in trainer.loggers if logger.save_dir)]
    if not any(folder.is_relative_to(Path(root).resolve()) for root in roots):
        return None
    try:
        saved = read_checkpoint(ckpt_path, tensors=False).get("callbacks", {})
    except CheckpointError:  # not a usable checkpoint: Lightning's own restore reports what is wrong with it
        return None
    # Callback states are keyed by class and settings; ModelCheckpoint's holds its folder, as
    # it was given (runs/custom/... under a relative default_root_dir). Lightning restores the
    # best-so-far only when the folder is the same string, so that string is what is set.
    written = [state["dirpath"] for state in saved.values() if isinstance(state, dict) and state.get("dirpath")]
    here = next((d for d in written if Path(d).resolve() == folder), None)
    if here is None:
        return None
    changed = [cb for cb in trainer.checkpoint_callbacks if cb.dirpath is None]  # None: not set by the user
    for callback in changed:
        callback.dirpath = here
    return folder if changed else None
