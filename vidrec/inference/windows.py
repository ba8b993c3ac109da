"""Timeline planning for long videos: which frames to read and where windows start.

Frames sit on one global time grid with spacing ``window / T``; window starts are snapped to
that grid, so overlapping windows share frames and each frame is decoded and encoded once.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch

__all__ = ["Window", "WindowPlan", "window_plan", "batched"]


@dataclass
class Window:
    """The model's reading of ``[start, end)`` seconds: class probabilities ``(C,)`` (or None) and a caption."""

    start: float
    end: float
    probs: torch.Tensor | None
    caption: str | None


def batched(iterable: Iterable, n: int) -> Iterator[list]:
    it = iter(iterable)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


@dataclass
class WindowPlan:
    """Where windows start and which frame each grid cell reads.

    Grid cell ``k`` spans ``[k * cell, (k + 1) * cell)`` seconds with ``cell = window / T``
    and reads the frame showing at its centre, ``floor((k + 0.5) * cell * fps)`` (clamped to
    the last frame) — on a video exactly one window long this is eval segment sampling.
    Window ``j`` covers cells ``starts[j] .. starts[j] + T - 1``.
    """

    starts: list[int]
    cell: float
    window: float
    num_frames: int  # T
    fps: float
    n: int  # frames in the video

    def frame(self, cell: int) -> int:
        # multiply before dividing: integer-valued positions stay exact (as in sampling.py)
        return min(int(math.floor((2 * cell + 1) * self.window * self.fps / (2 * self.num_frames))), self.n - 1)

    def cells(self) -> Iterator[int]:
        """Every grid cell some window needs, increasing, each once."""
        nxt = 0
        for s in self.starts:
            yield from range(max(nxt, s), s + self.num_frames)
            nxt = max(nxt, s + self.num_frames)


def window_plan(n: int, fps: float, num_frames: int, window: float, stride: float) -> WindowPlan | None:
    """Windows of ``window`` seconds every ``stride`` seconds over ``n`` frames at ``fps``.

    Starts are ``j * stride`` rounded to the grid (a stride below ``window / T`` is
    effectively ``window / T``). When the regular windows stop short of the end, one more
    window ends at the end of the video. ``None`` when the video is shorter than one window.
    """
    duration = n / fps
    eps = 1e-9
    if duration < window - eps:
        return None
    cell = window / num_frames
    starts: list[int] = []
    for j in itertools.count():
        s = int(math.floor(j * stride / cell + 0.5))
        if s * cell + window > duration + eps:
            break
        if not starts or s > starts[-1]:
            starts.append(s)
    if starts[-1] * cell + window < duration - eps:
        starts.append(max(int(math.ceil((duration - window) / cell - eps)), starts[-1] + 1))
    return WindowPlan(starts, cell, window, num_frames, fps, n)
