"""VideoRecognizer: backbone -> temporal encoder -> action head + caption decoder. No Lightning here."""

from __future__ import annotations

import torch
from torch import nn

from vidrec.models.backbone import FrozenBackbone
from vidrec.models.heads import ActionHead, CaptionDecoder
from vidrec.models.temporal import LSTMEncoder

__all__ = ["VideoRecognizer"]


class VideoRecognizer(nn.Module):
    """The whole network. Takes decoded frames, or backbone features read from the cache.

    ``caption_decoder`` is ``None`` for datasets without captions.
    """

    def __init__(
        self,
        backbone: FrozenBackbone,
        temporal: LSTMEncoder,
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

    def caption(self, encoding: torch.Tensor, beam_size: int = 1, max_len: int = 20, length_penalty: float = 0.0):
        """Caption word ids (B, L) for clip encodings (B, H')."""
        if self.caption_decoder is None:
            raise RuntimeError("this model has no caption decoder (trained without captions)")
        if beam_size <= 1:
            return self.caption_decoder.greedy(encoding, max_len)
        return self.caption_decoder.beam_search(encoding, beam_size, max_len, length_penalty)
