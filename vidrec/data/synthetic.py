"""The built-in clip dataset: real encoded videos of shapes doing actions, with captions.

Five of the twelve actions come in pairs whose clips are exactly the same frames in reverse
order (grow/shrink, move left/right, move up/down, appear/vanish, brighten/darken): the
frames' *set* is identical, only their order differs, so an order-blind average of frame
features cannot separate them and a temporal model must. ``blink`` and ``shake`` read the same
both ways and serve as controls.

    python -m vidrec.data.synthetic --out data/synthetic --num-clips 600 --seed 0
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidrec.data.manifest import ClipRecord, write_classes, write_manifest
from vidrec.data.video_io import open_video_writer

__all__ = ["ACTIONS", "REVERSED_PAIRS", "render_clip", "write_video", "generate", "main"]

# forward action -> its reverse; the reverse clip is the forward clip played backwards.
REVERSED_PAIRS: dict[str, str] = {
    "grow": "shrink",
    "move_right": "move_left",
    "move_down": "move_up",
    "appear": "vanish",
    "brighten": "darken",
}
SYMMETRIC = ("blink", "shake")
ACTIONS: tuple[str, ...] = tuple(sorted([*REVERSED_PAIRS, *REVERSED_PAIRS.values(), *SYMMETRIC]))

COLORS: dict[str, tuple[int, int, int]] = {  # RGB, saturated so they stand out on dark backgrounds
    "red": (230, 40, 40),
    "green": (40, 210, 60),
    "blue": (50, 90, 255),
    "yellow": (240, 230, 40),
    "purple": (170, 60, 220),
    "white": (245, 245, 245),
}
SHAPES = ("circle", "square", "triangle", "diamond")

CAPTIONS: dict[str, tuple[str, ...]] = {
    "grow": ("a {c} {s} grows bigger", "the {c} {s} is getting larger", "a {c} {s} expands"),
    "shrink": ("a {c} {s} shrinks", "the {c} {s} is getting smaller", "a {c} {s} becomes tiny"),
    "move_left": ("a {c} {s} moves to the left", "the {c} {s} slides left"),
    "move_right": ("a {c} {s} moves to the right", "the {c} {s} slides right"),
    "move_up": ("a {c} {s} moves up", "the {c} {s} rises"),
    "move_down": ("a {c} {s} moves down", "the {c} {s} falls"),
    "appear": ("a {c} {s} appears", "the {c} {s} fades in"),
    "vanish": ("a {c} {s} disappears", "the {c} {s} fades away"),
    "brighten": ("a {c} {s} gets brighter", "the light comes up on a {c} {s}"),
    "darken": ("a {c} {s} gets darker", "the light goes down on a {c} {s}"),
    "blink": ("a {c} {s} blinks", "the {c} {s} flashes on and off"),
    "shake": ("a {c} {s} shakes", "the {c} {s} wobbles from side to side"),
}


@dataclass
class ClipSpec:
    action: str
    color: str
    shape: str
    seed: int


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A dark textured background: flat, gradient or blurred noise, in a random hue."""
    base = rng.uniform(10, 70, size=3)
    kind = rng.integers(3)
    if kind == 0:
        bg = np.broadcast_to(base, (size, size, 3)).copy()
    elif kind == 1:
        ramp = np.linspace(0, 1, size)
        ramp = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
        bg = base + ramp * rng.uniform(-40, 40, size=3)
        bg = np.broadcast_to(bg, (size, size, 3)).copy()
    else:
        noise = rng.normal(0, 1, size=(size // 8 + 1, size // 8 + 1, 3)).astype(np.float32)
        noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
        bg = base + noise * 10
    return np.clip(bg, 0, 255).astype(np.float32)


def _shape_mask(shape: str, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Anti-aliased float mask in [0, 1] of one shape centred at (cx, cy) with radius r (px)."""
    scale = 4  # draw at 4x with sub-pixel shift for smooth motion and size changes
    mask = np.zeros((size, size), np.uint8)
    c = (int(round(cx * scale)), int(round(cy * scale)))
    rr = max(int(round(r * scale)), 1)
    if shape == "circle":
        cv2.circle(mask, c, rr, 255, -1, cv2.LINE_AA, shift=2)
    else:
        if shape == "square":
            pts = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
            k = 0.85
        elif shape == "triangle":
            pts = [(0, -1), (0.95, 0.75), (-0.95, 0.75)]
            k = 1.05
        else:  # diamond
            pts = [(0, -1), (1, 0), (0, 1), (-1, 0)]
            k = 1.1
        poly = np.array([[c[0] + px * rr * k, c[1] + py * rr * k] for px, py in pts], np.int32)
        cv2.fillPoly(mask, [poly], 255, cv2.LINE_AA, shift=2)
    return mask.astype(np.float32) / 255.0


def render_clip(spec: ClipSpec, num_frames: int = 16, size: int = 112) -> np.ndarray:
    """Render one clip as uint8 RGB ``(num_frames, size, size, 3)``.

    A reversed-pair action renders its forward partner with the same seed and reverses the
    frames, so e.g. ``shrink`` is exactly ``grow`` played backwards (noise included).
    """
    reverse_of = {v: k for k, v in REVERSED_PAIRS.items()}
    if spec.action in reverse_of:
        forward = ClipSpec(reverse_of[spec.action], spec.color, spec.shape, spec.seed)
        return render_clip(forward, num_frames, size)[::-1].copy()

    rng = np.random.default_rng(spec.seed)
    bg = _background(rng, size)
    color = np.array(COLORS[spec.color], np.float32)
    t = np.linspace(0.0, 1.0, num_frames)  # normalised time
    speed = rng.uniform(0.8, 1.0)  # fraction of the full motion/size range covered
    noise_sigma = rng.uniform(0, 6)
    r_base = size * rng.uniform(0.14, 0.2)
    margin = r_base * 1.3
    cx0, cy0 = rng.uniform(margin, size - margin, size=2)

    cx = np.full(num_frames, cx0)
    cy = np.full(num_frames, cy0)
    r = np.full(num_frames, r_base)
    alpha = np.ones(num_frames)
    light = np.ones(num_frames)
    travel = (size - 2 * margin) * speed
    if spec.action == "grow":
        r = size * (0.05 + (rng.uniform(0.3, 0.38) - 0.05) * speed * t)
        cx[:], cy[:] = size / 2 + rng.uniform(-8, 8, size=2)
    elif spec.action == "move_right":
        start = rng.uniform(margin, size - margin - travel)
        cx = start + travel * t
    elif spec.action == "move_down":
        start = rng.uniform(margin, size - margin - travel)
        cy = start + travel * t
    elif spec.action == "appear":
        alpha = np.clip(t * (1.0 + (1 - speed)), 0, 1)
    elif spec.action == "brighten":
        light = 0.2 + 0.8 * t
    elif spec.action == "blink":
        period = int(rng.integers(2, 4))
        alpha = ((np.arange(num_frames) // period) % 2 == 0).astype(float)
    elif spec.action == "shake":
        amp = size * rng.uniform(0.08, 0.12)
        # A period of 5-8 frames: slow enough to survive sampling every other frame.
        cx = cx0 + amp * np.sin(np.arange(num_frames) * np.pi / rng.uniform(2.5, 4.0) + rng.uniform(0, 2 * np.pi))
    else:
        raise ValueError(f"unknown action {spec.action!r}")

    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for i in range(num_frames):
        m = _shape_mask(spec.shape, size, cx[i], cy[i], r[i])[..., None] * alpha[i]
        img = bg * (1 - m) + color * m
        img = img * light[i] + rng.normal(0, noise_sigma, size=img.shape)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def write_video(path: str | Path, frames: np.ndarray, fps: float = 8.0, fourcc: str | None = None) -> str:
    """Encode uint8 RGB ``(T, H, W, 3)`` frames to ``path``; returns the codec used."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer, fourcc = open_video_writer(path, fps, w, h, fourcc)
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return fourcc


def _captions(spec: ClipSpec) -> list[str]:
    return [c.format(c=spec.color, s=spec.shape) for c in CAPTIONS[spec.action]]


def stratified_splits(num_clips: int, classes, val_fraction: float, test_fraction: float):
    """``(class, clips, val clips, test clips)`` per class: classes balanced, each split stratified.

    At least one val and one test clip per class once it has 3 or more, so small debug
    datasets still have every split. Clip ``j`` of a class goes to ``split_of(j, ...)``.
    """
    k = len(classes)
    for c, name in enumerate(classes):
        count = num_clips // k + (1 if c < num_clips % k else 0)
        n_val = max(int(round(count * val_fraction)), 1 if count >= 3 and val_fraction > 0 else 0)
        n_test = max(int(round(count * test_fraction)), 1 if count >= 3 and test_fraction > 0 else 0)
        yield name, count, n_val, n_test


def split_of(j: int, n_val: int, n_test: int) -> str:
    """The split of a class's clip number ``j``: its first clips validate, the next ones test."""
    return "val" if j < n_val else "test" if j < n_val + n_test else "train"


def generate(
    out: str | Path,
    num_clips: int = 600,
    seed: int = 0,
    num_frames: int = 16,
    size: int = 112,
    fps: float = 8.0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> dict[str, list[ClipRecord]]:
    """Write ``num_clips`` videos under ``out/videos`` and ``train/val/test.jsonl`` + ``classes.txt``.

    Classes are balanced and each split is stratified by class; colours and shapes are
    drawn independently of the action, so neither predicts the label.
    """
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits: dict[str, list[ClipRecord]] = {"train": [], "val": [], "test": []}
    for action, count, n_val, n_test in stratified_splits(num_clips, ACTIONS, val_fraction, test_fraction):
        for j in range(count):
            spec = ClipSpec(
                action=action,
                color=str(rng.choice(list(COLORS))),
                shape=str(rng.choice(SHAPES)),
                seed=int(rng.integers(2**31)),
            )
            frames = render_clip(spec, num_frames, size)
            path = out / "videos" / f"{action}_{j:04d}.mp4"
            write_video(path, frames, fps)
            splits[split_of(j, n_val, n_test)].append(ClipRecord(video=str(path), label=action, captions=_captions(spec)))
    for name, records in splits.items():
        write_manifest(out / f"{name}.jsonl", records)
    write_classes(out / "classes.txt", ACTIONS)
    return splits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--num-clips", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112, help="frame width and height (px)")
    parser.add_argument("--fps", type=float, default=8.0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    splits = generate(args.out, args.num_clips, args.seed, args.num_frames, args.size, args.fps)
    counts = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    print(
        f"wrote {sum(map(len, splits.values()))} clips ({counts}) of {len(ACTIONS)} actions "
        f"to {args.out} in {time.perf_counter() - t0:.1f}s"
    )


if __name__ == "__main__":
    main()
