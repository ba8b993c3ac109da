"""Experiment logging: a W&B logger that picks online/offline by itself, and media helpers.

Media (confusion matrix, sample tables) go to whichever logger is configured: W&B gets an
image and a table, TensorBoard a figure and text, CSV only the scalar metrics.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

__all__ = ["WandbAutoLogger", "wandb_logged_in", "log_confusion", "log_samples"]


def wandb_logged_in() -> bool:
    """True when W&B credentials exist (``WANDB_API_KEY`` or ``wandb login``'s netrc entry).

    Reads them without contacting the server, so an offline machine answers at once.
    """
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = os.environ.get("NETRC", str(Path.home() / ".netrc"))
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


class WandbAutoLogger(WandbLogger):
    """``WandbLogger`` that runs online when you are logged in and offline otherwise.

    Offline runs are written under ``save_dir/wandb/`` and can be uploaded later with
    ``wandb sync <save_dir>/wandb/offline-run-*``. Online, the best checkpoint is uploaded as
    an artifact (``log_model``); offline there is nowhere to upload it.
    """

    def __init__(
        self,
        project: str = "vidrec",
        name: str | None = None,
        save_dir: str | None = None,
        offline: bool | None = None,
        log_model: bool | None = None,
        entity: str | None = None,
        tags: list[str] | None = None,
        group: str | None = None,
    ):
        if offline is None:
            offline = os.environ.get("WANDB_MODE") == "offline" or not wandb_logged_in()
        if log_model is None:
            log_model = not offline
        save_dir = save_dir or "runs"  # train.py fills in the trainer's default_root_dir
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        super().__init__(
            project=project, name=name, save_dir=save_dir, offline=offline, log_model=log_model,
            entity=entity, tags=tags, group=group,
        )


def log_confusion(logger, key: str, matrix: torch.Tensor, classes: list[str], step: int) -> None:
    if logger is None:
        return
    if isinstance(logger, (WandbLogger, TensorBoardLogger)):
        import matplotlib.pyplot as plt

        from vidrec.training.confusion import plot_confusion_matrix

        fig = plot_confusion_matrix(matrix, classes)
        if isinstance(logger, WandbLogger):
            import wandb

            logger.experiment.log({key: wandb.Image(fig), "trainer/global_step": step})
        else:
            logger.experiment.add_figure(key, fig, global_step=step)
        plt.close(fig)


def log_samples(logger, key: str, samples: list[dict], step: int) -> None:
    """A table of clips: video, true and predicted label, reference and generated caption."""
    if logger is None:
        return
    columns = ["video", "label", "pred", "reference", "caption"]
    rows = [[s["video"], s["label"], s["pred"], (s["references"] or [""])[0], s["caption"]] for s in samples]
    if isinstance(logger, WandbLogger):
        import wandb

        def video_cell(path: str):
            # Browsers play mp4/webm/gif; other containers are shown as their path.
            return wandb.Video(path) if path.lower().endswith((".mp4", ".webm", ".gif")) and os.path.isfile(path) else path

        logger.log_table(key, columns=columns, data=[[video_cell(r[0]), *r[1:]] for r in rows], step=step)
    elif isinstance(logger, TensorBoardLogger):
        text = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
        text += "\n".join("| " + " | ".join(str(c) for c in r) + " |" for r in rows)
        logger.experiment.add_text(key, text, global_step=step)
