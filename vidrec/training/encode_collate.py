"""A collate function that also runs the frozen backbone: feature extraction inside DataLoader workers.

On a CPU-only machine ``FeatureCache.extract`` decodes in W workers while the main process
runs the backbone. The two stages then fight over the same cores: a multi-threaded backbone
stalls whenever a decoding worker holds one of its cores, and a one-thread backbone leaves
the decoders' cores idle whenever decoding is the cheaper stage. Running decode *and*
backbone in each worker, one torch thread each (PyTorch gives workers one), balances itself:
every core does whole clips end to end, and the main process only writes the small feature
tensors. With a GPU the backbone belongs in the main process instead, so this is for CPU.

The workers are forked with a copy of the backbone; it is frozen, so they never diverge.
"""

from __future__ import annotations

import torch

from vidrec.data.datasets import collate_clips
from vidrec.data.motion import MotionInput
from vidrec.models.backbone import FrozenBackbone
from vidrec.models.net import frame_features

__all__ = ["EncodeCollate"]


class EncodeCollate:
    """``collate_clips`` followed by the backbone: a batch with ``features`` instead of ``frames``.

    ``features`` is float32 (B, [N,] T, D [+ M]), exactly what ``FeatureCache.extract``
    computes from ``frames`` (B, [N,] T, 3, S, S) and ``motion`` (B, [N,] T, ...); ``frames`` and ``motion``
    are dropped so only the features cross the process boundary. Batches without good items
    (only skipped clips) pass through unchanged. A class, not a closure, so it pickles for
    ``spawn`` start methods too.
    """

    def __init__(self, backbone: FrozenBackbone, motion: MotionInput = "none"):
        self.backbone, self.motion = backbone, motion

    @torch.no_grad()  # as FeatureCache.extract: plain tensors, which the main process may use freely
    def __call__(self, items: list[dict]) -> dict:
        batch = collate_clips(items)
        if not batch["size"]:
            return batch
        frames = batch.pop("frames")  # (B, T, 3, S, S), or (B, N, T, 3, S, S) with test views
        motion = batch.pop("motion", None)  # (B, [N,] T, ...): the frames' leading axes
        batch["features"] = frame_features(self.backbone.eval(), frames, motion, self.motion)  # (B, [N,] T, D [+ M])
        return batch
