"""Long-range memory clips: the class is a brief colour flash at the start; the rest says nothing.

Every clip opens with a flash: for the first ~10% of its frames the whole frame is tinted
with one of four colours (the *event*; its colour is the class). Then comes a long stretch in
which a grey ball bounces over a dark background. The ball (there all along, over the flash
too), the background and the noise are drawn from the clip's seed alone, never from its
class: two clips with the same seed and different classes differ only in the event frames'
tint, and every later frame is the same, pixel for pixel. So a model that classifies them
must carry what it saw in the first frames to the end of the clip, which is what a plain
tanh RNN is said to fail at and an LSTM's gates are said to fix.

Encoded as mp4 (lossy, inter-frame), a faint ghost of the flash (about 1 grey level) can
remain in the decoded frames until the codec's next keyframe (frame 12 with OpenCV's mp4v);
from there on the decoded frames are identical across classes too.

    python -m vidrec.data.memory_clips --out data/memory --num-clips 400
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidrec.data.manifest import ClipRecord, write_classes, write_manifest
from vidrec.data.synthetic import COLORS, split_of, stratified_splits, write_video

__all__ = [
    "EVENT_CLASSES", "EVENT_FRACTION", "EVENT_OPACITY", "MemoryClip", "MemoryScene", "event_length",
    "render_memory_clip", "generate_memory", "main",
]

# The classes are the flash colours: saturated, far apart in hue, and none of them grey like the ball.
EVENT_CLASSES: tuple[str, ...] = ("blue", "green", "red", "yellow")
EVENT_FRACTION = 0.1  # the event fills the first ~10% of the clip's frames
# How strongly the flash tints the frame. A full-frame tint rather than a small shape: the
# frozen backbone must see the colour in a single frame (a 35-50% square at 64 px gave a
# linear probe on the event frame's features only ~85% test top-1), so that what is measured
# is memory, not how hard the event is to see.
EVENT_OPACITY = 0.8
BALL_GREY = (150, 235)  # range of the distractor ball's grey level: never a class colour


@dataclass(frozen=True)
class MemoryClip:
    """One clip to render: its class (an ``EVENT_CLASSES`` colour) and the seed of everything else."""

    label: str
    seed: int


def event_length(num_frames: int) -> int:
    """How many leading frames show the event: ``ceil(EVENT_FRACTION * num_frames)``, at least 1
    (7 of 64; with uniform sampling, frame 0 is always among the sampled frames)."""
    return max(1, math.ceil(EVENT_FRACTION * num_frames))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A dark background in a random hue with a random linear ramp: float32 (S, S, 3)."""
    base = rng.uniform(10, 60, size=3)
    ramp = np.linspace(-1.0, 1.0, size)
    ramp = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]  # horizontal or vertical
    bg = base + ramp * rng.uniform(-20, 20, size=3)
    return np.clip(np.broadcast_to(bg, (size, size, 3)), 0, 255).astype(np.float32)


def _bounce(start: float, velocity: float, low: float, high: float, num_frames: int) -> np.ndarray:
    """Positions (num_frames,) of a point moving at ``velocity`` px/frame, reflected at ``low``/``high``."""
    span = high - low
    raw = start - low + velocity * np.arange(num_frames)  # unfolded path
    folded = np.mod(raw, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)  # mirror the way back


def _disc_mask(size: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Anti-aliased disc mask in [0, 1], float32 (S, S); drawn at 4x sub-pixel precision so motion is smooth."""
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, (int(round(cx * 4)), int(round(cy * 4))), max(int(round(r * 4)), 1), 255, -1, cv2.LINE_AA, shift=2)
    return mask.astype(np.float32) / 255.0


@dataclass(frozen=True)
class MemoryScene:
    """Everything about a clip except its class, drawn from its seed.

    ``background`` float32 (S, S, 3); the ball's centre ``ball_x``/``ball_y`` (T,) px, its
    radius ``ball_r`` px and grey level ``grey``; ``noise_sigma`` the per-pixel Gaussian noise.
    """

    background: np.ndarray
    ball_x: np.ndarray
    ball_y: np.ndarray
    ball_r: float
    grey: float
    noise_sigma: float


def _draw_scene(rng: np.random.Generator, num_frames: int, size: int) -> MemoryScene:
    """The class-free part of a clip; the only place its random draws are made (and their order)."""
    bg = _background(rng, size)
    # The distractor: a grey ball bouncing at 1-2.5 px/frame in a random direction, all clip long.
    r = size * rng.uniform(0.08, 0.12)
    speed, angle = rng.uniform(1.0, 2.5), rng.uniform(0, 2 * np.pi)
    cx = _bounce(rng.uniform(r, size - r), speed * np.cos(angle), r, size - r, num_frames)
    cy = _bounce(rng.uniform(r, size - r), speed * np.sin(angle), r, size - r, num_frames)
    return MemoryScene(bg, cx, cy, r, float(rng.uniform(*BALL_GREY)), float(rng.uniform(0, 4)))


def render_memory_clip(clip: MemoryClip, num_frames: int = 64, size: int = 64) -> np.ndarray:
    """Render one clip as uint8 RGB ``(num_frames, size, size, 3)``.

    Frames ``[0, event_length(num_frames))`` are tinted with the class colour; every later
    frame depends only on ``clip.seed``. All random draws happen in the same order whatever
    the label, which is what makes the frames after the event identical across classes.
    """
    if clip.label not in EVENT_CLASSES:
        raise ValueError(f"unknown memory-clip class {clip.label!r}; expected one of {EVENT_CLASSES}")
    rng = np.random.default_rng(clip.seed)
    scene = _draw_scene(rng, num_frames, size)
    n_event = event_length(num_frames)
    colour = np.array(COLORS[clip.label], np.float32)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for i in range(num_frames):
        img = scene.background
        if i < n_event:
            img = img * (1 - EVENT_OPACITY) + colour * EVENT_OPACITY  # (S, S, 3)
        m = _disc_mask(size, scene.ball_x[i], scene.ball_y[i], scene.ball_r)[..., None]  # (S, S, 1): the ball stays in front
        img = img * (1 - m) + scene.grey * m
        img = img + rng.normal(0, scene.noise_sigma, size=img.shape)  # drawn every frame, event or not
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def generate_memory(
    out: str | Path,
    num_clips: int = 400,
    seed: int = 0,
    num_frames: int = 64,
    size: int = 64,
    fps: float = 16.0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> dict[str, list[ClipRecord]]:
    """Write ``num_clips`` videos under ``out/videos`` and ``train/val/test.jsonl`` + ``classes.txt``.

    Classes are balanced and each split is stratified by class (at least one val and one test
    clip per class once a class has 3 clips).
    """
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits: dict[str, list[ClipRecord]] = {"train": [], "val": [], "test": []}
    for label, count, n_val, n_test in stratified_splits(num_clips, EVENT_CLASSES, val_fraction, test_fraction):
        for j in range(count):
            clip = MemoryClip(label, seed=int(rng.integers(2**31)))
            path = out / "videos" / f"{label}_{j:04d}.mp4"
            write_video(path, render_memory_clip(clip, num_frames, size), fps)
            splits[split_of(j, n_val, n_test)].append(ClipRecord(video=str(path), label=label))
    for name, records in splits.items():
        write_manifest(out / f"{name}.jsonl", records)
    write_classes(out / "classes.txt", EVENT_CLASSES)
    return splits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--num-clips", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-frames", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="frame width and height (px)")
    parser.add_argument("--fps", type=float, default=16.0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    splits = generate_memory(args.out, args.num_clips, args.seed, args.num_frames, args.size, args.fps)
    counts = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    print(f"wrote {sum(map(len, splits.values()))} clips ({counts}) to {args.out} in {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
