"""Train and eval presets on ``torchvision.transforms.v2``.

A clip is wrapped as ``tv_tensors.Video`` so one random crop/flip/jitter is drawn per clip
and applied to all its frames: per-frame randomness would make the clip jitter in time and
teach the temporal model noise. Normalisation uses the backbone's own statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = [
    "Normalization",
    "IMAGENET",
    "TF_MINUS_ONE_ONE",
    "train_transform",
    "eval_transform",
    "three_crop_transform",
    "to_video_tensor",
]


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean/std applied after scaling pixels to [0, 1]."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


IMAGENET = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
# TensorFlow-origin weights (EfficientNet-Lite) expect [-1, 1]: (x - 0.5) / 0.5.
TF_MINUS_ONE_ONE = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def to_video_tensor(frames: np.ndarray | torch.Tensor) -> tv_tensors.Video:
    """uint8 ``(T, H, W, 3)`` from a reader -> ``tv_tensors.Video`` uint8 ``(T, 3, H, W)``."""
    t = torch.as_tensor(frames)
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected frames (T, H, W, 3), got {tuple(t.shape)}")
    return tv_tensors.Video(t.permute(0, 3, 1, 2).contiguous())


def train_transform(
    size: int,
    norm: Normalization = IMAGENET,
    scale: tuple[float, float] = (0.5, 1.0),
    hflip: bool = True,
    color_jitter: float = 0.0,
) -> v2.Compose:
    """Random resized crop, optional flip and colour jitter, then normalise.

    ``hflip=False`` for datasets whose classes differ by direction (move left/right,
    swipe left/right): a flip would turn one class into the other and poison the labels.
    A motion input passed in the same call (``motion_tensors``) is flipped with the frames
    (its x-motion negated) and not colour-jittered.
    """
    steps: list = [v2.RandomResizedCrop(size, scale=scale, antialias=True)]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if color_jitter > 0:
        steps.append(v2.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(norm.mean), std=list(norm.std))]
    return v2.Compose(steps)


def eval_transform(size: int, norm: Normalization = IMAGENET, resize: int | None = None) -> v2.Compose:
    """Resize the short side to ``resize`` (default ``size * 8/7``, as ImageNet's 256->224), centre-crop ``size``."""
    resize = resize if resize is not None else round(size * 8 / 7)
    return v2.Compose(
        [
            v2.Resize(resize, antialias=True),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(norm.mean), std=list(norm.std)),
        ]
    )


class ThreeCrop(torch.nn.Module):
    """Three ``size`` x ``size`` crops along the longer side (start, centre, end): ``(T, 3, H, W) -> (3, T, 3, S, S)``.

    The standard three-crop test protocol (Kinetics, UCF101): together the crops cover the
    whole frame that a single centre crop would cut.
    """

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, *clips: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        # Several inputs of one size (frames and their flow images, as ``read_clip`` passes them
        # in one call) get the same three crops, as every other v2 transform does. Inputs that are
        # not pictures (whole-frame flow statistics, (T, 63)) are repeated once per crop.
        h, w = clips[0].shape[-2:]
        s = self.size
        if w >= h:
            tops, lefts = [(h - s) // 2] * 3, [0, (w - s) // 2, w - s]
        else:
            tops, lefts = [0, (h - s) // 2, h - s], [(w - s) // 2] * 3

        def three(c: torch.Tensor) -> torch.Tensor:
            if not isinstance(c, (tv_tensors.Video, tv_tensors.Image)) and isinstance(c, tv_tensors.TVTensor):
                return c.as_subclass(torch.Tensor).expand(3, *c.shape).contiguous()  # (3, T, D)
            return torch.stack([v2.functional.crop(c, t, l, s, s) for t, l in zip(tops, lefts)])

        out = tuple(three(c) for c in clips)
        return out[0] if len(out) == 1 else out

    def extra_repr(self) -> str:
        return f"size={self.size}"


def three_crop_transform(size: int, norm: Normalization = IMAGENET) -> v2.Compose:
    """Resize the short side to ``size``, normalise, then ``ThreeCrop``: ``(T, 3, H, W) -> (3, T, 3, S, S)``."""
    return v2.Compose(
        [
            v2.Resize(size, antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(norm.mean), std=list(norm.std)),
            ThreeCrop(size),
        ]
    )
