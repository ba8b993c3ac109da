"""What a clip is (``ClipSpec``) and the one path from a video file to a model-ready clip.

``ClipSpec`` is the single home of the clip defaults: the datamodule, the predictor, the
ONNX export and the checkpoint loader all read them from here, so a checkpoint trained with
the defaults is evaluated with exactly the frames it was trained on.

``load_clip`` is the one decode -> sample -> transform path. Training, whole-video
prediction and the timeline's window stream all go through it, so they cannot drift apart.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Literal, Mapping, Sequence

import numpy as np
import torch

from vidrec.data.decode import Backend, VideoDecodeError, VideoReader, open_video, read_sampled
from vidrec.data.motion import FramePairs, MotionInput, motion_input, motion_input_between, reads_frames
from vidrec.data.motion_tensors import as_motion_tensor
from vidrec.data.sampling import Strategy, auto_motion_gap, motion_hop_indices, motion_hops, sample_indices, view_indices
from vidrec.data.transforms import Normalization, eval_transform, to_video_tensor

__all__ = [
    "ClipSpec", "Clip", "SkippedClip", "frame_range", "clip_indices", "read_clip", "load_clip", "read_views", "load_views",
    "central_row",
]


@dataclass(frozen=True)
class ClipSpec:
    """How frames are picked and sized. Saved in every checkpoint (as the datamodule's hparams).

    ``num_frames`` T per clip; ``sampling`` (``segment`` | ``uniform`` | ``dense``) with
    ``stride`` for dense clips; ``frame_size`` S, the square crop fed to the backbone;
    ``resize`` the evaluation short side before the centre crop (None: ``S * 8 / 7``);
    ``backend`` the video decoder (None: the best one installed, ``default_backend()``, so a
    checkpoint does not tie itself to a decoder the deploying machine may lack); ``motion``
    the motion input computed from the sampled frames (``vidrec.data.motion``), linked from
    the model's setting; ``motion_gap`` where that motion is measured: 0 between consecutive
    sampled frames (a step that grows with the video's length), g > 0 from each sampled frame
    to the frame g later (``sampling.motion_pair_indices``: the same short step in any video),
    ``auto`` over 1 to 4 frames, half the clip's step between samples (``sampling.auto_motion_gap``),
    divided by that gap: motion per frame, so that clips measured over different gaps agree.
    ``motion_span`` how much of each step that motion covers: ``gap``, the one pair from the
    sampled frame; ``step``, the mean of the gap-long hops from it to the next sample
    (``sampling.motion_hops``, at most 8), so a long video's motion between two samples is
    measured all the way, not over its first few frames (with ``motion_gap`` 0 it is between
    the samples already, and ``step`` changes nothing). ``motion_residual_max`` (grey levels,
    None: off): a frame pair whose flow leaves more of the change unexplained than this, a shot
    cut or motion too fast for the flow, measures no motion (``motion.flow_residual``); chosen for
    hops of 1-4 frames (``motion_gap``), between samples seconds apart it leaves most steps out.
    """

    num_frames: int = 8
    sampling: Strategy = "segment"
    stride: int = 1
    frame_size: int = 112
    resize: int | None = None
    backend: Backend | None = None
    motion: MotionInput = "none"
    motion_gap: int | Literal["auto"] = 0  # 0: what checkpoints saved before the setting existed were trained with
    motion_span: Literal["gap", "step"] = "gap"  # gap: the same, for checkpoints older than this setting
    motion_residual_max: float | None = None  # None: every pair counts, as before this setting

    def __post_init__(self):
        if self.motion_gap != "auto" and (isinstance(self.motion_gap, str) or self.motion_gap < 0):
            raise ValueError(
                f"motion_gap must be 0 (between sampled frames), a number of frames > 0 or 'auto', got {self.motion_gap!r}"
            )
        if self.motion_span not in ("gap", "step"):
            raise ValueError(f"motion_span must be 'gap' or 'step', got {self.motion_span!r}")
        if self.motion_residual_max is not None and not self.motion_residual_max > 0:
            raise ValueError(f"motion_residual_max must be a number of grey levels > 0, or None, got {self.motion_residual_max!r}")

    @property
    def measures_pairs(self) -> bool:
        """Whether the motion input is measured between frame pairs a ``motion_gap`` apart, decoded
        beside the samples (so the gap, and the span, change what the model is given)."""
        return reads_frames(self.motion) and bool(self.motion_gap)

    @classmethod
    def from_hparams(cls, hparams: Mapping) -> "ClipSpec":
        """The spec inside a dict of (datamodule) hyperparameters; missing keys take the defaults."""
        return cls(**{f.name: hparams[f.name] for f in fields(cls) if hparams.get(f.name) is not None})

    def eval_transform(self, normalization: Normalization):
        """The deterministic evaluation transform: resize, centre crop ``frame_size``, normalise."""
        return eval_transform(self.frame_size, normalization, self.resize)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Clip:
    """A model-ready clip: ``frames`` float (T, 3, S, S) and, when the spec asks for a data-side
    motion input, ``motion``: flow images (T, 3, S, S) transformed like the frames, or flow
    statistics (T, 63). Several views or crops (``read_views``, a cropping transform) put one
    leading axis N before T on both."""

    frames: torch.Tensor
    motion: torch.Tensor | None = None


@dataclass  # not frozen: Lightning's batch-to-device walk rebuilds dataclasses it finds in a batch
class SkippedClip:
    """A clip that could not be loaded: which file, and why. Travels through batches and results."""

    video: str
    reason: str
    source: str | None = field(default=None, compare=False)  # the manifest line, "train.jsonl:12"

    def __str__(self) -> str:
        return f"{self.video}: {self.reason}" + (f" ({self.source})" if self.source else "")


def frame_range(num_frames: int, fps: float, start: float | None, end: float | None) -> tuple[int, int]:
    """[first, last) frame of the time range ``[start, end)`` seconds (the whole video when None)."""
    first = 0 if start is None else min(int(math.floor(start * fps)), num_frames - 1)
    last = num_frames if end is None else min(max(int(math.ceil(end * fps)), first + 1), num_frames)
    return max(first, 0), last


def clip_indices(
    reader: VideoReader,
    spec: ClipSpec,
    *,
    start: float | None = None,
    end: float | None = None,
    train: bool = False,
    rng: np.random.Generator | None = None,
    views: int | None = None,
) -> np.ndarray:
    """The spec's T frame indices inside ``[start, end)`` seconds of an open video: int64 (T,).

    With ``views``, the evaluation views spread over that range instead: int64 (V, T).
    """
    if start is not None and start * reader.fps >= reader.num_frames:
        # Usually a manifest in milliseconds or frames: say so instead of training on the last frame.
        raise VideoDecodeError(
            reader.path, f"start {start}s is past the end of the video ({reader.num_frames / reader.fps:.1f}s)"
        )
    first, last = frame_range(reader.num_frames, reader.fps, start, end)
    if views is not None:
        return view_indices(spec.sampling, last - first, spec.num_frames, views, spec.stride) + first
    return sample_indices(spec.sampling, last - first, spec.num_frames, train, rng, spec.stride) + first


def read_clip(
    video: str | os.PathLike | VideoReader,
    spec: ClipSpec,
    transform: Callable,
    *,
    indices: Sequence[int] | None = None,
    start: float | None = None,
    end: float | None = None,
    train: bool = False,
    rng: np.random.Generator | None = None,
) -> Clip:
    """Decode, sample and transform one clip (and its motion input); raises ``VideoDecodeError``.

    ``video`` is a path (opened and closed here) or an open reader (left open, for the
    window stream, which reads one long video chunk by chunk). ``indices`` reads those frames
    instead of sampling the spec's T (repeats allowed); otherwise the spec samples inside the
    ``[start, end)`` time range, randomly when ``train`` (drawing from ``rng``).
    """
    if isinstance(video, (str, os.PathLike)):
        with open_video(video, spec.backend) as reader:
            return read_clip(reader, spec, transform, indices=indices, start=start, end=end, train=train, rng=rng)
    reader = video
    if indices is None:
        # Sampled from the frame count; if the container over-reported it, sampled again from
        # the true count (found when a requested frame failed to decode).
        frames, pairs = _decode(reader, spec, lambda n: clip_indices(reader, spec, start=start, end=end, train=train, rng=rng).tolist(),
                                until=lambda n: frame_range(n, reader.fps, start, end)[1])
    else:
        frames, pairs = _decode(reader, spec, lambda n: [int(i) for i in indices])  # (T, H, W, 3) uint8
    return _model_ready(frames, spec, transform, pairs)


def _decode(
    reader: VideoReader,
    spec: ClipSpec,
    sample: Callable[[int], Sequence[int]],
    view_length: int | None = None,
    until: Callable[[int], int] | None = None,
) -> tuple[np.ndarray, FramePairs | None]:
    """The frames at ``sample(n)``, uint8 (K, H, W, 3), and with a ``motion_gap`` the frame pairs
    that their motion is measured between (None without).

    One ``read_sampled`` call decodes every frame once, sampled and partner frames together,
    so a container that over-reported its length resamples both. ``motion_gap: auto`` picks one
    gap per clip, and ``motion_span: step`` one number of hops: per ``view_length`` sampled
    frames when several views come in one list. ``until(n)`` is the end (exclusive) of the clip's
    time range in a video of n frames: ``motion_span: step`` keeps its hops before it, so a clip
    cut from a longer video is not measured on what follows it (``gap`` keeps its one pair as it
    was, which may end up to a gap past the range).
    """
    if not spec.measures_pairs:
        return read_sampled(reader, sample), None
    plan = {}

    def with_partners(n: int) -> list[int]:
        sampled = np.asarray(sample(n), dtype=np.int64)  # (K,)
        views = np.split(sampled, max(len(sampled) // (view_length or len(sampled)), 1))  # V x (T,)
        before, after, apart, step_of = [], [], [], []
        first = 0  # the view's first row of (K,)
        for v in views:  # each clip's own gap and hops
            gap = auto_motion_gap(v) if spec.motion_gap == "auto" else spec.motion_gap
            if spec.motion_span == "step":
                b, a = motion_hop_indices(v, until(n) if until else n, gap, motion_hops(v, gap))  # (T, hops) each
            else:
                b, a = motion_hop_indices(v, n, gap, 1)  # (T, 1) each
            before.append(b.reshape(-1))
            after.append(a.reshape(-1))
            apart.append(np.full(b.size, gap))
            step_of.append(first + np.repeat(np.arange(len(v)), b.shape[1]))
            first += len(v)
        plan["pairs"] = sum(len(b) for b in before)  # P
        plan["apart"] = np.concatenate(apart) if spec.motion_gap == "auto" else None  # (P,)
        plan["step_of"] = np.concatenate(step_of) if spec.motion_span == "step" else None  # (P,)
        wanted, plan["rows"] = np.unique(np.concatenate([sampled, *before, *after]), return_inverse=True)
        return wanted.tolist()

    decoded = read_sampled(reader, with_partners)[plan["rows"]]  # (K + 2P, H, W, 3)
    k, p = len(decoded) - 2 * plan["pairs"], plan["pairs"]
    frames, before, after = decoded[:k], decoded[k:k + p], decoded[k + p:]  # (K | P | P, H, W, 3)
    return frames, FramePairs(before, after, plan["apart"], plan["step_of"])


def _model_ready(
    frames: np.ndarray, spec: ClipSpec, transform: Callable, pairs: FramePairs | None = None
) -> Clip:
    """Decoded uint8 (T, H, W, 3) -> ``Clip``: the frames transformed, and the spec's motion input
    computed between these T frames, or between the T frame ``pairs`` of a ``motion_gap`` (so it is
    the same whoever decoded them: one clip or one view).

    A cropping ``transform`` (``three_crop_transform``) gives C crops of each: frames and flow
    images (C, T, 3, S, S), the same crop of both; flow statistics are of the whole frame (the
    one-crop clip's are too: they are computed before any transform), repeated per crop (C, T, 63).
    A flip in ``transform`` flips the motion input with the frames (``motion_tensors``).
    """
    motion = (motion_input(frames, spec.motion, spec.motion_residual_max) if pairs is None else
              motion_input_between(pairs.before, pairs.after, spec.motion, pairs.frames_apart, pairs.step_of,
                                   spec.motion_residual_max))
    if motion is None:
        return Clip(transform(to_video_tensor(frames)).as_subclass(torch.Tensor))  # (T, 3, S, S)
    # One call: the motion input gets the frames' random crop and flip, and stays the motion of
    # what the model sees (motion_tensors: a flip negates x-motion, jitter leaves flow alone).
    clip, motion = transform(to_video_tensor(frames), as_motion_tensor(motion))
    return Clip(clip.as_subclass(torch.Tensor), motion.as_subclass(torch.Tensor))


def load_clip(video, spec: ClipSpec, transform: Callable, **kw) -> torch.Tensor:
    """``read_clip(...).frames``: float (T, 3, S, S), for callers that need no motion input."""
    return read_clip(video, spec, transform, **kw).frames


def central_row(rows: int, crops: int = 1) -> int:
    """Row of the central clip's centre crop among ``rows`` = views x ``crops`` view-major rows
    (row v * C + c, as ``read_views`` gives them); rows that are not a multiple of ``crops`` are
    taken as views of one crop each.

    With an odd number of views it is the evaluation clip, cropped as evaluation crops it; with
    an even number, the later of the two middle views. (N // 2 is that row only for odd views:
    with 2 views x 3 crops it was view 1's first crop, a side of the frame.)
    """
    crops = crops if rows % crops == 0 else 1
    return (rows // crops // 2) * crops + crops // 2


def read_views(
    video: str | os.PathLike | VideoReader,
    spec: ClipSpec,
    transform: Callable,
    views: int = 1,
    *,
    start: float | None = None,
    end: float | None = None,
) -> Clip:
    """The test-time views of one clip, decoded once: ``frames`` float (N, T, 3, S, S) and, when
    the spec asks for a data-side motion input, ``motion`` (N, T, 3, S, S) flow images or (N, T, 63).

    ``views`` clips spread over the time range (``view_indices``); a ``transform`` that
    returns C crops per frame (``three_crop_transform``) gives N = views x C, view-major
    (row ``v * C + c`` is crop c of view v) for frames and motion alike.
    """
    if isinstance(video, (str, os.PathLike)):
        with open_video(video, spec.backend) as reader:
            return read_views(reader, spec, transform, views, start=start, end=end)
    T = spec.num_frames
    reader = video
    decoded, pairs = _decode(reader, spec, lambda n: clip_indices(reader, spec, start=start, end=end, views=views).reshape(-1).tolist(),
                             view_length=T, until=lambda n: frame_range(n, reader.fps, start, end)[1])  # (V*T, H, W, 3)
    if not reads_frames(spec.motion):  # frames only: all views through the transform in one call
        frames = transform(to_video_tensor(decoded)).as_subclass(torch.Tensor)  # (V*T, 3, S, S) or (C, V*T, 3, S, S)
        if frames.ndim == 4:
            return Clip(frames.reshape(views, T, *frames.shape[1:]))
        crops = frames.shape[0]
        return Clip(frames.reshape(crops, views, T, *frames.shape[2:]).transpose(0, 1).reshape(views * crops, T, *frames.shape[2:]))
    # Motion belongs to one clip: view v's is computed from its own T frames (or frame pairs)
    # alone, exactly what read_clip gives for that view's indices (never across views).
    clips = []
    for v in range(views):
        rows = slice(v * T, (v + 1) * T)  # view v's T rows of (V*T, ...)
        view_pairs = None if pairs is None else pairs.rows(rows)
        clips.append(_model_ready(decoded[rows], spec, transform, view_pairs))
    cropped = clips[0].frames.ndim == 5  # each view came back as (C, T, ...): crops
    frames = torch.stack([c.frames for c in clips])  # (V, [C,] T, 3, S, S)
    motion = torch.stack([c.motion for c in clips])  # (V, [C,] T, ...)
    return Clip(frames.flatten(0, 1), motion.flatten(0, 1)) if cropped else Clip(frames, motion)


def load_views(video, spec: ClipSpec, transform: Callable, views: int = 1, **kw) -> torch.Tensor:
    """``read_views(...).frames``: float ``(N, T, 3, S, S)``, for callers that need no motion input."""
    return read_views(video, spec, transform, views, **kw).frames
