"""Motion inputs as torchvision ``tv_tensors``, so that one transform call keeps them the motion of the frames.

A training transform (``transforms.train_transform``) crops, flips and colour-jitters a clip.
Passed in the same call as the frames, a motion input must follow the geometry and ignore the
colour, as TSN's flow stream does:

* ``FlowImages`` (uint8 ``(T, 3, H, W)``, ``128 + s * (fx, fy, |f|)`` from
  ``motion.flow_to_image``) is a ``tv_tensors.Video``: it gets the frames' crop and resize, but
  a horizontal flip also negates fx (what moved right now moves left), and colour jitter leaves
  it alone (jitter would rescale the flow itself).
* ``FlowStatistics`` (float ``(T, 63)`` from ``motion.flow_statistics``) are whole-frame
  numbers: crops, resizes, jitter and normalisation pass them through; a horizontal flip
  mirrors them (``motion.mirror_flow_statistics``).

Without this a flipped clip kept the flow of the unflipped one: appearance saying "right",
motion saying "left", in half the training clips of every config with ``hflip: true``.
Registering kernels for our own tensor types is torchvision's documented way to extend v2.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from vidrec.data.motion import mirror_flow_statistics
from vidrec.data.transforms import to_video_tensor

__all__ = ["FlowImages", "FlowStatistics", "as_motion_tensor"]


class FlowImages(tv_tensors.Video):
    """Flow rendered as images ``(T, 3, H, W)``: channel 0 is x-motion around 128 (uint8) or 128/255 (float)."""


class FlowStatistics(tv_tensors.TVTensor):
    """Whole-frame flow statistics ``(T, 63)``; no spatial transform but a flip changes them."""


def as_motion_tensor(motion: np.ndarray) -> FlowImages | FlowStatistics:
    """A data-side motion input (``motion.motion_input``) as the tv_tensor the transforms understand.

    uint8 ``(T, H, W, 3)`` flow images -> ``FlowImages`` ``(T, 3, H, W)``;
    float ``(T, 63)`` statistics -> ``FlowStatistics``.
    """
    if motion.dtype == np.uint8:
        return to_video_tensor(motion).as_subclass(FlowImages)  # (T, 3, H, W)
    return torch.as_tensor(motion).as_subclass(FlowStatistics)


@F.register_kernel(F.horizontal_flip, FlowImages)
def _flip_flow_images(images: FlowImages, *args, **kwargs) -> FlowImages:
    flipped = images.as_subclass(torch.Tensor).flip(-1).clone()  # (..., 3, H, W)
    fx = flipped[..., 0, :, :]
    if flipped.dtype == torch.uint8:  # 128 + v -> 128 - v
        flipped[..., 0, :, :] = (256 - fx.to(torch.int16)).clamp(0, 255).to(torch.uint8)
    else:  # scaled to [0, 1]; flips come before normalisation in every pipeline here
        flipped[..., 0, :, :] = (256 / 255 - fx).clamp(0, 1)
    return tv_tensors.wrap(flipped, like=images)


@F.register_kernel(F.horizontal_flip, FlowStatistics)
def _flip_flow_statistics(stats: FlowStatistics, *args, **kwargs) -> FlowStatistics:
    return tv_tensors.wrap(mirror_flow_statistics(stats.as_subclass(torch.Tensor)), like=stats)


def _unchanged(inpt, *args, **kwargs):
    return inpt


# Colour jitter is for the pictures; on flow images it would rescale the motion.
for _functional in (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue):
    F.register_kernel(_functional, FlowImages)(_unchanged)
