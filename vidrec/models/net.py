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

from vidrec.data.motion import FLOW_STATS_DIM, MotionInput, feature_differences, reads_frames
from vidrec.models.backbone import FrozenBackbone
from vidrec.models.heads import ActionHead, CaptionDecoder
from vidrec.models.temporal import TemporalEncoder

__all__ = ["VideoRecognizer", "build_recognizer", "frame_features"]


def frame_features(
    backbone: FrozenBackbone, frames: torch.Tensor, motion: torch.Tensor | None, kind: MotionInput
) -> torch.Tensor:
    """Per-frame features of frames (B, T, 3, H, W) -> (B, T, D), with the data-side motion input
    appended for ``kind`` ``flow`` (flow images (B, T, 3, H, W) through the same frozen
    backbone: M = D) or ``flow_stats`` ((B, T, 63) as they are): (B, T, D + M)."""
    features = backbone(frames)  # (B, T, D)
    if reads_frames(kind):
        if motion is None:
            raise ValueError(f"this model reads a {kind!r} motion input: pass motion=")
        extra = backbone(motion) if kind == "flow" else motion.to(features.dtype)
        features = torch.cat([features, extra], dim=-1)  # (B, T, D + M)
    return features


class VideoRecognizer(nn.Module):
    """The whole network. Takes decoded frames, or per-frame features read from the cache.

    ``caption_decoder`` is ``None`` for datasets without captions. With a ``motion`` input
    (``vidrec.data.motion.MotionInput``) a second temporal model, ``motion_temporal``, reads
    the motion stream on its own, and the two encodings are concatenated for the heads: a
    linear action head on them adds one logit vector per stream (late fusion). Kept apart,
    the appearance stream cannot drown the motion one in what each training video looks like.
    """

    def __init__(
        self,
        backbone: FrozenBackbone,
        temporal: TemporalEncoder,
        action_head: ActionHead | None,
        caption_decoder: CaptionDecoder | None = None,
        motion: MotionInput = "none",
        motion_temporal: TemporalEncoder | None = None,
        appearance_dropout: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= appearance_dropout < 1.0:
            raise ValueError(f"appearance_dropout must be in [0, 1), got {appearance_dropout}")
        self.appearance_dropout = appearance_dropout
        if (motion == "none") != (motion_temporal is None):
            raise ValueError("a motion input needs its motion_temporal model, and only then")
        self.backbone = backbone
        self.temporal = temporal
        self.action_head = action_head
        self.caption_decoder = caption_decoder
        self.motion = motion
        self.motion_temporal = motion_temporal

    def frame_features(self, frames: torch.Tensor, motion: torch.Tensor | None = None) -> torch.Tensor:
        """What the feature cache stores: frames (B, T, 3, H, W) [+ data-side motion] -> (B, T, D [+ M])."""
        return frame_features(self.backbone, frames, motion, self.motion)

    def encode(
        self, frames: torch.Tensor | None = None, features: torch.Tensor | None = None, motion: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, 3, H, W) [+ motion] or features (B, T, D [+ M]) -> (sequence (B, T, H'), encoding (B, H'))."""
        if features is None:
            if frames is None:
                raise ValueError("pass frames or features")
            features = self.frame_features(frames, motion)
        features = features.float()
        rgb = features[..., : self.backbone.out_dim]  # (B, T, D)
        sequence, encoding = self.temporal(rgb)
        if self.motion_temporal is None:
            return sequence, encoding
        if self.motion == "feature_diff":
            stream = feature_differences(rgb, pad=True)  # (B, T, D): step t is f[t] - f[t-1]
        else:
            stream = features[..., self.backbone.out_dim :]  # (B, T, M)
        motion_sequence, motion_encoding = self.motion_temporal(stream)
        if self.training and self.appearance_dropout > 0:
            # Modality dropout: for some clips the heads see only the motion stream, so they
            # cannot lean on what the training videos look like alone (which does not carry
            # over to new footage); scaled like dropout, so evaluation needs no change.
            keep = (torch.rand(encoding.shape[0], 1, device=encoding.device) >= self.appearance_dropout).float()
            keep = keep / (1 - self.appearance_dropout)
            sequence, encoding = sequence * keep[:, :, None], encoding * keep
        return torch.cat([sequence, motion_sequence], dim=-1), torch.cat([encoding, motion_encoding], dim=-1)

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
    motion = hparams.get("motion") or "none"
    motion_temporal = None
    if motion != "none":
        # Same kind of temporal model (an order-blind `mean` stays order-blind on motion too), its own size.
        width = FLOW_STATS_DIM if motion == "flow_stats" else backbone.out_dim
        args = {**_own_args(TemporalEncoder, hparams), "hidden_size": hparams.get("motion_hidden_size", 128)}
        motion_temporal = TemporalEncoder(width, **args)
    out_dim = temporal.out_dim + (motion_temporal.out_dim if motion_temporal is not None else 0)
    head = ActionHead(out_dim, len(classes), **_own_args(ActionHead, hparams)) if classes else None
    decoder = CaptionDecoder(len(vocab), out_dim, **_own_args(CaptionDecoder, hparams)) if vocab else None
    return VideoRecognizer(backbone, temporal, head, decoder, motion, motion_temporal, hparams.get("appearance_dropout", 0.0))
