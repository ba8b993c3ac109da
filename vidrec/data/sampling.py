"""Which frames to read: pure functions from a frame count to sorted frame indices.

Every function returns exactly ``num_frames`` sorted indices in ``[0, n)``. A video shorter
than the clip is padded by repeating frames (indices repeat), never by inventing blank ones.
Randomness comes only from the ``rng`` argument, so a seed reproduces a sample exactly.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "segment_indices",
    "uniform_indices",
    "dense_clip_indices",
    "multi_clip_indices",
    "view_indices",
    "sample_indices",
    "motion_pair_indices",
    "auto_motion_gap",
    "AUTO_GAP_MAX",
    "motion_hops",
    "motion_hop_indices",
    "MAX_MOTION_HOPS",
    "Strategy",
]

Strategy = Literal["segment", "uniform", "dense"]


def _check(n: int, num_frames: int) -> None:
    if n <= 0:
        raise ValueError(f"video has no frames (n={n})")
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")


def segment_indices(n: int, num_frames: int, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
    """TSN sampling: split ``[0, n)`` into ``num_frames`` equal segments, one frame from each.

    Training takes a random frame inside each segment (temporal jitter as augmentation);
    evaluation takes each segment's centre, so the same video always gives the same frames.
    """
    _check(n, num_frames)
    # Segment k is [k*n/T, (k+1)*n/T); pick position (k + offset) * n / T. Multiplying before
    # dividing keeps integer-valued positions exact (edges from linspace can land at
    # 60.999... and floor one frame early).
    if train:
        rng = rng if rng is not None else np.random.default_rng()
        offsets = rng.random(num_frames)  # in [0, 1)
    else:
        offsets = np.full(num_frames, 0.5)
    picks = (np.arange(num_frames) + offsets) * n / num_frames
    return np.clip(np.floor(picks).astype(np.int64), 0, n - 1)


def uniform_indices(n: int, num_frames: int) -> np.ndarray:
    """Evenly spaced frames including the first and the last."""
    _check(n, num_frames)
    return np.round(np.linspace(0, n - 1, num_frames)).astype(np.int64)


def dense_clip_indices(
    n: int,
    num_frames: int,
    stride: int = 1,
    train: bool = False,
    rng: np.random.Generator | None = None,
    start: int | None = None,
) -> np.ndarray:
    """``num_frames`` consecutive frames ``stride`` apart (I3D/SlowFast-style clip).

    The clip starts at a random position in training and is centred in evaluation, unless
    ``start`` is given. Frames past the end repeat the last frame.
    """
    _check(n, num_frames)
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    span = (num_frames - 1) * stride + 1
    max_start = max(n - span, 0)
    if start is None:
        if train:
            rng = rng if rng is not None else np.random.default_rng()
            start = int(rng.integers(0, max_start + 1))
        else:
            start = max_start // 2
    start = int(np.clip(start, 0, max_start))
    return np.minimum(start + np.arange(num_frames) * stride, n - 1).astype(np.int64)


def multi_clip_indices(n: int, num_frames: int, num_clips: int, stride: int = 1) -> np.ndarray:
    """Test-time views: ``num_clips`` dense clips with starts spread evenly over the video.

    Returns ``(num_clips, num_frames)``; the views' scores are averaged at test time.
    """
    _check(n, num_frames)
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    span = (num_frames - 1) * stride + 1
    max_start = max(n - span, 0)
    starts = np.round(np.linspace(0, max_start, num_clips)).astype(np.int64)
    return np.stack([dense_clip_indices(n, num_frames, stride, start=int(s)) for s in starts])


def view_indices(strategy: Strategy, n: int, num_frames: int, views: int, stride: int = 1) -> np.ndarray:
    """Test-time views ``(views, num_frames)`` spread over the video; their scores are averaged.

    ``segment``: view ``v`` takes position ``(v + 0.5) / views`` inside every segment (one view
    is the evaluation clip: segment centres). ``dense``: clips with starts spread evenly
    (``multi_clip_indices``). ``uniform`` already spans the whole video, so its views coincide.
    """
    _check(n, num_frames)
    if views <= 0:
        raise ValueError(f"views must be positive, got {views}")
    if strategy == "dense":
        return multi_clip_indices(n, num_frames, views, stride) if views > 1 else dense_clip_indices(n, num_frames, stride)[None]
    if strategy == "uniform":
        return np.repeat(uniform_indices(n, num_frames)[None], views, axis=0)
    if strategy != "segment":
        raise ValueError(f"unknown sampling strategy {strategy!r}; expected segment, uniform or dense")
    offsets = (np.arange(views)[:, None] + 0.5) / views  # (V, 1) in (0, 1)
    picks = (np.arange(num_frames)[None, :] + offsets) * n / num_frames  # (V, T)
    return np.clip(np.floor(picks).astype(np.int64), 0, n - 1)


def sample_indices(
    strategy: Strategy,
    n: int,
    num_frames: int,
    train: bool,
    rng: np.random.Generator | None = None,
    stride: int = 1,
) -> np.ndarray:
    """One sampled clip by strategy name (what configs choose with ``sampling:``)."""
    if strategy == "segment":
        return segment_indices(n, num_frames, train, rng)
    if strategy == "uniform":
        return uniform_indices(n, num_frames)
    if strategy == "dense":
        return dense_clip_indices(n, num_frames, stride, train, rng)
    raise ValueError(f"unknown sampling strategy {strategy!r}; expected segment, uniform or dense")


def motion_pair_indices(indices: np.ndarray, n: int, gap) -> tuple[np.ndarray, np.ndarray]:
    """The frame pair whose motion goes with each sampled frame: ``(before, after)``, int64 like ``indices``.

    Frame i pairs with the frame ``gap`` later, ``(i, i + gap)``; near the end of the video,
    where there is none, with the one ``gap`` earlier, ``(i - gap, i)``. So every pair runs
    forward in file order and holds the sampled frame itself, and a video shorter than the gap
    gives its whole length (one frame: the frame twice, no motion). ``gap`` is one number or
    one per index (``auto_motion_gap`` of each view).
    """
    gap = np.asarray(gap, dtype=np.int64)
    if np.any(gap <= 0):
        raise ValueError(f"gap must be positive, got {gap}")
    i = np.asarray(indices, dtype=np.int64)
    fits = i + gap <= n - 1
    before = np.where(fits, i, np.maximum(i - gap, 0))
    after = np.where(fits, i + gap, i)
    return before, after


#: The largest gap ``auto_motion_gap`` picks. DIS flow at 112 px follows a shift of up to 8 px
#: exactly (12 px reads 8-12; further, too little but mostly the right sign): four frames of up
#: to 2 px per frame, where most filmed motion is (median 0.04-0.47 px per frame on the six sample
#: videos at 112 px). Gap 4 everywhere broke the benchmark's 16-frame pans of up to 20 px per frame;
#: ``auto`` gives those clips gap 1 (README, "Where the motion is measured").
AUTO_GAP_MAX = 4


def auto_motion_gap(indices) -> int:
    """The gap ``motion_gap: auto`` measures one clip's motion over: int64 (T,) sampled indices -> 1..4.

    Half the median step between the samples, at least 1 and at most ``AUTO_GAP_MAX``. Samples 2
    frames apart (a 16-frame clip) give 1; 8 or more apart (a 64-frame clip, a UCF101 video) give
    4. A slow motion then moves far enough to be measured, where one frame shows a fraction of a
    pixel, and a short clip keeps its neighbouring frames.
    """
    step = _median_step(indices)
    half = step // 2 if step is not None else 1
    return int(np.clip(half, 1, AUTO_GAP_MAX))


def _median_step(indices) -> int | None:
    """The median distance between consecutive sorted indices (T,) -> frames; None for one index."""
    steps = np.diff(np.sort(np.asarray(indices, dtype=np.int64)))  # (T-1,)
    return int(np.median(steps)) if len(steps) else None


#: The most pairs ``motion_span: step`` measures one step over. Eight hops of the largest auto
#: gap (4) cover 32 frames, a step of 8 samples over ~10 s at 25 fps; on longer videos the
#: measured part of each step shrinks again. Each hop costs one flow computation and one
#: decoded frame per sampled frame.
MAX_MOTION_HOPS = 8


def motion_hops(indices, gap: int) -> int:
    """How many ``gap``-frame hops ``motion_span: step`` chains from each sampled frame: one
    clip's (or view's) int64 (T,) sampled indices -> 1..``MAX_MOTION_HOPS``.

    The median step between samples over the gap (rounded down), so that on evenly spaced
    samples the hops reach the next one: a 16-frame clip (samples 2 apart, gap 1) gets 2, a
    64-frame one (8 apart, gap 4) 2, a 160-frame one (20 apart, gap 4) 5. Samples no further
    apart than the gap get 1. A training clip's random samples are unevenly spaced: one number
    for the clip, so some steps' hops stop short of the next sample and others pass it.
    """
    step = _median_step(indices) or 0
    return int(np.clip(step // max(int(gap), 1), 1, MAX_MOTION_HOPS))


def motion_hop_indices(indices: np.ndarray, n: int, gap: int, hops: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``hops`` consecutive frame pairs that measure each sampled frame's motion over more
    than one gap: int64 (T, hops) ``before`` and ``after``, all inside frames ``[0, n)``.

    Hop h of frame i is ``motion_pair_indices`` of frame i + h * gap: ``(i + h*gap, i + (h+1)*gap)``,
    so the hops run end to end from the sampled frame towards the next one. Near the end, a hop
    that would pass the last frame steps back as ``motion_pair_indices`` does (the pair ending on
    the last frame), so a step there measures some motion twice rather than inventing any.
    ``n`` is the video's length, or the end of the clip's range when it is a segment of a
    longer video (so the hops never measure what comes after the clip). ``hops`` 1 is
    ``motion_pair_indices``.
    """
    if hops < 1:
        raise ValueError(f"hops must be >= 1, got {hops}")
    i = np.minimum(np.asarray(indices, dtype=np.int64), n - 1)[:, None]  # (T, 1)
    starts = np.minimum(i + np.arange(hops) * int(gap), n - 1)  # (T, hops)
    before, after = motion_pair_indices(starts.reshape(-1), n, gap)  # (T*hops,) each
    return before.reshape(starts.shape), after.reshape(starts.shape)
