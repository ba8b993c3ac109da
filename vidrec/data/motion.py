"""Motion inputs for a frozen image CNN: frame differences and optical flow rendered as images.

An order-blind model cannot tell a clip from the same frames reversed, and on real footage
the LSTM over appearance (RGB) features learns the direction of change per source instead
of in general. A motion image carries the *sign* of the change in every frame — flow x is
negative for one pan direction and positive for the other, a difference image is brighter
for brightening — so direction becomes a per-frame fact the CNN can see, not something the
temporal model has to infer from subtle feature drift.

All rendered images are uint8 ``(T-1, H, W, 3)`` with "no motion" at 128 in every channel:
after the backbone's normalisation (``[-1, 1]`` for EfficientNet-Lite, ImageNet mean/std
otherwise) a static scene is a flat grey image, the same for every source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "MotionInput",
    "reads_frames",
    "FLOW_STATS_DIM",
    "motion_input",
    "motion_input_between",
    "frame_differences",
    "optical_flow",
    "optical_flow_between",
    "flow_statistics",
    "flow_statistics_between",
    "flow_residual",
    "flow_to_image",
    "flow_images",
    "feature_differences",
    "grid_pool",
    "motion_descriptor",
    "camera_motion",
]

FlowMethod = Literal["dis", "farneback"]

#: What the temporal model gets besides the RGB features (``--model.motion``):
#: ``none``; ``feature_diff``, differences of consecutive backbone features (computed by the
#: model, nothing decoded); ``flow``, DIS optical flow rendered as images and run through the
#: same frozen CNN; ``flow_stats``, CNN-free flow statistics (``flow_statistics``).
MotionInput = Literal["none", "feature_diff", "flow", "flow_stats"]



def reads_frames(kind: MotionInput) -> bool:
    """Whether motion input ``kind`` is computed from the decoded frames (``flow``, ``flow_stats``)
    rather than by the model from its own features (``feature_diff``) or not at all (``none``).
    Such an input must be decoded, cached and passed beside the frames wherever they go."""
    return kind in ("flow", "flow_stats")


# Flow is computed on frames this many pixels on their short side: the rendering and the
# statistics are scaled to the frame size anyway, and DIS costs grow with the pixel count.
_FLOW_SIDE = 112


def _check_frames(frames: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[0] < 2:
        raise ValueError(f"need at least 2 frames for motion, got {frames.shape[0]}")


def _check_pairs(before: np.ndarray, after: np.ndarray) -> None:
    for name, x in (("before", before), ("after", after)):
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
            raise ValueError(f"{name} frames must be uint8 (N, H, W, 3), got {x.dtype} {x.shape}")
    if before.shape != after.shape or before.shape[0] < 1:
        raise ValueError(f"need one or more frame pairs of one shape, got {before.shape} and {after.shape}")


def frame_differences(frames: np.ndarray, gain: float = 2.0) -> np.ndarray:
    """``frames`` uint8 (T, H, W, 3) -> uint8 (T-1, H, W, 3): ``128 + gain * (f[t+1] - f[t])``.

    The gain spreads small changes (a few grey levels per frame for a slow fade) over the
    CNN's input range; larger changes clip at 0/255, which keeps their sign.
    """
    _check_frames(frames)
    d = frames[1:].astype(np.int16) - frames[:-1].astype(np.int16)  # (T-1, H, W, 3) in [-255, 255]
    return np.clip(128.0 + gain * d, 0, 255).round().astype(np.uint8)


def optical_flow(frames: np.ndarray, method: FlowMethod = "dis") -> np.ndarray:
    """Dense optical flow between consecutive frames: uint8 (T, H, W, 3) -> float32 (T-1, H, W, 2).

    Flow is in pixels, ``[..., 0]`` horizontal (positive = content moves right) and
    ``[..., 1]`` vertical (positive = down). ``dis`` is OpenCV's DIS at its ultrafast
    preset (about 1 ms per 112 px pair on one core); ``farneback`` is the older, slower one.
    """
    _check_frames(frames)
    return optical_flow_between(frames[:-1], frames[1:], method)


def _grey(frame: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 grey (H, W), what the flow and its residual are measured on."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def optical_flow_between(before: np.ndarray, after: np.ndarray, method: FlowMethod = "dis") -> np.ndarray:
    """Dense optical flow from ``before[n]`` to ``after[n]``: uint8 (N, H, W, 3) twice -> float32 (N, H, W, 2).

    ``optical_flow`` for frame pairs that are not consecutive in one array (each sampled frame
    and the frame a fixed gap after it, ``motion_input_between``).
    """
    import cv2

    _check_pairs(before, after)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        flows = [dis.calc(_grey(a), _grey(b), None) for a, b in zip(before, after)]
    elif method == "farneback":
        flows = [cv2.calcOpticalFlowFarneback(_grey(a), _grey(b), None, 0.5, 3, 15, 3, 5, 1.2, 0) for a, b in zip(before, after)]
    else:
        raise ValueError(f"unknown flow method {method!r}; expected 'dis' or 'farneback'")
    return np.stack(flows).astype(np.float32)  # (N, H, W, 2)


def flow_to_image(flow: np.ndarray, scale: float | None = None) -> np.ndarray:
    """float (N, H, W, 2) flow in pixels -> uint8 (N, H, W, 3): ``128 + s * (fx, fy, |f|)``.

    ``scale`` defaults to ``1024 / W`` (8 at 128 px): a displacement of 1/16 of the frame
    width per frame pair reaches the edge of the range, so the rendering is the same for a
    clip at any resolution. Zero flow is grey (128, 128, 128).
    """
    if flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be (N, H, W, 2), got {flow.shape}")
    s = 1024.0 / flow.shape[2] if scale is None else float(scale)
    mag = np.linalg.norm(flow, axis=-1, keepdims=True)  # (N, H, W, 1)
    img = 128.0 + s * np.concatenate([flow, mag], axis=-1)  # (N, H, W, 3)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def flow_images(frames: np.ndarray, method: FlowMethod = "dis", scale: float | None = None) -> np.ndarray:
    """uint8 (T, H, W, 3) frames -> uint8 (T-1, H, W, 3) flow images for a frozen CNN."""
    return flow_to_image(optical_flow(frames, method), scale)


def feature_differences(features, pad: bool = False):
    """Temporal differences of backbone features: (..., T, D) -> (..., T-1, D), or (..., T, D) with ``pad``.

    Works on numpy arrays and torch tensors alike. With ``pad`` a zero row is put first, so
    the result lines up with the features it came from (``out[t] = f[t] - f[t-1]``) and can
    be concatenated to them along D.
    """
    d = features[..., 1:, :] - features[..., :-1, :]
    if not pad:
        return d
    zero = d[..., :1, :] * 0
    if isinstance(d, np.ndarray):
        return np.concatenate([zero, d], axis=-2)
    import torch

    return torch.cat([zero, d], dim=-2)


def grid_pool(x: np.ndarray, grid: int = 3) -> np.ndarray:
    """Average (T, H, W, C) over a ``grid x grid`` layout -> (T, C * grid * grid), cell-major.

    Keeps *where* the motion is: a zoom is outward flow on the left cells and rightward on
    the right ones, a pan is the same flow in every cell.
    """
    t, h, w, c = x.shape
    ys = np.linspace(0, h, grid + 1).round().astype(int)
    xs = np.linspace(0, w, grid + 1).round().astype(int)
    cells = [x[:, ys[i] : ys[i + 1], xs[j] : xs[j + 1]].mean(axis=(1, 2)) for i in range(grid) for j in range(grid)]
    return np.concatenate(cells, axis=1).astype(np.float32)  # (T, grid*grid*C)


def motion_descriptor(frames: np.ndarray, grid: int = 3, method: FlowMethod = "dis") -> np.ndarray:
    """A CNN-free motion feature: uint8 (T, H, W, 3) -> float32 (T-1, 2 * 3 * grid^2).

    Per frame pair and grid cell: mean flow (x, y) and magnitude as a fraction of the frame
    width (x100, so a pan of 1% of the frame per step is 1.0), then the mean signed colour
    change per channel (/255 x100). Zero for a static video. It costs one DIS flow per pair
    (a few ms per 8-frame clip at 112 px) and no network, and it is the same for any source
    that moves the same way — which is what the direction classes need.
    """
    _check_frames(frames)
    return _grid_motion(optical_flow(frames, method), frames[:-1], frames[1:], grid)


def _grid_motion(flow: np.ndarray, before: np.ndarray, after: np.ndarray, grid: int) -> np.ndarray:
    """``motion_descriptor`` of N frame pairs and their flow (N, H, W, 2) -> float32 (N, 6 * grid^2)."""
    mag = np.linalg.norm(flow, axis=-1, keepdims=True)
    f = np.concatenate([flow, mag], axis=-1) * (100.0 / before.shape[2])  # (N, H, W, 3)
    d = (after.astype(np.float32) - before.astype(np.float32)) * (100.0 / 255.0)  # (N, H, W, 3)
    return np.concatenate([grid_pool(f, grid), grid_pool(d, grid)], axis=1)  # (N, 6*grid^2)


def camera_motion(frames: np.ndarray, method: FlowMethod = "dis", step: int = 4) -> np.ndarray:
    """Global camera motion per frame pair: uint8 (T, H, W, 3) -> float32 (T-1, 9).

    A least-squares affine fit of the flow field, ``flow(x, y) = t + A (x, y)`` with x, y in
    [-1, 1] of the frame, gives pan (tx, ty), zoom (divergence = A00 + A11), roll (curl =
    A10 - A01) and the two shears; then the mean colour change per channel. In units of %
    of the frame width (x100 / W) and of the grey range (x100 / 255), like
    ``motion_descriptor``. Six numbers describe a pan or a zoom whatever is being filmed,
    which is why they transfer to footage never seen in training.
    """
    _check_frames(frames)
    return _camera_fit(optical_flow(frames, method), frames[:-1], frames[1:], step)


def _camera_fit(flow: np.ndarray, before: np.ndarray, after: np.ndarray, step: int = 4) -> np.ndarray:
    """``camera_motion`` of N frame pairs and their flow (N, H, W, 2) -> float32 (N, 9)."""
    flow = flow[:, ::step, ::step]  # (N, h, w, 2), subsampled
    n, h, w = flow.shape[:3]
    ys, xs = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    design = np.stack([np.ones(h * w), xs.ravel(), ys.ravel()], axis=1)  # (h*w, 3)
    pinv = np.linalg.pinv(design)  # (3, h*w)
    coef = np.einsum("kp,npc->nkc", pinv, flow.reshape(n, h * w, 2))  # (N, 3, 2): rows 1, x, y
    tx, ty = coef[:, 0, 0], coef[:, 0, 1]
    a00, a01, a10, a11 = coef[:, 1, 0], coef[:, 2, 0], coef[:, 1, 1], coef[:, 2, 1]
    geo = np.stack([tx, ty, a00 + a11, a10 - a01, a00 - a11, a01 + a10], axis=1) * (100.0 / before.shape[2])
    colour = (after.astype(np.float32) - before.astype(np.float32)).mean(axis=(1, 2)) * (100.0 / 255.0)
    return np.concatenate([geo, colour], axis=1).astype(np.float32)  # (N, 9)


FLOW_STATS_DIM = 6 * 3 * 3 + 9  # motion_descriptor on a 3x3 grid + camera_motion


def _mirror_layout(grid: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``(source index, sign)`` per ``flow_statistics`` entry of the left-right mirrored video.

    Mirroring x -> -x moves cell (i, j) to (i, grid-1-j) and negates every x-motion: the cells'
    mean fx; the camera's pan tx, roll (curl) and second shear (a01 + a10). Magnitudes, y-motion,
    zoom (divergence), the first shear (a00 - a11) and colour change keep their sign.
    """
    cells = grid * grid
    source, sign = [], []
    for block in (0, 1):  # flow (fx, fy, |f|) per cell, then colour change (r, g, b) per cell
        for i in range(grid):
            for j in range(grid):
                for c in range(3):
                    source.append(block * cells * 3 + (i * grid + grid - 1 - j) * 3 + c)
                    sign.append(-1.0 if block == 0 and c == 0 else 1.0)
    camera = (-1.0, 1.0, 1.0, -1.0, 1.0, -1.0, 1.0, 1.0, 1.0)  # tx ty div curl shear1 shear2 r g b
    source += [2 * cells * 3 + k for k in range(9)]
    sign += list(camera)
    return np.array(source), np.array(sign, np.float32)


_MIRROR_SOURCE, _MIRROR_SIGN = _mirror_layout()


def mirror_flow_statistics(stats):
    """``flow_statistics`` of the left-right mirrored video, from the video's own: (..., 63) -> (..., 63).

    NumPy or torch. What a horizontal flip of the frames must do to their flow statistics
    (``vidrec/data/motion_tensors.py``): equal, up to DIS flow's own asymmetry, to computing them
    again on the flipped frames.
    """
    if stats.shape[-1] != FLOW_STATS_DIM:
        raise ValueError(f"expected flow statistics (..., {FLOW_STATS_DIM}), got {tuple(stats.shape)}")
    if isinstance(stats, np.ndarray):
        return stats[..., _MIRROR_SOURCE] * _MIRROR_SIGN
    import torch

    index = torch.as_tensor(_MIRROR_SOURCE, device=stats.device)
    return stats[..., index] * torch.as_tensor(_MIRROR_SIGN, dtype=stats.dtype, device=stats.device)


def flow_statistics(frames: np.ndarray, method: FlowMethod = "dis") -> np.ndarray:
    """``motion_descriptor`` (3x3 grid) and ``camera_motion`` of one flow pass: uint8 (T, H, W, 3) -> float32 (T-1, 63)."""
    _check_frames(frames)
    return flow_statistics_between(frames[:-1], frames[1:], method)


def flow_statistics_between(before: np.ndarray, after: np.ndarray, method: FlowMethod = "dis") -> np.ndarray:
    """``flow_statistics`` from ``before[n]`` to ``after[n]``: uint8 (N, H, W, 3) twice -> float32 (N, 63)."""
    return _statistics_of(optical_flow_between(before, after, method), before, after)


def _statistics_of(flow: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``flow_statistics_between`` of N pairs and their flow (N, H, W, 2), shared by both parts -> float32 (N, 63)."""
    return np.concatenate([_grid_motion(flow, before, after, 3), _camera_fit(flow, before, after)], axis=1)


#: Pixels at each edge that ``flow_residual`` leaves out: there the flow points outside the frame.
_RESIDUAL_BORDER = 6


def flow_residual(before: np.ndarray, after: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """How much of the change from ``before[n]`` to ``after[n]`` their flow does not explain:
    uint8 (N, H, W, 3) twice and float32 flow (N, H, W, 2) -> float32 (N,) grey levels (0-255).

    ``after`` is warped back onto ``before`` along the flow, its mean brightness matched to
    ``before``'s (so an exposure change is not counted), and the median absolute difference is
    taken away from the edges. A pan, a zoom or people walking leave a few grey levels; a shot
    cut, or motion too fast for the flow to follow, leaves tens, because no flow maps one frame
    onto the other. Measured on the real-footage benchmark's clips at 112 px (hops of 1-4 frames):
    a p99 of at most 9.7 inside a shot on four of its six source videos; on the source videos,
    16-18 for bikes.mp4's fastest pans over 4 frames, at least 14 across Megamind's cuts and 26
    across bikes' (``motion_residual_max``). Between samples seconds
    apart (``motion_gap: 0`` on a long video) most of a step is beyond the flow, and reads as such.
    """
    import cv2

    _check_pairs(before, after)
    if flow.shape != (*before.shape[:3], 2):
        raise ValueError(f"flow must be (N, H, W, 2) of the frames' size {before.shape[:3]}, got {flow.shape}")
    h, w = before.shape[1:3]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))  # (H, W) each
    border = _RESIDUAL_BORDER if min(h, w) > 2 * _RESIDUAL_BORDER else 0  # a tiny frame: all of it
    inner = (slice(border, h - border), slice(border, w - border))
    out = np.empty(len(before), np.float32)
    for n, (a, b, f) in enumerate(zip(before, after, flow)):
        grey_a, grey_b = _grey(a).astype(np.float32), _grey(b).astype(np.float32)  # (H, W) each
        # flow maps a's pixel (x, y) to b's (x + fx, y + fy): sample b there to line it up with a
        warped = cv2.remap(grey_b, xs + f[..., 0], ys + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped *= (grey_a.mean() + 1.0) / (warped.mean() + 1.0)
        out[n] = np.median(np.abs(grey_a - warped)[inner])
    return out


@dataclass
class FramePairs:
    """The frames a ``motion_gap`` measures each step's motion between, uint8 (P, H, W, 3) each:
    ``before[p]`` to ``after[p]``. Pair p belongs to step ``step_of[p]`` (int64 (P,), ascending);
    None: one pair per step, the sampled frame and its partner (P = K). With ``motion_span:
    step`` a step has several pairs, hops towards the next sample, and its motion is their mean.
    With ``motion_gap: auto`` the pair's frames are ``frames_apart[p]`` apart (int64 (P,)) and its
    motion is divided by that (``motion_input_between``); with a fixed gap (None) it is taken as
    measured."""

    before: np.ndarray
    after: np.ndarray
    frames_apart: np.ndarray | None = None
    step_of: np.ndarray | None = None

    def rows(self, rows: slice) -> "FramePairs":
        """The pairs of some steps (one view's), their steps counted from 0 again."""
        if self.step_of is None:
            apart = None if self.frames_apart is None else self.frames_apart[rows]
            return FramePairs(self.before[rows], self.after[rows], apart)
        keep = (self.step_of >= rows.start) & (self.step_of < rows.stop)  # (P,)
        apart = None if self.frames_apart is None else self.frames_apart[keep]
        return FramePairs(self.before[keep], self.after[keep], apart, self.step_of[keep] - rows.start)


def _mean_per_step(x: np.ndarray, step_of: np.ndarray, kept: np.ndarray | None = None) -> np.ndarray:
    """(P, ...) values of pairs -> (K, ...) float32, the mean of each step's pairs. ``step_of``
    (P,) ascends through 0..K-1 with every step present, so a step's pairs are one run. ``kept``
    (P,) bool: the mean of the kept pairs only, 0 for a step with none."""
    step_of = np.asarray(step_of)
    starts = np.flatnonzero(np.r_[True, np.diff(step_of) != 0])  # (K,) first pair of each step
    if step_of[0] != 0 or np.any(np.diff(step_of) < 0) or len(starts) != step_of[-1] + 1:
        raise ValueError(f"step_of must ascend through 0..K-1 with every step present, got {step_of}")
    if kept is None:
        counts = np.diff(np.r_[starts, len(step_of)])  # (K,)
    else:
        kept = np.asarray(kept, bool)  # (P,)
        counts = np.maximum(np.add.reduceat(kept.astype(np.int64), starts), 1)  # (K,); a step with none: 0 / 1
        x = np.where(kept.reshape(-1, *[1] * (x.ndim - 1)), x, 0)
    sums = np.add.reduceat(x, starts, axis=0, dtype=np.float64)  # (K, ...)
    return (sums / counts.reshape(-1, *[1] * (x.ndim - 1))).astype(np.float32)


def _small(frames: np.ndarray) -> np.ndarray:
    """Frames resized so the short side is ``_FLOW_SIDE`` (never enlarged)."""
    import cv2

    h, w = frames.shape[1:3]
    scale = _FLOW_SIDE / min(h, w)
    if scale >= 1:
        return frames
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def motion_input(frames: np.ndarray, kind: MotionInput, residual_max: float | None = None) -> np.ndarray | None:
    """The data-side motion input for the T sampled frames of a clip, one step per frame.

    ``flow``: uint8 (T, H, W, 3) flow images (for the backbone, transformed like the frames);
    ``flow_stats``: float32 (T, 63). Step t is the motion from frame t-1 to frame t; step 0
    has none (grey image / zeros), so the result lines up with the frames. ``none`` and
    ``feature_diff`` need nothing from the data: None. ``residual_max``: a step whose flow does
    not explain its frames reads no motion (``motion_input_between``).
    """
    if not reads_frames(kind):
        return None
    if frames.shape[0] < 2:  # a one-frame clip shows no motion
        steps = None
    else:  # flow images at the frames' own size (T-1, H, W, 3), or statistics (T-1, 63)
        steps = motion_input_between(frames[:-1], frames[1:], kind, residual_max=residual_max)
    if kind == "flow":
        first = np.full((1, *frames.shape[1:]), 128, np.uint8)
    elif kind == "flow_stats":
        first = np.zeros((1, FLOW_STATS_DIM), np.float32)
    else:
        raise ValueError(f"unknown motion input {kind!r}; expected none, feature_diff, flow or flow_stats")
    return first if steps is None else np.concatenate([first, steps], axis=0)


def motion_input_between(
    before: np.ndarray,
    after: np.ndarray,
    kind: MotionInput,
    frames_apart: np.ndarray | None = None,
    step_of: np.ndarray | None = None,
    residual_max: float | None = None,
) -> np.ndarray | None:
    """The data-side motion input from ``before[t]`` to ``after[t]`` for each of a clip's T steps.

    With ``ClipSpec.motion_gap`` the pair of step t is sampled frame t and the frame a fixed
    number of frames after it (``sampling.motion_pair_indices``), so the motion is measured over
    the same short time in a 2-second clip and a 2-minute video, as two-stream networks take
    their flow from neighbouring frames. Between sampled frames (``motion_input``) the step
    grows with the video's length: on a long video consecutive samples are seconds apart, too far
    for flow to follow what moved. uint8 (T, H, W, 3) twice -> ``flow``: uint8 (T, H, W, 3) flow
    images; ``flow_stats``: float32 (T, 63). ``none`` and ``feature_diff``: None.

    ``frames_apart`` (T,) (``motion_gap: auto``) gives the motion per frame, so that clips
    measured over different gaps agree: the flow is divided by it before it is drawn, and the
    flow statistics (colour change too) are divided by it.

    ``step_of`` (P,) (``motion_span: step``) says which of the T steps each of P pairs measures
    (``frames_apart`` is then (P,) too): a step's flow, or its statistics, is the mean over its
    pairs, the motion of every hop from the sampled frame to the next one instead of the first
    hop's alone. Flow images draw the mean flow (motion that goes and comes back within a step
    cancels, magnitude too); flow statistics average each hop's, whose speed terms do not cancel.

    ``residual_max`` (``ClipSpec.motion_residual_max``, grey levels): a pair whose flow leaves
    more of the change unexplained than this (``flow_residual``: a shot cut, or motion too fast
    for the flow) measures nothing. It is left out of its step's mean, and a step with no pair
    left reads no motion (zero statistics, a grey flow image): across a cut the flow is noise,
    large enough to outweigh the step's real motion. None keeps every pair. For ``flow_stats`` it is
    measured at ``_FLOW_SIDE`` (112 px, where the threshold of custom.yaml was chosen); flow images
    are drawn, and checked, at the frames' decoded size.
    """
    if not reads_frames(kind):
        return None
    if kind not in ("flow", "flow_stats"):
        raise ValueError(f"unknown motion input {kind!r}; expected none, feature_diff, flow or flow_stats")
    if kind == "flow_stats":  # statistics are measured at _FLOW_SIDE, whatever the decoded size
        before, after = _small(before), _small(after)
    flow = optical_flow_between(before, after)  # (P, H, W, 2)
    kept = None if residual_max is None else flow_residual(before, after, flow) <= residual_max  # (P,)
    if kept is not None and step_of is None:  # one pair per step: a left-out pair is a step with none
        step_of = np.arange(len(kept))
    per = None if frames_apart is None else np.asarray(frames_apart, np.float32)  # (P,)
    if kind == "flow":
        flow = flow if per is None else flow / per[:, None, None, None]
        return flow_to_image(flow if step_of is None else _mean_per_step(flow, step_of, kept))  # (T, H, W, 3)
    stats = _statistics_of(flow, before, after)  # (P, 63)
    stats = stats if per is None else (stats / per[:, None]).astype(np.float32)
    return stats if step_of is None else _mean_per_step(stats, step_of, kept)  # (T, 63)
