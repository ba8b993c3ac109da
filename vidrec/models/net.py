"""VideoRecognizer: backbone -> temporal encoder -> action head + caption decoder. No Lightning here.

``build_recognizer(hparams)`` builds it from the flat hyperparameters that configs, the
LightningModule and checkpoints share. Each hyperparameter has one name from YAML to the
constructor that takes it, so the builder hands each part exactly its own arguments.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import torch
from torch import nn

from vidrec.models.backbone import FrozenBackbone
from vidrec.models.heads import ActionHead, CaptionDecoder
from vidrec.models.temporal import TemporalEncoder

__all__ = ["VideoRecognizer", "build_recognizer"]


class VideoRecognizer(nn.Module):
    """The whole network. Takes decoded frames, or backbone features read from the cache.

    ``caption_decoder`` is ``None`` for datasets without captions.
    """

    def __init__(
        self,
        backbone: FrozenBackbone,
        temporal: TemporalEncoder,
        action_head: ActionHead | None,
        caption_decoder: CaptionDecoder | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.temporal = temporal
        self.action_head = action_head
        self.caption_decoder = caption_decoder

    def encode(self, frames: torch.Tensor | None = None, features: torch.Tensor | None = None):
        """frames (B, T, 3, H, W) or features (B, T, D) -> (sequence (B, T, H'), encoding (B, H'))."""
        if features is None:
            if frames is None:
                raise ValueError("pass frames or features")
            features = self.backbone(frames)  # (B, T, D)
        return self.temporal(features.float())

    def forward(self, frames: torch.Tensor | None = None, features: torch.Tensor | None = None) -> torch.Tensor:
        """Action logits (B, C); the export and the simple path."""
        _, encoding = self.encode(frames, features)
        return self.action_head(encoding)

    def caption(
        self,
        encoding: torch.Tensor,
        beam_size: int = 1,
        max_len: int = 20,
        length_penalty: float = 0.0,
        sequence: torch.Tensor | None = None,
    ):
        """Caption word ids (B, L) for clip encodings (B, H'); ``sequence`` (B, T, H') for an attention decoder."""
        if self.caption_decoder is None:
            raise RuntimeError("this model has no caption decoder (trained without captions)")
        if beam_size <= 1:
            return self.caption_decoder.greedy(encoding, max_len, frames=sequence)
        return self.caption_decoder.beam_search(encoding, beam_size, max_len, length_penalty, frames=sequence)


def _own_args(part: type, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters named like ``part``'s constructor arguments."""
    names = inspect.signature(part.__init__).parameters
    return {k: v for k, v in hparams.items() if k in names}


def build_recognizer(hparams: Mapping[str, Any]) -> VideoRecognizer:
    """The network described by ``hparams`` (a ``VidRecModule``'s hyperparameters).

    ``classes`` (list of names) sizes the action head and ``vocab`` (token list) the caption
    decoder; either may be empty, not both. Backbone weights are loaded as ``weights`` says:
    a checkpoint loader passes ``weights="none"`` since its state dict holds them.
    """
    classes, vocab = list(hparams.get("classes") or []), list(hparams.get("vocab") or [])
    if not classes and not vocab:
        raise ValueError("nothing to learn: no classes and no caption vocabulary (is the train manifest empty?)")
    backbone = FrozenBackbone(**_own_args(FrozenBackbone, hparams))
    temporal = TemporalEncoder(backbone.out_dim, **_own_args(TemporalEncoder, hparams))
    head = ActionHead(temporal.out_dim, len(classes), **_own_args(ActionHead, hparams)) if classes else None
    decoder = CaptionDecoder(len(vocab), temporal.out_dim, **_own_args(CaptionDecoder, hparams)) if vocab else None
    return VideoRecognizer(backbone, temporal, head, decoder)
