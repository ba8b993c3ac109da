"""A training checkpoint (``.ckpt``) -> everything inference needs, as plain objects. No Lightning.

The loader reads with ``torch.load(weights_only=True)``: tensors, numbers, strings, lists and
dicts only. A checkpoint that carries a pickled Python object is refused, never executed, so
a file from the internet cannot run code on the machine that opens it.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from vidrec.data.clips import ClipSpec
from vidrec.data.transforms import Normalization
from vidrec.data.vocab import Vocab
from vidrec.models.backbone import EFFICIENTNET_LITE0, pretrained_normalization
from vidrec.models.net import VideoRecognizer, build_recognizer

__all__ = ["CheckpointError", "CaptionSettings", "Checkpoint", "read_checkpoint", "load_checkpoint"]

# The state dict's keys are the LightningModule's, whose network lives in ``net``.
_NET_PREFIX = "net."


class CheckpointError(ValueError):
    """A file that is not a usable vidrec checkpoint; the message is one line naming the file."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class CaptionSettings:
    """How captions are decoded: beam width (1 = greedy), length cap and length penalty."""

    beam_size: int = 1
    max_caption_len: int = 20
    length_penalty: float = 0.0


@dataclass
class Checkpoint:
    """A trained model and what it needs to see videos the way it saw them in training."""

    path: Path
    net: VideoRecognizer  # eval mode, on the requested device
    classes: list[str]  # index -> name; empty for a caption-only model
    vocab: Vocab | None  # None for an action-only model
    clip: ClipSpec
    normalization: Normalization
    caption: CaptionSettings
    hparams: dict  # the model's hyperparameters, as trained


def read_checkpoint(path: str | os.PathLike, *, tensors: bool = True) -> dict:
    """The checkpoint's contents, loaded safely; ``tensors=False`` maps the file instead of reading it.

    Raises ``CheckpointError`` (one line, naming the file) for a missing, empty, truncated or
    foreign file, and for one that would need to unpickle a Python object.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise CheckpointError(path, "checkpoint not found")
        if path.stat().st_size == 0:
            raise CheckpointError(path, "checkpoint file is empty (0 bytes)")
    except OSError as e:  # a name the file system refuses, a permission...
        raise CheckpointError(path, f"cannot read checkpoint ({e.strerror or e})") from None
    if not zipfile.is_zipfile(path):  # every torch.save file since PyTorch 1.6 is a zip archive
        raise CheckpointError(path, "not a readable PyTorch checkpoint (truncated or corrupt?): not a zip archive, as torch.save writes")
    try:
        # mmap: reading the metadata of a large checkpoint then touches only what it uses.
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=not tensors)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, OSError... for bad files
        text = str(e)
        if "weights_only" in text or "Unsupported global" in text or "WeightsUnpickler" in text:
            reason = (
                "refused: the checkpoint contains a pickled Python object, which could run code when loaded "
                "(vidrec loads with weights_only=True; re-save it as plain tensors and types)"
            )
        else:
            first = (text.strip().splitlines() or [type(e).__name__])[0][:200]
            reason = f"not a readable PyTorch checkpoint (truncated or corrupt?): {type(e).__name__}: {first}"
        raise CheckpointError(path, reason) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(path, "not a vidrec training checkpoint (no state_dict / hyper_parameters)")
    return ckpt


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the network of a ``train.py`` checkpoint and its clip settings; raises ``CheckpointError``."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    hparams = dict(ckpt["hyper_parameters"])
    data = dict(ckpt.get("datamodule_hyper_parameters") or {})
    if not data:
        warnings.warn(f"{path}: no datamodule hyperparameters saved; using the ClipSpec defaults {ClipSpec()}")
    try:
        # The backbone's weights are in the state dict: build it empty, download nothing.
        net = build_recognizer({**hparams, "weights": "none"})
        state = {k[len(_NET_PREFIX):]: v for k, v in ckpt["state_dict"].items() if k.startswith(_NET_PREFIX)}
        net.load_state_dict(state)
    except (ValueError, RuntimeError, TypeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise CheckpointError(path, f"does not match the network its hyperparameters describe: {first}") from None
    vocab = hparams.get("vocab")
    return Checkpoint(
        path=path,
        net=net.to(device).eval(),
        classes=list(hparams.get("classes") or []),
        vocab=Vocab(vocab) if vocab else None,
        clip=ClipSpec.from_hparams(data),
        # Asked of the name the model was trained with: the rebuilt backbone has weights="none".
        normalization=pretrained_normalization(hparams.get("backbone", EFFICIENTNET_LITE0), hparams.get("weights", "DEFAULT")),
        caption=CaptionSettings(
            beam_size=int(hparams.get("beam_size", 1)),
            max_caption_len=int(hparams.get("max_caption_len", 20)),
            length_penalty=float(hparams.get("length_penalty", 0.0)),
        ),
        hparams=hparams,
    )
